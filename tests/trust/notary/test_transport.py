"""``trust.notary.transport``: the contract every transport keeps, and the paths and bodies
of the trust data API."""

import http.client
import ssl

import pytest

from tests.trust.notary.local_http import GUN, get
from trust.notary.errors import (
    InvalidMetadata,
    NotaryError,
    NotaryRejected,
    NotaryUnavailable,
    NotFound,
    VersionConflict,
)
from trust.notary.transport import Transport, multipart, trust_path

# --- multipart (docs/notary-protocol.md, "Publishing") ---------------------------------


def test_multipart_is_one_part_per_role_with_the_slash_kept_in_the_filename():
    body, content_type = multipart({"targets": b'{"signed":{}}', "targets/releases": b"{}"})

    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.removeprefix("multipart/form-data; boundary=")
    assert (
        body
        == (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="files"; filename="targets"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
            '{"signed":{}}\r\n'
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="files"; filename="targets/releases"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
            "{}\r\n"
            f"--{boundary}--\r\n"
        ).encode()
    )


def test_multipart_boundaries_differ_between_bodies():
    assert multipart({"root": b"{}"})[1] != multipart({"root": b"{}"})[1]


# --- paths (docs/notary-protocol.md, "Repositories and roles", "The change feed") --------


def test_trust_paths_are_the_servers_wire_format():
    assert trust_path(GUN, "tuf", "root.json") == f"/v2/{GUN}/_trust/tuf/root.json"
    assert trust_path(GUN) == f"/v2/{GUN}/_trust/tuf/"
    assert (
        trust_path(GUN, "changefeed", change_id=7, records=100)
        == f"/v2/{GUN}/_trust/changefeed?change_id=7&records=100"
    )
    with pytest.raises(ValueError, match="takes no name"):
        trust_path(GUN, "changefeed", "root.json")


# --- the contract every transport keeps (errors.py) -----------------------------------


class Raising(Transport):
    """A transport whose exchange fails with ``error``, or answers ``body``."""

    def __init__(self, error: BaseException | None = None, body: bytes = b"") -> None:
        self.error = error
        self.body = body

    def _request(self, method, path, **options):
        if self.error is not None:
            raise self.error
        return self.body


def test_a_transport_must_implement_the_exchange():
    class Incomplete(Transport):
        pass

    with pytest.raises(TypeError, match="_request"):
        Incomplete()


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError(104, "Connection reset by peer"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
        ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED]"),
        http.client.IncompleteRead(b"par", 10),
        http.client.RemoteDisconnected("Remote end closed connection without response"),
        ValueError("Invalid header value"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_failed_exchange_is_unavailable_and_names_the_gun(error):
    with pytest.raises(NotaryUnavailable) as caught:
        get(Raising(error), "/x", role="targets")

    assert (caught.value.gun, caught.value.role) == (GUN, "targets")
    assert str(caught.value).startswith(f"{GUN} targets: ")
    assert type(error).__name__ in str(caught.value)
    assert caught.value.__cause__ is error


@pytest.mark.parametrize(
    "error",
    [
        NotFound("gone", gun=GUN, code="METADATA_NOT_FOUND", status=404),
        VersionConflict("stale", gun=GUN, code="VERSION", status=400),
        InvalidMetadata("bad", gun=GUN),
        NotaryUnavailable("down", gun=GUN),
    ],
    ids=lambda error: type(error).__name__,
)
def test_notary_errors_pass_through_as_they_are(error):
    with pytest.raises(NotaryError) as caught:
        get(Raising(error), "/x")

    assert caught.value is error


@pytest.mark.parametrize("error", [KeyError("files"), TypeError("not bytes"), RuntimeError("bug")])
def test_a_bug_in_a_transport_is_a_notary_error_that_no_caller_retries(error):
    with pytest.raises(NotaryError) as caught:
        get(Raising(error), "/x", role="snapshot")

    assert not isinstance(caught.value, NotaryUnavailable | NotaryRejected | InvalidMetadata)
    assert (caught.value.gun, caught.value.role) == (GUN, "snapshot")
    assert caught.value.__cause__ is error


def test_an_interrupt_is_not_a_notary_error():
    with pytest.raises(KeyboardInterrupt):
        get(Raising(KeyboardInterrupt()), "/x")


def test_every_transports_answer_is_held_to_the_limit():
    assert get(Raising(body=b"x" * 10), "/x", limit=10) == b"x" * 10

    with pytest.raises(NotaryRejected) as caught:
        get(Raising(body=b"x" * 11), "/x", role="root", limit=10)
    assert caught.value.code == "TOO_LARGE"
    assert (caught.value.gun, caught.value.role) == (GUN, "root")


def test_the_observer_is_told_of_each_request_its_time_and_its_error():
    seen: list[tuple[str, float, NotaryError | None]] = []
    transports = [
        Raising(body=b"{}"),
        Raising(ConnectionRefusedError(111, "Connection refused")),
        Raising(body=b"x" * 11),
        Raising(KeyboardInterrupt()),
    ]
    for transport in transports:
        transport.observer = lambda *observed: seen.append(observed)

    assert get(transports[0], "/x") == b"{}"
    with pytest.raises(NotaryUnavailable):
        get(transports[1], "/x")
    with pytest.raises(NotaryRejected):
        get(transports[2], "/x", limit=10)
    with pytest.raises(KeyboardInterrupt):  # not a request that failed: nothing to tell
        get(transports[3], "/x")

    assert [(method, type(error)) for method, _, error in seen] == [
        ("GET", type(None)),
        ("GET", NotaryUnavailable),
        ("GET", NotaryRejected),
    ]
    assert all(seconds >= 0 for _, seconds, _ in seen)
