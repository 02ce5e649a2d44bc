"""Rotating the key that signs Notary tokens: ``notary_token_key`` stage, activate, retire and
status, the bundle ``notary_server_config`` writes at each step, and the audit log."""

import base64
import datetime as dt
import io
import json
import logging
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.db.models import F

from audit.models import AuditEntry
from devtools.ports import free_port
from tests.conftest import require
from trust import custody
from trust.models import CustodyKey
from trust.selectors import TOKEN_EXPIRY_MARGIN
from trust.token_service import keys as token_keys
from trust.token_service import tokens

pytestmark = pytest.mark.django_db
KEYS_LOGGER = "trust.token_service.keys"

STAGED, CURRENT = CustodyKey.State.STAGED, CustodyKey.State.CURRENT
RETIRING, RETIRED = CustodyKey.State.RETIRING, CustodyKey.State.RETIRED


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("notary_token_key", *args, stdout=out)
    return out.getvalue()


def bundle(tmp_path) -> list[str]:
    """The certificates ``notary_server_config --cert-out`` writes, in order."""
    path = tmp_path / "token-bundle.pem"
    call_command("notary_server_config", "--cert-out", str(path), stdout=io.StringIO())
    end = "-----END CERTIFICATE-----\n"
    return [part + end for part in path.read_text().split(end) if part]


def signed_with(token: str) -> str:
    """The certificate (PEM) in the token's ``x5c``."""
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    der = base64.b64decode(header["x5c"][0])
    certificate = x509.load_der_x509_certificate(der)
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def new_token() -> str:
    return tokens.mint(subject="jenkins", service="notary-server", access=[])[0]


def token_lifetime(settings) -> dt.timedelta:
    return dt.timedelta(seconds=settings.GATEHOUSE_NOTARY_TOKEN_SECONDS)


def expire_tokens_of(key: CustodyKey, settings) -> None:
    """Time passes: notary-server no longer accepts the tokens ``key`` signed before it
    stopped signing (their lifetime and the margin for its leeway have passed)."""
    passed = token_lifetime(settings) + TOKEN_EXPIRY_MARGIN
    CustodyKey.objects.filter(pk=key.pk).update(superseded_at=F("superseded_at") - passed)


def token_key_audit() -> list[tuple]:
    return list(
        AuditEntry.objects.filter(target_type="token_key")
        .order_by("id")
        .values_list("action", "target_id", "actor", "before", "after")
    )


