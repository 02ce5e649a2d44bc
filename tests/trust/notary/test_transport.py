"""``trust.notary.transport`` against a tiny local HTTP server: bodies, challenges, errors."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from trust.notary.errors import NotaryRejected, NotaryUnavailable, NotFound, VersionConflict
from trust.notary.transport import Challenge, HttpTransport, multipart

GUN = "example.com/app"
TOKEN = "good-token"
CHALLENGE = (
    'Bearer realm="https://auth.example/token",service="notary-server",'
    f'scope="repository:{GUN}:push,pull"'
)


def error_body(code: str, message: str, detail=None) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]}).encode()


# path -> (status, headers, body)
ROUTES = {
    "/missing": (404, {}, error_body("METADATA_NOT_FOUND", "not found")),
    "/old": (400, {}, error_body("VERSION", "A newer version of metadata is already available.")),
    "/invalid": (400, {}, error_body("INVALID_UPDATE", "invalid", {"Name": "ErrBadRoot"})),
    "/broken": (500, {}, error_body("UNKNOWN", "unknown error")),
    "/gateway": (502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>"),
    "/big": (200, {}, b"x" * 2000),
    "/bare-401": (401, {"WWW-Authenticate": 'Basic realm="x"'}, b""),
}


@pytest.fixture(scope="module")
def server():
    """Answers ``ROUTES``; under ``/auth/`` it demands ``Bearer good-token`` (§7.2)."""
    seen: list[tuple[str, str, str | None, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            authorization = self.headers.get("Authorization")
            seen.append((self.command, self.path, authorization, body))
            if self.path.startswith("/auth/"):
                if authorization == f"Bearer {TOKEN}":
                    status, headers, payload = 200, {}, b"{}"
                else:
                    status, headers, payload = 401, {"WWW-Authenticate": CHALLENGE}, b""
            else:
                status, headers, payload = ROUTES.get(self.path, (200, {}, b"ok"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    httpd.seen = seen
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def transport(server):
    return HttpTransport(f"http://127.0.0.1:{server.server_address[1]}", timeout=5)


def get(transport, path: str, **options) -> bytes:
    return transport.request("GET", path, scope=f"repository:{GUN}:pull", gun=GUN, **options)


# --- multipart (§1.2) ------------------------------------------------------------------


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


# --- challenges (§7.2) -----------------------------------------------------------------


def test_challenge_gives_realm_and_service():
    header = CHALLENGE + ',error="insufficient_scope"'

    assert Challenge.parse(header) == Challenge("https://auth.example/token", "notary-server")
    assert Challenge.parse(header.replace("Bearer", "bearer", 1)) == Challenge.parse(header)


@pytest.mark.parametrize(
    "header", ['Basic realm="notary"', 'Bearer service="notary-server"', "", "Bearer"]
)
def test_challenge_without_a_bearer_realm_is_none(header):
    assert Challenge.parse(header) is None


# --- errors (§1.3, §8.17) --------------------------------------------------------------


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
    from trust.devnotary import free_port

    closed = HttpTransport(f"http://127.0.0.1:{free_port()}", timeout=2)

    with pytest.raises(NotaryUnavailable):
        get(closed, "/anything")


def test_a_401_without_a_bearer_challenge_is_unauthorized(transport):
    with pytest.raises(NotaryRejected) as error:
        get(transport, "/bare-401")
    assert error.value.code == "UNAUTHORIZED"


# --- tokens (§7.3) ---------------------------------------------------------------------


def test_a_minted_token_is_fetched_once_per_scope_and_reused(server):
    minted: list[tuple[Challenge, str]] = []

    def minter(challenge: Challenge, scope: str) -> str:
        minted.append((challenge, scope))
        return TOKEN

    transport = HttpTransport(f"http://127.0.0.1:{server.server_address[1]}", token_minter=minter)
    push = f"repository:{GUN}:push,pull"

    for _ in range(3):
        transport.request("POST", "/auth/publish", scope=push, gun=GUN, body=b"data")
    transport.request("GET", "/auth/read", scope=f"repository:{GUN}:pull", gun=GUN)

    assert [scope for _, scope in minted] == [push, f"repository:{GUN}:pull"]
    assert minted[0][0] == Challenge("https://auth.example/token", "notary-server")
    # A 401 and a retry for each new scope; the cached token goes out with the first try.
    assert transport.requests_sent == 2 + 1 + 1 + 2
    published = [entry for entry in server.seen if entry[1] == "/auth/publish"]
    assert [auth for _, _, auth, _ in published[-4:]] == [None] + [f"Bearer {TOKEN}"] * 3
    assert all(body == b"data" for *_, body in published[-4:])
