"""``trust.notary.connections`` through ``HttpTransport``: keep-alive, stale connections,
limits, TLS and threads (docs/notary-protocol.md, "Reading")."""

import contextlib
import datetime as dt
import ipaddress
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

from tests.trust.notary.local_http import get
from trust.notary.errors import NotaryRejected, NotaryUnavailable, NotFound
from trust.notary.http_transport import HttpTransport

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
