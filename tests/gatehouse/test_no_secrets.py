"""No secret leaks into a log line or a response body.

Every log record (all loggers, DEBUG) is captured through ``caplog`` and through handlers on
the root logger that use the real formatters (the console's and the JSON one), and every
response body and header is kept, while the secrets go through the system: passwords (right
and wrong), API tokens, Notary tokens, the bundle's private key, the root key export and its
passphrase, and the custody keys that sign trust data. Each secret may appear only in the
one response whose purpose is to deliver it.
"""

import base64
import io
import logging

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from rest_framework.test import APIClient

from accounts.services import api_token_create
from gatehouse.logging import ContextFilter, JsonFormatter
from tests.bundles.helpers import certificate_pem, open_bundle, signed_nonce
from tests.factories import PASSWORD, make_team, make_user
from tests.trust.helpers import run_jobs
from trust import custody
from trust.models import CustodyKey, Job
from trust.token_service.keys import token_key_activate, token_key_stage

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "brand-new-secret-passphrase-42"
WRONG_PASSWORD = "a-wrong-guess-that-must-not-show"
EXPORT_PASSPHRASE = "offline backup passphrase 7"
CHUNK = 16


def chunks(text: str) -> set[str]:
    """16-character pieces of each line of base64 (or PEM) text."""
    pieces = set()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("-----"):
            continue
        pieces.update(line[i : i + CHUNK] for i in range(0, len(line) - CHUNK + 1, CHUNK))
    return pieces


