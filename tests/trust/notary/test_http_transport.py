"""``trust.notary.http_transport`` against a tiny local HTTP server: what its answers mean."""

import pytest

from tests.trust.notary.local_http import GUN, get
from trust.notary.errors import NotaryRejected, NotaryUnavailable, NotFound, VersionConflict
from trust.notary.http_transport import HttpTransport

# --- errors (docs/notary-protocol.md, "Repositories and roles"; size limits: "Reading") ---


def test_404_is_not_found(transport):
    with pytest.raises(NotFound) as error:
        get(transport, "/missing")
    assert error.value.code == "METADATA_NOT_FOUND"
    assert error.value.status == 404


def test_400_version_is_a_version_conflict(transport):
    with pytest.raises(VersionConflict) as error:
        get(transport, "/old")
    assert error.value.code == "VERSION"


def test_other_400s_are_rejected_with_the_servers_code_and_detail(transport):
    with pytest.raises(NotaryRejected) as error:
        get(transport, "/invalid", role="root")
    assert type(error.value) is NotaryRejected
    assert error.value.code == "INVALID_UPDATE"
    assert "ErrBadRoot" in str(error.value)
    assert str(error.value).startswith(f"{GUN} root: ")


@pytest.mark.parametrize("path", ["/broken", "/gateway"])
def test_5xx_is_unavailable(transport, path):
    with pytest.raises(NotaryUnavailable):
        get(transport, path)


def test_a_response_over_the_limit_is_refused(transport):
    assert get(transport, "/big", limit=2000) == b"x" * 2000

    with pytest.raises(NotaryRejected) as error:
        get(transport, "/big", limit=1999)
    assert error.value.code == "TOO_LARGE"


def test_a_closed_port_is_unavailable():
    from devtools.ports import free_port

    closed = HttpTransport(f"http://127.0.0.1:{free_port()}", timeout=2)

    with pytest.raises(NotaryUnavailable):
        get(closed, "/anything")


def test_a_401_without_a_bearer_challenge_is_unauthorized(transport):
    with pytest.raises(NotaryRejected) as error:
        get(transport, "/bare-401")
    assert error.value.code == "UNAUTHORIZED"
