"""The verifying reader (docs/notary-protocol.md, "Reading") against a real notary-server and
notary-signer.

Repositories come from our ``NotaryClient`` with targets signed by the real CLI, or from
the CLI alone. Bad data is served through ``TamperingProxy``, a small HTTP proxy in front
of the real server that rewrites the bytes of one chosen file.
"""

import base64
import datetime as dt
import http.client
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from devtools.ports import free_port
from trust.notary import keys
from trust.notary.client import NotaryClient
from trust.notary.errors import InvalidMetadata, NotaryUnavailable, NotFound
from trust.notary.http_transport import HttpTransport
from trust.notary.metadata import RoleKeys, Root, format_expires, parse_file, sign
from trust.notary.reader import Reader
from trust.notary.transport import multipart, repository_scope
from trust.notary.verified import RootPin, VerifiedRepository

pytestmark = pytest.mark.notary

RELEASES, CI = "targets/releases", "targets/ci"
DIGEST = "5e" * 32


def fetch(url: str) -> tuple[int, str, bytes]:
    """One plain GET: status, Content-Type and body."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


class TamperingProxy:
    """Forwards GETs to the server; ``rewrite(pattern, change)`` alters matching files.

    ``pattern`` is matched against the file name after ``/_trust/tuf/`` (``root.json``,
    ``targets.<hex>.json``); ``change`` gets the server's bytes and returns what to serve.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rewrites: list[tuple[re.Pattern[str], Callable[[bytes], bytes]]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, content_type, body = fetch(proxy.upstream + self.path)
                name = self.path.rsplit("/_trust/tuf/", 1)[-1]
                if status == 200:
                    for pattern, change in proxy.rewrites:
                        if pattern.fullmatch(name):
                            body = change(body)
                            break
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def rewrite(self, pattern: str, change: Callable[[bytes], bytes]) -> None:
        self.rewrites.append((re.compile(pattern), change))

    def __enter__(self) -> "TamperingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class Delegate:
    """A delegation key as its holder keeps it: a self-signed P-256 certificate and key."""

    def __init__(self) -> None:
        self.private_key = keys.generate_ecdsa_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ci-robot")])
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(self.private_key, hashes.SHA256())
        )
        self.public = keys.certificate_tuf_key(self.certificate)

    def import_into(self, notary_cli, directory: Path, gun: str) -> None:
        pem = directory / "key.pem"
        pem.write_bytes(
            self.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        notary_cli("key", "import", str(pem), "-r", RELEASES, "-g", gun)


class OurRepository:
    """Scenario (a): initialised by ``NotaryClient``, targets signed by the real CLI."""

    def __init__(self, notary_server, notary_cli, gun: str, directory: Path) -> None:
        self.gun = gun
        self.root_private = keys.generate_ecdsa_key()
        self.root_key = keys.root_signing_key(self.root_private, gun)
        self.delegate = Delegate()
        NotaryClient(HttpTransport(notary_server.url)).initialize(
            gun,
            root_key=self.root_key,
            targets_key=keys.plain_signing_key(keys.generate_ecdsa_key()),
            delegations={RELEASES: [self.delegate.public], CI: [self.delegate.public]},
        )
        self.delegate.import_into(notary_cli, directory, gun)
        for role in (CI, RELEASES):
            notary_cli("addhash", gun, "v1.0", "12", "--sha256", DIGEST, "-r", role, "-p")

    @property
    def pin(self) -> RootPin:
        return RootPin.keys(self.root_key.key_id)


@pytest.fixture
def ours(notary_server, notary_cli, notary_gun, tmp_path) -> OurRepository:
    return OurRepository(notary_server, notary_cli, notary_gun, tmp_path)


@pytest.fixture
def proxy(notary_server) -> Iterator[TamperingProxy]:
    with TamperingProxy(notary_server.url) as running:
        yield running


def read_through(url: str, gun: str, **options) -> VerifiedRepository:
    return Reader(HttpTransport(url, timeout=10)).read(gun, **options)


def refused(url: str, gun: str, role: str, match: str, **options) -> InvalidMetadata:
    with pytest.raises(InvalidMetadata, match=match) as caught:
        read_through(url, gun, **options)
    assert type(caught.value) is InvalidMetadata
    assert caught.value.role == role
    assert str(caught.value).startswith(f"{gun} {role}: ")
    return caught.value


# -- (a) our repository, CLI signatures ----------------------------------------------------


def test_cli_signatures_in_our_delegations_verify_pinned_to_our_root_key(ours, notary_server):
    canonical = keys.canonical_key_id(
        x509.load_pem_x509_certificate(base64.b64decode(ours.root_key.public.public))
    )

    for pin in (ours.pin, RootPin.keys(canonical)):
        result = read_through(notary_server.url, ours.gun, pinned_root=pin)

        assert result.root_pinned is True
        assert result.root_key_ids == {ours.root_key.key_id}
        assert result.warnings == ()
        expected = base64.b64encode(bytes.fromhex(DIGEST)).decode()
        for role in (RELEASES, CI):
            assert result.roles[role].signers == {ours.delegate.public.key_id}
            assert result.roles[role].targets["v1.0"].hashes["sha256"] == expected
            assert result.roles[role].targets["v1.0"].length == 12
        assert result.lookup("v1.0").role == RELEASES


def test_a_pin_to_another_root_key_is_refused(ours, notary_server):
    stranger = keys.root_signing_key(keys.generate_ecdsa_key(), ours.gun)

    refused(
        notary_server.url,
        ours.gun,
        "root",
        "pin mismatch",
        pinned_root=RootPin.keys(stranger.key_id),
    )


# -- (b) a repository made by the CLI alone ------------------------------------------------


def test_a_cli_repository_is_read_on_first_use(notary_server, notary_cli, notary_gun, tmp_path):
    artifact = tmp_path / "artifact.txt"
    artifact.write_bytes(b"hello notary\n")
    notary_cli("init", notary_gun, "-p")
    notary_cli("key", "rotate", notary_gun, "snapshot", "-r")
    notary_cli("add", notary_gun, "v1", str(artifact), "-p")
    notary_cli("addhash", notary_gun, "v2", "12", "--sha256", DIGEST, "-p")

    result = read_through(notary_server.url, notary_gun)

    assert result.root_pinned is False
    assert result.versions["root"] == 2  # the snapshot rotation re-signed root
    targets = result.roles["targets"].targets
    assert targets["v1"].length == len(b"hello notary\n")
    assert set(targets["v1"].hashes) == {"sha256", "sha512"}
    assert targets["v2"].hashes == {"sha256": base64.b64encode(bytes.fromhex(DIGEST)).decode()}
    assert result.lookup("v2").role == "targets"

    # The CLI shows the root key's canonical ID; Docker pins with that one.
    listing = notary_cli("key", "list").stdout
    (root_line,) = [line for line in listing.splitlines() if line.split()[:1] == ["root"]]
    canonical = re.search(r"\b[0-9a-f]{64}\b", root_line).group(0)
    assert canonical in result.root_canonical_key_ids
    pinned = read_through(notary_server.url, notary_gun, pinned_root=RootPin.keys(canonical))
    assert pinned.root_pinned is True


def rotate_root(url: str, gun: str, old: keys.SigningKey, new: keys.SigningKey) -> None:
    """Publish root version + 1 naming only ``new``, signed by ``old`` and ``new``
    (docs/notary-protocol.md, "Publishing")."""
    transport = HttpTransport(url)
    current = transport.request(
        "GET", f"/v2/{gun}/_trust/tuf/root.json", scope=repository_scope(gun, "pull"), gun=gun
    )
    root = Root.from_signed(parse_file(current, role="root").signed)
    kept = {k: v for k, v in root.keys.items() if k not in root.roles["root"].keyids}
    rotated = replace(
        root,
        keys={**kept, new.key_id: new.public},
        roles={**root.roles, "root": RoleKeys((new.key_id,), 1)},
        version=root.version + 1,
    )
    body, content_type = multipart({"root": sign(rotated.to_signed(), [old, new])})
    transport.request(
        "POST",
        f"/v2/{gun}/_trust/tuf/",
        scope=repository_scope(gun, "push", "pull"),
        gun=gun,
        body=body,
        content_type=content_type,
    )


def test_a_pinned_root_key_rotated_out_is_followed_through_the_chain(ours, notary_server):
    second, third = (keys.root_signing_key(keys.generate_ecdsa_key(), ours.gun) for _ in "23")
    rotate_root(notary_server.url, ours.gun, ours.root_key, second)
    rotate_root(notary_server.url, ours.gun, second, third)  # version 3 has no trace of k1

    result = read_through(notary_server.url, ours.gun, pinned_root=ours.pin)

    assert result.root_pinned is True
    assert result.versions["root"] == 3
    assert result.root_key_ids == {third.key_id}
    assert result.roles[CI].signers == {ours.delegate.public.key_id}
    direct = read_through(notary_server.url, ours.gun, pinned_root=RootPin.keys(third.key_id))
    assert direct.versions == result.versions


# -- (c) bad data through a proxy ----------------------------------------------------------


def test_tampered_targets_are_refused(ours, proxy):
    proxy.rewrite(r"targets\.[0-9a-f]{64}\.json", lambda body: body.replace(b"Targets", b"Targetz"))

    refused(proxy.url, ours.gun, "targets", "sha256 does not match the snapshot")


def test_a_tampered_delegation_is_skipped_with_a_warning(ours, proxy):
    proxy.rewrite(r"targets/ci\.[0-9a-f]{64}\.json", lambda body: body.replace(b"v1.0", b"v6.6"))

    result = read_through(proxy.url, ours.gun, pinned_root=ours.pin)

    assert CI not in result.roles
    assert [w.role for w in result.warnings] == [CI]
    assert result.roles[RELEASES].signers == {ours.delegate.public.key_id}


def test_an_expired_root_is_refused(ours, proxy):
    def expire(body: bytes) -> bytes:
        signed = parse_file(body, role="root").signed
        signed["expires"] = format_expires(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
        return sign(signed, [ours.root_key])  # validly signed, but expired

    proxy.rewrite(r"root\.json", expire)

    refused(proxy.url, ours.gun, "root", "expired at", pinned_root=ours.pin)


def test_a_wrongly_signed_timestamp_is_refused(ours, proxy):
    def corrupt(body: bytes) -> bytes:
        document = json.loads(body)
        raw = bytearray(base64.b64decode(document["signatures"][0]["sig"]))
        raw[-1] ^= 0x01
        document["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
        return json.dumps(document, separators=(",", ":")).encode()

    proxy.rewrite(r"timestamp\.json", corrupt)

    refused(proxy.url, ours.gun, "timestamp", "not signed by a threshold of the timestamp keys")


def test_a_rolled_back_timestamp_is_refused(ours, proxy, notary_server):
    seen = read_through(notary_server.url, ours.gun, pinned_root=ours.pin)
    assert seen.versions["timestamp"] > 1
    _, _, old = fetch(f"{notary_server.url}/v2/{ours.gun}/_trust/tuf/1.timestamp.json")
    proxy.rewrite(r"timestamp\.json", lambda body: old)

    refused(
        proxy.url,
        ours.gun,
        "timestamp",
        f"rollback: version 1 is older than the known {seen.versions['timestamp']}",
        pinned_root=ours.pin,
        known_versions=seen.versions,
    )


# -- (d), (e) transport errors -------------------------------------------------------------


def test_a_server_that_is_down_is_unavailable(notary_gun):
    closed = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(NotaryUnavailable):
        Reader(HttpTransport(closed, timeout=2)).read(notary_gun)


def test_an_unknown_gun_has_no_trust_data(notary_server, notary_gun):
    with pytest.raises(NotFound, match="has no trust data") as caught:
        read_through(notary_server.url, notary_gun)
    assert caught.value.gun == notary_gun
