"""``trust.notary.transport`` against a tiny local HTTP server: bodies, challenges, errors."""

import contextlib
import datetime as dt
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trust.notary.errors import (
    InvalidMetadata,
    NotaryError,
    NotaryRejected,
    NotaryUnavailable,
    NotFound,
    VersionConflict,
)
from trust.notary.transport import (
    Challenge,
    HttpTransport,
    TokenVerdict,
    Transport,
    multipart,
    trust_path,
)

GUN = "example.com/app"
TOKEN = "good-token"
THIN_TOKEN = "thin-token"  # valid, but grants too little
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
    "/long-error": (404, {}, b"e" * 5000),
    "/close": (200, {"Connection": "close"}, b"closing"),
    "/basic/v2/": (401, {"WWW-Authenticate": 'Basic realm="proxy"'}, b""),
    "/gone/v2/": (404, {}, b"404 page not found"),
    "/failing/v2/": (503, {}, b"unavailable"),
}


@pytest.fixture(scope="module")
def server():
    """Answers ``ROUTES``; under ``/auth/`` it demands ``Bearer good-token`` and, as
    notary-server does, says in its challenge what it made of another token
    (docs/notary-protocol.md, "Token authentication")."""
    seen: list[tuple[str, str, str | None, bytes]] = []
    connections: list[tuple[str, int]] = []  # the client address of each request

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as notary-server does

        def _handle(self) -> None:
            connections.append(self.client_address)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            authorization = self.headers.get("Authorization")
            seen.append((self.command, self.path, authorization, body))
            if self.path.startswith("/token?"):
                status, headers, payload = 200, {}, b'{"token":"good-token","expires_in":300}'
            elif self.path.startswith("/realm/"):
                if authorization == f"Bearer {TOKEN}":
                    status, headers, payload = 200, {}, b"{}"
                else:
                    port = self.server.server_address[1]
                    realm = f'Bearer realm="http://127.0.0.1:{port}/token",service="notary"'
                    status, headers, payload = 401, {"WWW-Authenticate": realm}, b""
            elif self.path.startswith("/auth/"):
                if authorization == f"Bearer {TOKEN}":
                    status, headers, payload = 200, {}, b"{}"
                else:
                    challenge = CHALLENGE
                    if authorization == f"Bearer {THIN_TOKEN}":
                        challenge += ',error="insufficient_scope"'
                    elif authorization is not None:
                        challenge += ',error="invalid_token"'
                    status, headers, payload = 401, {"WWW-Authenticate": challenge}, b""
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
    httpd.connections = connections
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def transport(server):
    return HttpTransport(f"http://127.0.0.1:{server.server_address[1]}", timeout=5)


def get(transport, path: str, **options) -> bytes:
    return transport.request("GET", path, scope=f"repository:{GUN}:pull", gun=GUN, **options)


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


# --- challenges (docs/notary-protocol.md, "Token authentication") ----------------------


def test_challenge_gives_realm_service_and_error():
    header = CHALLENGE + ',error="insufficient_scope"'

    assert Challenge.parse(header) == Challenge(
        "https://auth.example/token", "notary-server", "insufficient_scope"
    )
    assert Challenge.parse(header.replace("Bearer", "bearer", 1)) == Challenge.parse(header)
    assert Challenge.parse(CHALLENGE) == Challenge("https://auth.example/token", "notary-server")


@pytest.mark.parametrize(
    "header", ['Basic realm="notary"', 'Bearer service="notary-server"', "", "Bearer"]
)
def test_challenge_without_a_bearer_realm_is_none(header):
    assert Challenge.parse(header) is None


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


def test_a_failing_token_minter_reaches_the_caller_as_a_notary_error(server):
    def minter(challenge: Challenge, scope: str) -> str:
        raise RuntimeError("the signing key is sealed")

    transport = HttpTransport(f"http://127.0.0.1:{server.server_address[1]}", token_minter=minter)

    with pytest.raises(NotaryError, match="sealed") as caught:
        get(transport, "/auth/x")
    assert not isinstance(caught.value, NotaryUnavailable)
    assert caught.value.gun == GUN


# --- tokens (docs/notary-protocol.md, "Token authentication") --------------------------


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


def test_a_token_from_the_realm_is_fetched_with_basic_credentials(server):
    transport = HttpTransport(
        f"http://127.0.0.1:{server.server_address[1]}", username="ci", password="pa:ss"
    )
    scope = f"repository:{GUN}:pull"

    assert transport.request("GET", "/realm/one", scope=scope, gun=GUN) == b"{}"
    assert transport.request("GET", "/realm/two", scope=scope, gun=GUN) == b"{}"

    [realm_request] = [entry for entry in server.seen if entry[1].startswith("/token?")][-1:]
    assert "account=ci" in realm_request[1]
    assert "scope=repository%3Aexample.com%2Fapp%3Apull" in realm_request[1]
    assert realm_request[2] == "Basic Y2k6cGE6c3M="
    assert transport.requests_sent == 3  # 401, retry, then the cached token; realm not counted