def fingerprint(key: CustodyKey) -> str:
    certificate = x509.load_pem_x509_certificate(key.certificate.encode())
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def claims_of(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


@pytest.fixture(autouse=True)
def no_notary_url(settings) -> None:
    """Gatehouse knows no notary-server unless a test gives it one."""
    settings.NOTARY_URL = ""


@dataclass
class FakeNotary:
    """Answers ``GET /v2/`` as notary-server 0.7 does to a token that grants nothing
    (docs/notary-protocol.md, "Token authentication"): without a token, a Bearer challenge;
    a token whose ``x5c`` certificate is in ``bundle``, ``insufficient_scope``; any other,
    ``invalid_token`` (the real server's own verdicts, signatures included, are tested in
    test_token_integration). With ``token_auth`` off, 200.
    ``shown``: the token of each request, ``None`` for none."""

    url: str = ""
    bundle: list[str] = field(default_factory=list)
    token_auth: bool = True
    shown: list[str | None] = field(default_factory=list)

    def answer(self, authorization: str | None) -> tuple[int, str]:
        token = authorization.removeprefix("Bearer ") if authorization else None
        self.shown.append(token)
        if not self.token_auth:
            return 200, ""
        challenge = 'Bearer realm="http://gatehouse.test/auth/token",service="notary-server"'
        if token is None:
            return 401, challenge
        trusted = signed_with(token) in self.bundle
        return 401, challenge + f',error="{"insufficient_scope" if trusted else "invalid_token"}"'


@pytest.fixture
def notary(settings):
    """A ``FakeNotary`` at ``NOTARY_URL``."""
    fake = FakeNotary()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, challenge = fake.answer(self.headers.get("Authorization"))
            body = b"{}" if status == 200 else b'{"errors":[{"code":"UNAUTHORIZED"}]}'
            self.send_response(status)
            if challenge:
                self.send_header("WWW-Authenticate", challenge)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    fake.url = settings.NOTARY_URL = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield fake
    httpd.shutdown()
    httpd.server_close()


def test_a_rotation_trusts_the_next_key_before_it_signs_and_the_old_one_until_expiry(
    notary, tmp_path, settings, caplog
):
    caplog.set_level(logging.INFO, logger="trust")
    old = custody.token_key()
    assert bundle(tmp_path) == [old.certificate]
    notary.bundle = bundle(tmp_path)

    out = run("stage")
    new = CustodyKey.objects.get(kind="token", state=STAGED)
    assert new.key_id in out
    assert "notary_server_config --cert-out" in out
    assert bundle(tmp_path) == [old.certificate, new.certificate]
    assert signed_with(new_token()) == old.certificate  # staged: signs nothing yet
    assert custody.token_key() == old

    notary.bundle = bundle(tmp_path)  # notary-server restarted with the new bundle
    out = run("activate")
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.state, new.state) == (RETIRING, CURRENT)
    assert new.activated_at == old.superseded_at
    expires = old.superseded_at + token_lifetime(settings) + TOKEN_EXPIRY_MARGIN
    assert out.startswith(
        f"Checked: notary-server at {notary.url} accepts tokens signed by token key "
        f"{new.key_id}.\nToken key {new.key_id} signs new tokens from now on.\n"
    )
    assert f"Token key {old.key_id} is retiring" in out
    assert f"{expires:%Y-%m-%d %H:%M:%S} UTC" in out
    assert signed_with(new_token()) == new.certificate  # this process's very next token
    assert custody.token_key() == new
    assert bundle(tmp_path) == [old.certificate, new.certificate]

    expire_tokens_of(old, settings)
    out = run("retire")
    old.refresh_from_db()
    assert old.state == RETIRED
    assert old.retired_at is not None
    assert bytes(old.sealed_private_key) == b""  # the private key is gone
    assert old.certificate.startswith("-----BEGIN CERTIFICATE-----")  # the record stays
    assert f"Retired token key {old.key_id}" in out
    assert bundle(tmp_path) == [new.certificate]
    assert signed_with(new_token()) == new.certificate

    assert token_key_audit() == [
        ("token_key.staged", new.key_id, None, None, {"state": "staged"}),
        (
            "token_key.activated",
            new.key_id,
            None,
            {"state": "staged"},
            {"state": "current", "replaces": old.key_id, "notary_check": "trusted"},
        ),
        (
            "token_key.retired",
            old.key_id,
            None,
            {"state": "retiring"},
            {"state": "retired", "forced": False},
        ),
    ]
    logged = [r.getMessage() for r in caplog.records if r.name == KEYS_LOGGER]
    assert logged == [
        f"token key {new.key_id} staged",
        f"token key {new.key_id} activated (notary-server check: trusted); {old.key_id} retiring",
        f"token key {old.key_id} retired",
    ]
    assert "-----BEGIN" not in caplog.text


def test_rotating_twice_before_retiring_keeps_both_old_keys_trusted(tmp_path, settings):
    first = custody.token_key()
    run("stage")
    run("activate")
    second = custody.token_key()
    run("stage")
    run("activate")
    third = custody.token_key()
    assert bundle(tmp_path) == [first.certificate, second.certificate, third.certificate]

    for key in (first, second):
        expire_tokens_of(key, settings)
    out = run("retire")
    assert f"Retired token key {first.key_id}" in out
    assert f"Retired token key {second.key_id}" in out
    assert bundle(tmp_path) == [third.certificate]
    assert signed_with(new_token()) == third.certificate


def test_retiring_is_refused_while_the_old_keys_tokens_may_be_valid_unless_forced(
    tmp_path, settings, caplog
):
    old = custody.token_key()
    run("stage")
    run("activate")
    old.refresh_from_db()
    expires = old.superseded_at + token_lifetime(settings) + TOKEN_EXPIRY_MARGIN

    with pytest.raises(CommandError) as refused:
        run("retire")
    message = str(refused.value)
    assert f"token key {old.key_id} may be valid until {expires:%Y-%m-%d %H:%M:%S} UTC" in message
    assert "--force" in message
    old.refresh_from_db()
    assert old.state == RETIRING
    assert bytes(old.sealed_private_key)
    assert len(bundle(tmp_path)) == 2
    assert not AuditEntry.objects.filter(action="token_key.retired").exists()

    # Its tokens' lifetime has passed, but notary-server still accepts them for a while.
    lifetime = token_lifetime(settings)
    CustodyKey.objects.filter(pk=old.pk).update(superseded_at=F("superseded_at") - lifetime)
    with pytest.raises(CommandError, match="may be valid until"):
        run("retire")

    caplog.set_level(logging.INFO, logger="trust")
    caplog.clear()
    run("retire", "--force")
    old.refresh_from_db()
    assert old.state == RETIRED
    assert bytes(old.sealed_private_key) == b""
    assert len(bundle(tmp_path)) == 1
    entry = AuditEntry.objects.get(action="token_key.retired")
    assert entry.after == {"state": "retired", "forced": True}
    assert [r.levelno for r in caplog.records if r.name == KEYS_LOGGER] == [logging.WARNING]


