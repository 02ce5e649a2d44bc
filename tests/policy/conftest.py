"""Fixtures of the policy tests."""

import pytest

from tests.policy.signing import SigningWorld
from trust import trust_data


@pytest.fixture
def world(settings, notary_server, notary_cli_in, admin, api, tmp_path):
    """A ``SigningWorld`` on the session's Notary, with an empty trust cache revalidated at
    every evaluation, so each upload or signature counts at once. A module may define its
    own ``world`` instead."""
    settings.NOTARY_URL = notary_server.url
    settings.GATEHOUSE_TRUST_REVALIDATE_SECONDS = 0
    trust_data.forget()
    yield SigningWorld(
        admin=admin, api=api, cli=notary_cli_in, notary_url=notary_server.url, tmp=tmp_path
    )
    trust_data.forget()