# --- what the server makes of a token (docs/notary-protocol.md, "Token authentication") ---


def verdict(server, token: str, prefix: str = "/auth") -> TokenVerdict:
    minted: list[str] = []

    def minter(challenge: Challenge, scope: str) -> str:
        minted.append(scope)
        return TOKEN

    url = f"http://127.0.0.1:{server.server_address[1]}{prefix}"
    answer = HttpTransport(url, token_minter=minter).token_verdict(token)
    assert minted == []  # only the token under test is shown, never one of its own
    return answer


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (TOKEN, TokenVerdict.ACCEPTED),
        (THIN_TOKEN, TokenVerdict.INSUFFICIENT_SCOPE),
        ("forged-token", TokenVerdict.INVALID),
    ],
)
def test_a_token_verdict_is_what_the_server_answers_that_token(server, token, expected):
    assert verdict(server, token) is expected

    asked = [(path, auth) for _, path, auth, _ in server.seen[-2:]]
    assert asked == [("/auth/v2/", None), ("/auth/v2/", f"Bearer {token}")]


def test_a_server_that_answers_without_a_token_is_never_shown_it(server):
    assert verdict(server, "forged-token", prefix="") is TokenVerdict.NOT_REQUIRED

    assert server.seen[-1][1:3] == ("/v2/", None)


@pytest.mark.parametrize(
    ("prefix", "error"),
    [("/basic", NotaryRejected), ("/gone", NotFound), ("/failing", NotaryUnavailable)],
)
def test_a_server_without_a_bearer_challenge_gives_no_verdict(server, prefix, error):
    with pytest.raises(error):
        verdict(server, TOKEN, prefix=prefix)

    assert server.seen[-1][1:3] == (f"{prefix}/v2/", None)  # the token was never sent


def test_a_token_verdict_from_a_closed_port_is_unavailable():
    from devtools.ports import free_port

    closed = HttpTransport(f"http://127.0.0.1:{free_port()}", timeout=2)

    with pytest.raises(NotaryUnavailable, match="cannot reach"):
        closed.token_verdict(TOKEN)


# --- connections: keep-alive, stale ones, limits (docs/notary-protocol.md, "Reading") ---


def connections_used(server, requests: int) -> int:
    return len(set(server.connections[-requests:]))


def test_connections_are_kept_alive_and_reused(server, transport):
    for _ in range(5):
        get(transport, "/anything")

    assert connections_used(server, 5) == 1
    assert transport.requests_sent == 5


def test_a_connection_the_server_closes_is_not_reused(server, transport):
    assert get(transport, "/close") == b"closing"
    get(transport, "/anything")

    assert connections_used(server, 2) == 2


def test_a_short_error_body_keeps_the_connection_a_long_one_closes_it(server, transport):
    with pytest.raises(NotFound):
        get(transport, "/missing")
    get(transport, "/anything")
    assert connections_used(server, 2) == 1

    with pytest.raises(NotFound) as error:
        get(transport, "/long-error")
    assert len(str(error.value)) < 300
    get(transport, "/anything")
    assert connections_used(server, 2) == 2


def test_a_response_over_the_limit_closes_its_connection(server, transport):
    with pytest.raises(NotaryRejected):
        get(transport, "/big", limit=10)
    get(transport, "/anything")

    assert connections_used(server, 2) == 2


class ScriptedServer:
    """A raw TCP server: each accepted connection runs the next ``script`` function."""

    def __init__(self, *scripts) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.accepted = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(scripts,), daemon=True)
        self.thread.start()

    def _run(self, scripts) -> None:
        try:
            for script in scripts:
                connection, _ = self.listener.accept()
                self.accepted += 1
                with connection:
                    connection.settimeout(5)
                    script(connection)
            # Any further connection is counted, not served.
            self.listener.settimeout(0.5)
            with contextlib.suppress(OSError):
                self.listener.accept()[0].close()
                self.accepted += 1
        finally:
            self.done.set()

    def close(self) -> None:
        self.done.wait(10)
        self.listener.close()