def test_wrong_sequences_are_command_errors_that_change_nothing():
    with pytest.raises(CommandError, match=r"^No token key is staged; stage one first\.$"):
        run("activate")
    with pytest.raises(CommandError, match=r"^No token key is retiring\.$"):
        run("retire")

    run("stage")
    staged = CustodyKey.objects.get(kind="token", state=STAGED)
    with pytest.raises(CommandError, match=f"Token key {staged.key_id} is staged already"):
        run("stage")
    assert CustodyKey.objects.filter(kind="token").count() == 2  # the current and the staged

    run("activate")
    with pytest.raises(CommandError, match="No token key is staged"):
        run("activate")
    assert list(
        CustodyKey.objects.filter(kind="token").order_by("created_at").values_list("state")
    ) == [(RETIRING,), (CURRENT,)]
    assert [action for action, *_ in token_key_audit()] == [
        "token_key.staged",
        "token_key.activated",
    ]


def test_status_lists_every_key_with_its_state_fingerprint_and_dates(settings):
    assert run() == "No token key yet: the first token or notary_server_config makes it.\n"

    first = custody.token_key()
    run("stage")
    out = run()
    assert out == run("status")
    second = CustodyKey.objects.get(kind="token", state=STAGED)
    assert out.splitlines() == [
        f"current   key ID {first.key_id}",
        f"          certificate SHA-256 {fingerprint(first)}",
        f"          created {first.created_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"activated {first.activated_at:%Y-%m-%d %H:%M:%S} UTC",
        f"staged    key ID {second.key_id}",
        f"          certificate SHA-256 {fingerprint(second)}",
        f"          created {second.created_at:%Y-%m-%d %H:%M:%S} UTC",
        "Next: write the bundle with `manage.py notary_server_config --cert-out PATH` and "
        "restart notary-server with it, then run `manage.py notary_token_key activate`.",
    ]

    run("activate")
    first.refresh_from_db()
    expires = first.superseded_at + token_lifetime(settings) + TOKEN_EXPIRY_MARGIN
    lines = run().splitlines()
    assert lines[0] == f"retiring  key ID {first.key_id}"
    assert lines[2].endswith(
        f"stopped signing {first.superseded_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"can be retired from {expires:%Y-%m-%d %H:%M:%S} UTC"
    )
    assert lines[3] == f"current   key ID {second.key_id}"
    assert lines[-1].startswith("Next: once their tokens have expired")

    run("retire", "--force")
    first.refresh_from_db()
    lines = run().splitlines()
    assert lines[0] == f"retired   key ID {first.key_id}"
    assert lines[1] == f"          certificate SHA-256 {fingerprint(first)}"
    assert lines[2].endswith(f"retired {first.retired_at:%Y-%m-%d %H:%M:%S} UTC")
    assert len(lines) == 6  # no next step


def activated_audit() -> dict | None:
    entry = AuditEntry.objects.filter(action="token_key.activated").first()
    return entry.after if entry else None


def test_activate_is_refused_until_notary_server_trusts_the_staged_key(
    notary, tmp_path, settings, caplog
):
    caplog.set_level(logging.DEBUG)
    old = custody.token_key()
    notary.bundle = bundle(tmp_path)
    run("stage")
    staged = CustodyKey.objects.get(kind="token", state=STAGED)
    bundle(tmp_path)  # written, but notary-server was not restarted: it trusts the old key only

    with pytest.raises(CommandError) as refused:
        run("activate")
    assert str(refused.value) == (
        f"notary-server at {notary.url} refuses tokens signed by token key {staged.key_id} "
        "(invalid_token): it does not trust that key yet. Nothing changed. Next: write the "
        "bundle with `manage.py notary_server_config --cert-out PATH` and restart "
        "notary-server with it, then run `manage.py notary_token_key activate` again."
    )
    old.refresh_from_db()
    staged.refresh_from_db()
    assert (old.state, staged.state) == (CURRENT, STAGED)
    assert staged.activated_at is None
    assert signed_with(new_token()) == old.certificate  # tokens keep working
    assert activated_audit() is None
    # Asked without a token, then shown one the staged key signed that grants nothing.
    unauthenticated, shown = notary.shown
    assert unauthenticated is None
    assert signed_with(shown) == staged.certificate
    claims = claims_of(shown)
    assert claims["access"] == []
    assert claims["exp"] - claims["nbf"] == 60
    assert claims["iss"] == settings.GATEHOUSE_TOKEN_ISSUER
    assert claims["aud"] == settings.GATEHOUSE_NOTARY_SERVICE
    assert shown.split(".")[2] not in caplog.text

    notary.bundle = bundle(tmp_path)  # restarted with it
    out = run("activate")
    assert out.startswith(
        f"Checked: notary-server at {notary.url} accepts tokens signed by token key "
        f"{staged.key_id}.\n"
    )
    assert signed_with(new_token()) == staged.certificate
    assert activated_audit() == {
        "state": "current",
        "replaces": old.key_id,
        "notary_check": "trusted",
    }


