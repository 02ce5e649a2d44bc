import pytest


@pytest.fixture
def on_notary(settings, notary_server):
    """Gatehouse's Notary is the test server, and syncs run without the burst delay."""
    settings.NOTARY_URL = notary_server.url
    settings.GATEHOUSE_SYNC_DELAY_SECONDS = 0
    return notary_server