def read_request(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def answer(connection: socket.socket, body: bytes) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


def test_a_stale_kept_alive_connection_is_replaced_once():
    def serve_then_drop(connection):
        read_request(connection)
        answer(connection, b"first")
        read_request(connection)  # the server gave up on the connection as this arrived

    def serve(connection):
        read_request(connection)
        answer(connection, b"second")

    scripted = ScriptedServer(serve_then_drop, serve)
    transport = HttpTransport(scripted.url, timeout=5)

    assert get(transport, "/one") == b"first"
    assert get(transport, "/two") == b"second"
    scripted.close()
    assert scripted.accepted == 2
    assert transport.requests_sent == 3


def test_a_fresh_connection_that_drops_is_not_retried():
    scripted = ScriptedServer(read_request)
    transport = HttpTransport(scripted.url, timeout=5)

    with pytest.raises(NotaryUnavailable, match="RemoteDisconnected"):
        get(transport, "/one")
    scripted.close()
    assert scripted.accepted == 1


def test_a_stale_connection_is_retried_only_once():
    def serve_then_drop(connection):
        read_request(connection)
        answer(connection, b"first")
        read_request(connection)

    scripted = ScriptedServer(serve_then_drop, read_request)
    transport = HttpTransport(scripted.url, timeout=5)

    assert get(transport, "/one") == b"first"
    with pytest.raises(NotaryUnavailable):
        get(transport, "/two")
    scripted.close()
    assert scripted.accepted == 2


def test_an_endless_response_over_the_limit_is_cut_off_not_drained():
    sent = []

    def stream_forever(connection):
        read_request(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n")
        deadline = time.monotonic() + 10  # bounded: stops by itself
        with contextlib.suppress(OSError):
            while time.monotonic() < deadline:
                connection.sendall(b"x" * 65536)
                sent.append(1)
        sent.append("stopped")

    scripted = ScriptedServer(stream_forever)
    transport = HttpTransport(scripted.url, timeout=5)
    started = time.monotonic()

    with pytest.raises(NotaryRejected) as error:
        get(transport, "/huge", limit=100_000)
    assert error.value.code == "TOO_LARGE"
    scripted.close()
    assert time.monotonic() - started < 5
    assert sent[-1] == "stopped"


def test_an_endless_error_body_is_read_to_1_kib_only():
    def stream_forever(connection):
        read_request(connection)
        connection.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 1000000000000\r\n\r\n")
        deadline = time.monotonic() + 10
        with contextlib.suppress(OSError):
            while time.monotonic() < deadline:
                connection.sendall(b"y" * 65536)

    scripted = ScriptedServer(stream_forever)
    started = time.monotonic()

    with pytest.raises(NotaryUnavailable, match="server error 500"):
        get(HttpTransport(scripted.url, timeout=5), "/huge")
    scripted.close()
    assert time.monotonic() - started < 5


def test_a_server_that_does_not_answer_times_out_as_unavailable():
    release = threading.Event()

    def hang(connection):
        read_request(connection)
        release.wait(10)

    scripted = ScriptedServer(hang)
    started = time.monotonic()

    with pytest.raises(NotaryUnavailable, match="timed out"):
        get(HttpTransport(scripted.url, timeout=0.5), "/slow")
    assert time.monotonic() - started < 3
    release.set()
    scripted.close()


# --- TLS: always verified ----------------------------------------------------------------


def self_signed(tmp_path, name: str, ip: str | None) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    alternatives = [x509.DNSName(name)]
    if ip:
        alternatives.append(x509.IPAddress(ipaddress.ip_address(ip)))
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate naming that address."""
    cert_file, key_file = self_signed(tmp_path, "localhost", "127.0.0.1")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"secure")

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    httpd.url = f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.cert_file = cert_file
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_https_verifies_against_the_ca_bundle(tls_server):
    transport = HttpTransport(tls_server.url, ca_bundle=tls_server.cert_file, timeout=5)

    assert get(transport, "/x") == b"secure"
    assert get(transport, "/y") == b"secure"


def test_https_refuses_a_certificate_it_cannot_verify(tls_server, tmp_path):
    with pytest.raises(NotaryUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        get(HttpTransport(tls_server.url, timeout=5), "/x")

    other, _ = self_signed(tmp_path, "other.example", None)
    with pytest.raises(NotaryUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        get(HttpTransport(tls_server.url, ca_bundle=other, timeout=5), "/x")


def test_https_refuses_a_certificate_for_another_name(tls_server):
    host_url = tls_server.url.replace("127.0.0.1", "localhost")
    assert get(HttpTransport(host_url, ca_bundle=tls_server.cert_file, timeout=5), "/x")

    # The certificate names localhost and 127.0.0.1, not 127.0.0.2 (loopback too).
    other_url = tls_server.url.replace("127.0.0.1", "127.0.0.2")
    with pytest.raises(NotaryUnavailable):
        get(HttpTransport(other_url, ca_bundle=tls_server.cert_file, timeout=5), "/x")


def test_threads_share_one_transport(server, transport):
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: get(transport, "/anything"), range(64)))

    assert bodies == [b"ok"] * 64
    assert transport.requests_sent == 64
    assert connections_used(server, 64) <= 8
