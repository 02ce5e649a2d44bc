"""The notary stack of devtools/notary.py, driven by the real ``notary`` CLI."""

import tempfile
import uuid
from pathlib import Path

import pytest

from devtools.notary import NotaryStack
from devtools.ports import free_port

pytestmark = pytest.mark.notary


def test_cli_initialises_a_repository_that_a_fresh_client_reads(notary_cli, notary_gun):
    notary_cli("init", notary_gun, "-p")
    notary_cli("key", "rotate", notary_gun, "snapshot", "-r")

    listing = notary_cli("list", notary_gun, fresh=True)

    # An unknown or lost repository would print "does not have trust data" instead.
    assert "No targets present in this repository." in listing.stdout


def test_persistent_stack_serves_and_publishes_its_repositories_after_a_restart(
    notary_postgres_url, notary_cli, notary_gun
):
    suffix = uuid.uuid4().hex[:8]
    settings = {
        # mkdtemp, not tmp_path: a private cluster's socket path must stay short.
        "state_dir": Path(tempfile.mkdtemp(prefix="notary-")),
        "server_port": free_port(),
        "signer_port": free_port(),
        "server_db": f"notary_server_restart_{suffix}",
        "signer_db": f"notary_signer_restart_{suffix}",
        "postgres_url": notary_postgres_url,
    }
    first, second = NotaryStack(**settings), NotaryStack(**settings)
    try:
        first.start()
        notary_cli("init", notary_gun, "-p", server=first.url)
        notary_cli("key", "rotate", notary_gun, "snapshot", "-r", server=first.url)
        notary_cli("addhash", notary_gun, "v1", "3", "--sha256", "a1" * 32, "-p", server=first.url)
        first.stop()

        second.start()  # a new object: nothing carried over in memory
        before = notary_cli("list", notary_gun, fresh=True, server=second.url)
        # Publishing needs the server's timestamp and snapshot keys, kept by the signer.
        notary_cli("addhash", notary_gun, "v2", "3", "--sha256", "b2" * 32, "-p", server=second.url)
        after = notary_cli("list", notary_gun, fresh=True, server=second.url)

        assert "a1" * 32 in before.stdout
        assert "a1" * 32 in after.stdout
        assert "b2" * 32 in after.stdout
        assert second.alive(), second.log_tail()
    finally:
        first.stop()
        second.discard()
