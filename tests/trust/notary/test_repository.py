"""``RepositoryFiles`` without a server: what the writer's reads refuse before trusting
bytes (docs/notary-protocol.md, "Reading")."""

import base64
import hashlib

import pytest

from trust.notary.errors import InvalidMetadata
from trust.notary.metadata import FileMeta, file_hashes
from trust.notary.repository import RepositoryFiles
from trust.notary.transport import Transport

GUN = "example.com/app"
FILE = b'{"signed":{"_type":"Snapshot","version":1},"signatures":[]}'


class ServeAnything(Transport):
    """A transport that answers every GET with ``FILE`` and records the paths."""

    def __init__(self, body: bytes = FILE) -> None:
        self.body = body
        self.paths: list[str] = []

    def _request(self, method, path, **options):
        self.paths.append(path)
        return self.body


@pytest.mark.parametrize(
    "hashes",
    [
        pytest.param({}, id="no-hashes"),
        pytest.param({"sha512": file_hashes(FILE)["sha512"]}, id="sha512-only"),
        pytest.param({"sha256": ""}, id="empty-sha256"),
        pytest.param({"sha256": "AAAA"}, id="short-sha256"),
        pytest.param({"sha256": 5}, id="not-a-string"),
    ],
)
def test_a_file_named_without_a_valid_sha256_is_refused_unfetched(hashes):
    transport = ServeAnything()

    with pytest.raises(InvalidMetadata, match="no valid sha256"):
        RepositoryFiles(transport).by_hash(GUN, "snapshot", FileMeta(len(FILE), hashes))
    assert transport.paths == []


def test_a_file_is_fetched_by_its_sha256_and_checked_against_it():
    digest = hashlib.sha256(FILE).digest()
    meta = FileMeta(len(FILE), {"sha256": base64.b64encode(digest).decode()})
    transport = ServeAnything()

    assert RepositoryFiles(transport).by_hash(GUN, "snapshot", meta).raw == FILE
    assert transport.paths == [f"/v2/{GUN}/_trust/tuf/snapshot.{digest.hex()}.json"]


@pytest.mark.parametrize("bad", ["sha256", "sha512"])
def test_bytes_of_the_right_length_but_another_hash_are_refused(bad):
    meta = FileMeta(len(FILE), file_hashes(FILE))
    other = FILE.replace(b'"version":1', b'"version":2')
    hashes = {**meta.hashes, bad: file_hashes(other)[bad]}
    transport = ServeAnything(other if bad == "sha256" else FILE)

    with pytest.raises(InvalidMetadata, match="does not match"):
        RepositoryFiles(transport).by_hash(GUN, "snapshot", FileMeta(len(FILE), hashes))