def key_material(key) -> set[str]:
    """Pieces of a private key's secret scalar in any encoding a careless line might use.

    The scalar is in every encoding of the private key (PKCS#8, SEC1, DER, PEM); 16
    base64 characters taken wholly from it, at each of the three byte alignments, match
    whatever the framing, and public keys (which share the framing) never match.
    """
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    needles = {scalar.hex()[i : i + 32] for i in range(0, 33, 8)}
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + scalar + bytes(3)).decode()
        inner = encoded[(shift * 4 + 2) // 3 + 1 : ((shift + 32) * 4) // 3 - 1]
        needles.update(inner[i : i + CHUNK] for i in range(len(inner) - CHUNK + 1))
    return needles


def pem_of(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_key_material_finds_the_key_in_its_encodings():
    key = ec.generate_private_key(ec.SECP256R1())
    needles = key_material(key)
    for text in (
        pem_of(key),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode(),
        base64.b64encode(b"x" + key.private_numbers().private_value.to_bytes(32, "big")).decode(),
        f"{key.private_numbers().private_value:064x}",
    ):
        assert any(needle in text for needle in needles), text
    other = ec.generate_private_key(ec.SECP256R1())
    assert not any(needle in pem_of(other) for needle in needles)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def plain_needles(secret: str) -> set[str]:
    return {secret, base64.b64encode(secret.encode()).decode()}


class Capture:
    """Every response (label -> body and headers) and every log line."""

    def __init__(self, caplog):
        self.caplog = caplog
        self.responses: list[tuple[str, str]] = []
        self.stream = io.StringIO()
        console = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
        self.handlers = []
        for formatter in (console.formatter, JsonFormatter()):
            handler = logging.StreamHandler(self.stream)
            handler.setLevel(logging.DEBUG)
            handler.setFormatter(formatter)
            handler.addFilter(ContextFilter())
            self.handlers.append(handler)

    def __enter__(self):
        self.caplog.set_level(logging.DEBUG)
        for handler in self.handlers:
            logging.getLogger().addHandler(handler)
        return self

    def __exit__(self, *exc):
        for handler in self.handlers:
            logging.getLogger().removeHandler(handler)

    def call(self, label: str, client, method: str, path: str, data=None, **extra):
        if isinstance(client, APIClient):
            response = getattr(client, method)(path, data, format="json", **extra)
        else:
            response = getattr(client, method)(path, data or {}, **extra)
        content = b"".join(response.streaming_content) if response.streaming else response.content
        headers = "\n".join(f"{name}: {value}" for name, value in response.items())
        self.responses.append((label, headers + "\n\n" + content.decode("latin-1")))
        return response, content

    def log_text(self) -> str:
        lines = [self.stream.getvalue(), self.caplog.text]
        for record in self.caplog.records:
            lines.append(record.getMessage())
            lines.append(repr(record.__dict__))
        return "\n".join(lines)


def api_client(user) -> tuple[APIClient, str]:
    raw, _ = api_token_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, raw


def scenario(capture: Capture, *, notary_gun: str | None = None) -> dict:
    """Drive the flows; return {secret name: (needles, label of the one allowed response)}."""
    admin = make_user("root", is_admin=True)
    alice = make_user("alice")
    make_team("ci", members=(alice,), actor=admin)
    admin_api, admin_token = api_client(admin)
    secrets: dict[str, tuple[set[str], str | None]] = {}

    # A failed and a good login through the API, with a password.
    anonymous = APIClient()
    capture.call(
        "bad login",
        anonymous,
        "post",
        "/api/v1/auth/login/",
        {"username": "alice", "password": WRONG_PASSWORD},
    )
    response, body = capture.call(
        "login",
        anonymous,
        "post",
        "/api/v1/auth/login/",
        {"username": "alice", "password": PASSWORD},
    )
    assert response.status_code == 200, body
    login_token = response.json()["token"]
    assert login_token in body.decode()
    alice_api = APIClient()
    alice_api.credentials(HTTP_AUTHORIZATION=f"Bearer {login_token}")

    # The console login too.
    browser = Client()
    capture.call(
        "console bad login",
        browser,
        "post",
        "/login/",
        {"username": "alice", "password": WRONG_PASSWORD},
    )

    # A client bundle, then a key registered from a certificate.
    response, archive = capture.call(
        "bundle", alice_api, "post", "/api/v1/bundles/", {"label": "laptop", "signing": True}
    )
    assert response.status_code == 200
    files = open_bundle(archive)
    key_pem = files["key.pem"].decode()
    assert "PRIVATE KEY" in key_pem
    response, _ = capture.call("challenge", alice_api, "post", "/api/v1/keys/challenge/")
    nonce = response.json()["nonce"]
    registered = ec.generate_private_key(ec.SECP256R1())
    response, _ = capture.call(
        "register key",
        alice_api,
        "post",
        "/api/v1/users/alice/keys/",
        {
            "certificate": certificate_pem(key=registered),
            "nonce": nonce,
            "signature": signed_nonce(registered, nonce),
            "label": "ci",
        },
    )
    assert response.status_code == 201
    # The bundle's private key pasted where the certificate goes: refused, never repeated.
    pasted = {"certificate": key_pem, "nonce": nonce, "signature": "AAAA", "label": "x"}
    response, _ = capture.call(
        "register a private key", alice_api, "post", "/api/v1/users/alice/keys/", pasted
    )
    assert response.status_code == 400
    alice_browser = Client()
    alice_browser.force_login(alice)
    response, _ = capture.call(
        "console register a private key",
        alice_browser,
        "post",
        "/profile/keys/register/",
        pasted,
    )
    assert response.status_code == 200
    assert "This is a private key" in response.content.decode()
    capture.call("keys", alice_api, "get", "/api/v1/users/alice/keys/")

    # The root key, made as `manage.py root_key` does, exported with a passphrase.
    custody.root_key()
    response, exported = capture.call(
        "export",
        admin_api,
        "post",
        "/api/v1/trust/root/export/",
        {"passphrase": EXPORT_PASSPHRASE},
    )
    assert response.status_code == 200, exported
    assert exported.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    capture.call("trust root", admin_api, "get", "/api/v1/trust/root/")

    # A Notary token with Basic credentials: the password, then an API token in its place.
    query = {"service": "notary-server", "scope": "repository:registry.example.com/ci/app:pull"}
    response, token_body = capture.call(
        "notary token",
        Client(),
        "get",
        "/auth/token",
        {**query, "account": "alice"},
        HTTP_AUTHORIZATION=basic("alice", PASSWORD),
    )
    assert response.status_code == 200, token_body
    notary_token = response.json()["token"]
    alice_raw_api, _ = api_token_create(user=alice)
    response, token_body_2 = capture.call(
        "notary token by api token",
        Client(),
        "get",
        "/auth/token",
        query,
        HTTP_AUTHORIZATION=basic("alice", alice_raw_api),
    )
    assert response.status_code == 200, token_body_2
    notary_token_2 = response.json()["token"]
    # The token-signing key rotated: staged, then signing the next token.
    token_key_stage()
    token_key_activate()
    response, token_body_3 = capture.call(
        "notary token after rotation",
        Client(),
        "get",
        "/auth/token",
        query,
        HTTP_AUTHORIZATION=basic("alice", alice_raw_api),
    )
    assert response.status_code == 200, token_body_3
    notary_token_3 = response.json()["token"]
    capture.call(
        "notary token refused",
        Client(),
        "get",
        "/auth/token",
        query,
        HTTP_AUTHORIZATION=basic("alice", WRONG_PASSWORD),
    )

    # A repository and its job against the real notary-server.
    if notary_gun is not None:
        response, body = capture.call(
            "create repository",
            admin_api,
            "post",
            "/api/v1/repositories/",
            {"gun": notary_gun, "signer_teams": ["ci"]},
        )
        assert response.status_code == 202, body
        jobs = run_jobs()
        assert [job.status for job in jobs] == [Job.Status.SUCCEEDED], [j.error for j in jobs]
        capture.call(
            "repository", admin_api, "get", f"/api/v1/repositories/{jobs[0].repository_id}/"
        )
        capture.call("jobs", admin_api, "get", "/api/v1/jobs/")

    # Passwords changed: alice's own (with the old one), and bob's by an admin.
    make_user("bob")
    response, _ = capture.call(
        "password change",
        alice_api,
        "post",
        "/api/v1/users/alice/password/",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 204
    response, _ = capture.call(
        "password set",
        admin_api,
        "post",
        "/api/v1/users/bob/password/",
        {"new_password": NEW_PASSWORD + "-bob"},
    )
    assert response.status_code == 204
    capture.call("audit", admin_api, "get", "/api/v1/audit/?limit=1000")
    capture.call("users", admin_api, "get", "/api/v1/users/")

    secrets["password"] = (plain_needles(PASSWORD), None)
    secrets["new password"] = (plain_needles(NEW_PASSWORD), None)
    secrets["wrong password"] = (plain_needles(WRONG_PASSWORD), None)
    secrets["export passphrase"] = (plain_needles(EXPORT_PASSPHRASE), None)
    secrets["basic credentials"] = ({basic("alice", PASSWORD)[6:]}, None)
    secrets["admin API token"] = ({admin_token}, None)
    secrets["alice API token"] = ({alice_raw_api}, None)
    secrets["login token"] = ({login_token}, "login")
    secrets["notary token"] = ({notary_token}, "notary token")
    secrets["notary token 2"] = ({notary_token_2}, "notary token by api token")
    secrets["notary token 3"] = ({notary_token_3}, "notary token after rotation")
    bundle_key = serialization.load_pem_private_key(key_pem.encode(), None)
    # What is not secret: the bundle's other files, and the framing every P-256 key shares.
    public = "".join(f.decode() for name, f in files.items() if name != "key.pem")
    public += pem_of(ec.generate_private_key(ec.SECP256R1()))
    secrets["bundle key.pem"] = (
        {piece for piece in chunks(key_pem) if piece not in public} | key_material(bundle_key),
        "bundle",
    )
    secrets["root export"] = (chunks(exported.decode()), "export")
    for key in CustodyKey.objects.all():
        name = f"custody {key.kind} key" + ("" if key.state == "current" else f" ({key.state})")
        secrets[name] = (key_material(custody.private_key(key)), None)
    return secrets


def assert_no_leak(capture: Capture, secrets: dict) -> None:
    logs = capture.log_text()
    assert "alice" in logs  # the capture works
    leaks = []
    for name, (needles, allowed) in secrets.items():
        assert needles, name
        for needle in needles:
            if needle in logs:
                leaks.append(f"{name} in a log line: …{needle}…")
            for label, text in capture.responses:
                if label != allowed and needle in text:
                    leaks.append(f"{name} in the response to {label}: …{needle}…")
    assert not leaks, "\n".join(sorted(set(leaks)))


def test_no_secret_in_logs_or_responses(caplog):
    with Capture(caplog) as capture:
        secrets = scenario(capture)
    assert {"custody root key", "custody token key", "custody token key (retiring)"} <= (
        secrets.keys()
    )
    assert_no_leak(capture, secrets)


@pytest.mark.notary
def test_no_secret_in_logs_or_responses_with_notary(caplog, settings, notary_server, notary_gun):
    settings.NOTARY_URL = notary_server.url
    with Capture(caplog) as capture:
        secrets = scenario(capture, notary_gun=notary_gun)
    assert {"custody root key", "custody targets key"} <= secrets.keys()
    assert_no_leak(capture, secrets)