def test_activate_is_refused_when_notary_server_cannot_be_asked_unless_forced(settings):
    settings.NOTARY_URL = f"http://127.0.0.1:{free_port()}"
    old = custody.token_key()
    run("stage")
    staged = CustodyKey.objects.get(kind="token", state=STAGED)

    with pytest.raises(CommandError) as refused:
        run("activate")
    message = str(refused.value)
    assert message.startswith(
        f"Cannot check that notary-server at {settings.NOTARY_URL} trusts token key "
        f"{staged.key_id}: cannot reach {settings.NOTARY_URL}: ConnectionRefusedError"
    )
    assert message.endswith(
        " Nothing changed. --skip-notary-check activates without asking notary-server: only "
        "do that once it runs with the bundle that trusts the staged key."
    )
    assert CustodyKey.objects.get(pk=staged.pk).state == STAGED
    assert signed_with(new_token()) == old.certificate
    assert activated_audit() is None

    out = run("activate", "--force")
    assert out.startswith(
        f"Not checked (--skip-notary-check) whether notary-server trusts token key "
        f"{staged.key_id}.\nToken key {staged.key_id} signs new tokens from now on.\n"
    )
    assert signed_with(new_token()) == staged.certificate
    assert activated_audit() == {
        "state": "current",
        "replaces": old.key_id,
        "notary_check": "skipped",
    }


@pytest.mark.parametrize("flag", ["--skip-notary-check", "--force"])
def test_skipping_the_check_asks_notary_server_nothing_and_is_logged(notary, flag, caplog):
    run("stage")  # notary-server would refuse the staged key: the operator knows better
    staged = CustodyKey.objects.get(kind="token", state=STAGED)
    caplog.set_level(logging.INFO, logger="trust")
    caplog.clear()

    run("activate", flag)
    assert notary.shown == []
    assert signed_with(new_token()) == staged.certificate
    assert activated_audit()["notary_check"] == "skipped"
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.name == KEYS_LOGGER] == [
        (
            logging.WARNING,
            f"token key {staged.key_id} activated (notary-server check: skipped); "
            f"{CustodyKey.objects.get(state=RETIRING).key_id} retiring",
        )
    ]


def test_activate_proceeds_when_notary_server_asks_for_no_token(notary):
    notary.token_auth = False
    run("stage")
    staged = CustodyKey.objects.get(kind="token", state=STAGED)

    out = run("activate")
    assert out.startswith(
        f"Checked: notary-server at {notary.url} does not ask for tokens, so it refuses none.\n"
    )
    assert notary.shown == [None]  # nothing to learn from showing it the token
    assert signed_with(new_token()) == staged.certificate
    assert activated_audit()["notary_check"] == "no_auth"


def test_activate_without_a_notary_url_says_it_asked_no_notary_server():
    run("stage")
    staged = CustodyKey.objects.get(kind="token", state=STAGED)

    out = run("activate")
    assert out.startswith(
        f"Not checked whether notary-server trusts token key {staged.key_id}: no NOTARY_URL.\n"
    )
    assert activated_audit()["notary_check"] == "no_notary_url"


def test_only_token_keys_sign_tokens():
    with pytest.raises(ValueError, match="does not sign tokens"):
        custody.token_signer_for(custody.root_key())


def test_which_key_signs_is_one_query_per_token_and_never_stale(django_assert_num_queries):
    first = custody.token_signer()
    with django_assert_num_queries(1):
        assert custody.token_signer() is first

    token_keys.token_key_stage()
    token_keys.token_key_activate()  # as any other process may, at any time
    second = custody.token_signer()
    assert second.key_id == custody.token_key().key_id != first.key_id
    with django_assert_num_queries(1):
        assert custody.token_signer() is second


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_uses_agree_on_one_key_and_only_one_stage_wins():
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")

    def at_once(work, count: int = 8) -> list:
        barrier = threading.Barrier(count)
        results: list = []

        def run_one() -> None:
            barrier.wait()
            try:
                results.append(work())
            except ValidationError as error:
                results.append(error)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=run_one) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    keys = at_once(custody.token_key)
    assert len({key.key_id for key in keys}) == 1
    assert CustodyKey.objects.filter(kind="token").count() == 1

    outcomes = at_once(token_keys.token_key_stage)
    staged = [o for o in outcomes if isinstance(o, CustodyKey)]
    refused = [o for o in outcomes if isinstance(o, ValidationError)]
    assert (len(staged), len(refused)) == (1, 7), outcomes
    assert CustodyKey.objects.filter(kind="token", state=STAGED).get() == staged[0]
    assert custody.token_key() == keys[0]
