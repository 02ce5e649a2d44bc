"""Gatehouse's Notary token service: who gets which access, and the JWT
(docs/notary-protocol.md, "Token authentication")."""

import base64
import io
import json
import logging
import time

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.core.management import call_command

from accounts.services import api_token_create, api_token_revoke, user_deactivate
from tests.factories import PASSWORD, make_team, make_user
from trust import custody
from trust.models import CustodyKey, Repository
from trust.notary.auth import Challenge
from trust.notary_access import gatehouse_minter
from trust.token_service import tokens

pytestmark = pytest.mark.django_db

GUN = "registry.example.com/ci/app"
UNKNOWN = "registry.example.com/nobody/manages-this"
PUSH_PULL = f"repository:{GUN}:push,pull"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode(token: str) -> tuple[dict, dict]:
    """Header and claims, after checking the ES256 signature (raw r‖s over ``header.payload``)
    with the certificate in ``x5c``, and that it is the token key's certificate."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    certificate = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    signature = b64url_decode(signature_b64)
    assert len(signature) == 64
    der_signature = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    certificate.public_key().verify(
        der_signature, f"{header_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256())
    )
    assert certificate.public_bytes(serialization.Encoding.PEM).decode() == (
        custody.token_key().certificate
    )
    return header, json.loads(b64url_decode(payload_b64))


@pytest.fixture
def ask(client):
    """``ask(*scopes, auth=(user, password))`` -> (status, JSON body, response)."""

    def request(*scopes: str, auth=None, service="notary-server", account=None):
        query: dict = {"service": service, "scope": list(scopes)}
        if account or auth:
            query["account"] = account or auth[0]
        headers = {"HTTP_AUTHORIZATION": basic(*auth)} if auth else {}
        response = client.get("/auth/token", query, **headers)
        return response.status_code, response.json(), response

    return request


def granted(ask, *scopes: str, auth=None) -> list[dict]:
    status, body, _ = ask(*scopes, auth=auth)
    assert status == 200, body
    return decode(body["token"])[1]["access"]


@pytest.fixture
def people(admin):
    """jenkins signs for GUN (team ci), moby is a plain user, root is the admin."""
    jenkins, moby = make_user("jenkins"), make_user("moby")
    ci = make_team("ci", members=(jenkins,), actor=admin)
    make_team("dev", members=(moby,), actor=admin)
    repository = Repository.objects.create(gun=GUN)
    repository.signer_teams.set([ci])
    return {"jenkins": jenkins, "moby": moby, "root": admin}


def access(name: str, *actions: str) -> dict:
    return {"type": "repository", "name": name, "actions": list(actions)}


# --- The access matrix -------------------------------------------------------------------


def test_anonymous_gets_nothing_unless_anonymous_pull_is_on(ask, people, settings):
    assert settings.GATEHOUSE_NOTARY_ANONYMOUS_PULL is False  # the default
    assert granted(ask, PUSH_PULL) == []

    settings.GATEHOUSE_NOTARY_ANONYMOUS_PULL = True
    assert granted(ask, PUSH_PULL) == [access(GUN, "pull")]
    assert granted(ask, f"repository:{UNKNOWN}:pull") == []
    assert granted(ask, "registry:catalog:*") == []


def test_a_plain_user_may_pull_a_known_repository_only(ask, people):
    moby = ("moby", PASSWORD)
    assert granted(ask, PUSH_PULL, auth=moby) == [access(GUN, "pull")]
    assert granted(ask, f"repository:{GUN}:*", auth=moby) == []
    assert granted(ask, f"repository:{UNKNOWN}:pull", auth=moby) == []


def test_a_signer_team_member_may_push_and_pull(ask, people):
    jenkins = ("jenkins", PASSWORD)
    assert granted(ask, PUSH_PULL, auth=jenkins) == [access(GUN, "push", "pull")]
    assert granted(ask, f"repository:{GUN}:pull,push,*", auth=jenkins) == [
        access(GUN, "pull", "push")
    ]


def test_an_admin_may_do_anything_with_a_known_repository(ask, people):
    root = ("root", PASSWORD)
    assert granted(ask, f"repository:{GUN}:*", auth=root) == [access(GUN, "*")]
    assert granted(ask, PUSH_PULL, auth=root) == [access(GUN, "push", "pull")]
    assert granted(ask, "registry:catalog:*", auth=root) == [
        {"type": "registry", "name": "catalog", "actions": ["*"]}
    ]


def test_unknown_repositories_grant_nothing_not_even_to_admins(ask, people):
    for who in ("root", "jenkins", "moby"):
        assert granted(ask, f"repository:{UNKNOWN}:push,pull,*", auth=(who, PASSWORD)) == []


def test_the_service_identity_may_do_anything_with_any_gun(people):
    scopes = [
        tokens.Scope.parse(f"repository:{UNKNOWN}:*"),
        tokens.Scope.parse(PUSH_PULL),
        tokens.Scope.parse("registry:catalog:*"),
        tokens.Scope.parse("plugin:whatever:pull"),
    ]
    assert tokens.granted_access(tokens.SERVICE, scopes) == (
        tokens.Scope("repository", UNKNOWN, ("*",)),
        tokens.Scope("repository", GUN, ("push", "pull")),
        tokens.Scope("registry", "catalog", ("*",)),
    )


def test_the_service_identity_cannot_be_reached_over_http(ask, people):
    status, _, _ = ask(PUSH_PULL, auth=(tokens.SERVICE_SUBJECT, ""))
    assert status == 401


def test_a_deactivated_user_is_refused_and_granted_nothing(ask, people, admin):
    jenkins = people["jenkins"]
    raw, _ = api_token_create(user=jenkins)
    user_deactivate(actor=admin, user=jenkins)
    jenkins.refresh_from_db()

    for password in (PASSWORD, raw):
        status, body, response = ask(PUSH_PULL, auth=("jenkins", password))
        assert status == 401, body
        assert response["WWW-Authenticate"] == 'Basic realm="Gatehouse"'
    assert tokens.granted_access(jenkins, [tokens.Scope.parse(PUSH_PULL)]) == ()


def test_an_api_token_stands_in_for_the_password_until_revoked(ask, people):
    raw, api_token = api_token_create(user=people["jenkins"])
    assert granted(ask, PUSH_PULL, auth=("jenkins", raw)) == [access(GUN, "push", "pull")]

    # Someone else's token is no password of jenkins.
    assert ask(PUSH_PULL, auth=("moby", raw))[0] == 401

    api_token_revoke(token=api_token)
    status, _, response = ask(PUSH_PULL, auth=("jenkins", raw))
    assert status == 401
    assert response["WWW-Authenticate"] == 'Basic realm="Gatehouse"'


def test_several_scopes_in_one_request(ask, people, client):
    other = Repository.objects.create(gun="registry.example.com/ci/other")
    other.signer_teams.set(people["jenkins"].teams.all())
    assert granted(
        ask,
        f"repository:{GUN}:pull",
        f"repository:{other.gun}:push",
        f"repository:{UNKNOWN}:pull",
        f"repository:{GUN}:push",  # merged with the first
        "registry:catalog:*",
        auth=("jenkins", PASSWORD),
    ) == [access(GUN, "pull", "push"), access(other.gun, "push")]

    # One parameter may carry several scopes, separated by spaces.
    response = client.get(
        "/auth/token",
        {"service": "notary-server", "scope": f"repository:{GUN}:pull repository:{other.gun}:pull"},
        HTTP_AUTHORIZATION=basic("moby", PASSWORD),
    )
    assert decode(response.json()["token"])[1]["access"] == [
        access(GUN, "pull"),
        access(other.gun, "pull"),
    ]


def test_registry_catalog_is_for_admins_only(ask, people):
    for who in ("jenkins", "moby"):
        assert granted(ask, "registry:catalog:*", auth=(who, PASSWORD)) == []


def test_scopes_split_on_the_first_and_last_colon():
    scope = tokens.Scope.parse("repository:registry.example.com:5000/team/app:push,pull")
    assert scope == tokens.Scope(
        "repository", "registry.example.com:5000/team/app", ("push", "pull")
    )
    assert str(scope) == "repository:registry.example.com:5000/team/app:push,pull"
    for malformed in ("repository", "repository:gun", ":gun:pull", "repository::pull"):
        with pytest.raises(tokens.TokenRequestInvalid):
            tokens.Scope.parse(malformed)


# --- The JWT and the answer --------------------------------------------------------------


def test_the_answer_and_the_jwt_are_exactly_what_notary_server_accepts(ask, people, settings):
    before = int(time.time())
    status, body, response = ask(PUSH_PULL, auth=("jenkins", PASSWORD))
    after = int(time.time())

    assert status == 200
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["access_token"] == body["token"]
    assert body["expires_in"] == 300
    assert body["issued_at"].endswith("Z")
    assert body["token"].count(".") == 2
    assert "=" not in body["token"]

    header, claims = decode(body["token"])
    assert set(header) == {"typ", "alg", "x5c"}
    assert (header["typ"], header["alg"]) == ("JWT", "ES256")
    certificate = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    assert certificate.public_key().curve.name == "secp256r1"

    assert set(claims) == {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"}
    assert claims["iss"] == "gatehouse"
    assert claims["sub"] == "jenkins"
    assert claims["aud"] == "notary-server"  # a string, not a list
    for name in ("exp", "nbf", "iat"):
        assert type(claims[name]) is int
    assert before <= claims["iat"] <= after
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] == claims["iat"] + 300
    assert claims["access"] == [access(GUN, "push", "pull")]

    settings.GATEHOUSE_TOKEN_ISSUER = "gatehouse.example.com"
    settings.GATEHOUSE_NOTARY_SERVICE = "notary.example.com"
    settings.GATEHOUSE_NOTARY_TOKEN_SECONDS = 120
    status, body, _ = ask(PUSH_PULL, service="notary.example.com")
    _, claims = decode(body["token"])
    assert (claims["iss"], claims["aud"], claims["sub"]) == (
        "gatehouse.example.com",
        "notary.example.com",
        "",
    )
    assert claims["exp"] - claims["iat"] == body["expires_in"] == 120
    _, again, _ = ask(PUSH_PULL, service="notary.example.com")
    assert decode(again["token"])[1]["jti"] != claims["jti"]


def test_the_signing_key_is_sealed_at_rest(people):
    key = custody.token_key()
    assert key.kind == CustodyKey.Kind.TOKEN
    assert custody.token_key() == key  # one, made on first use
    sealed = bytes(key.sealed_private_key)
    with pytest.raises(ValueError, match="Could not deserialize"):  # sealed
        serialization.load_der_private_key(sealed, None)
    signature = custody.token_signer().sign(b"data")
    public = x509.load_pem_x509_certificate(key.certificate.encode()).public_key()
    public.verify(
        encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        ),
        b"data",
        ec.ECDSA(hashes.SHA256()),
    )
    with pytest.raises(InvalidSignature):
        public.verify(encode_dss_signature(1, 1), b"data", ec.ECDSA(hashes.SHA256()))


def test_wrong_credentials_are_401_with_a_basic_challenge(ask, people, client):
    for auth in (("jenkins", "not-his-password"), ("nobody", PASSWORD), ("jenkins", "")):
        status, body, response = ask(PUSH_PULL, auth=auth)
        assert status == 401
        assert response["WWW-Authenticate"] == 'Basic realm="Gatehouse"'
        assert body["errors"][0]["code"] == "UNAUTHORIZED"
        assert "token" not in body
    for header in ("Basic !!!notbase64", "Bearer something", basic("", "x")):
        response = client.get(
            "/auth/token",
            {"service": "notary-server", "scope": PUSH_PULL},
            HTTP_AUTHORIZATION=header,
        )
        assert response.status_code == 401
    # Right credentials, but for another account than the one named.
    assert ask(PUSH_PULL, auth=("jenkins", PASSWORD), account="root")[0] == 401


def test_another_service_or_a_malformed_scope_is_400(ask, people):
    status, body, _ = ask(PUSH_PULL, auth=("jenkins", PASSWORD), service="registry")
    assert status == 400
    assert body["errors"][0]["code"] == "INVALID_REQUEST"
    assert "registry" in body["errors"][0]["message"]
    assert ask(PUSH_PULL, service="")[0] == 400
    assert ask("repository-without-actions", auth=("jenkins", PASSWORD))[0] == 400


def test_only_get(client, people):
    assert client.post("/auth/token?service=notary-server").status_code == 405


def test_each_token_is_logged_once_without_the_token_or_password(ask, people, caplog):
    raw, _ = api_token_create(user=people["jenkins"])
    caplog.set_level(logging.INFO, logger="trust")
    tokens_seen = []
    for password in (PASSWORD, raw):
        caplog.clear()
        _, body, _ = ask(PUSH_PULL, f"repository:{UNKNOWN}:pull", auth=("jenkins", password))
        tokens_seen.append(body["token"])
        lines = [r.getMessage() for r in caplog.records if r.name == "trust.token_service.tokens"]
        assert lines == [
            f'Notary token for jenkins via http: asked ["{PUSH_PULL}", '
            f'"repository:{UNKNOWN}:pull"], granted ["{PUSH_PULL}"]'
        ]
        assert caplog.records[-1].levelno == logging.INFO
    caplog.clear()
    ask(PUSH_PULL, auth=("jenkins", "wrong-" + PASSWORD))
    ask(PUSH_PULL)
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert 'wrong credentials for "jenkins"' in text
    assert "Notary token for anonymous via http" in text
    for secret in (*tokens_seen, PASSWORD, raw):
        assert secret not in text
        for part in secret.split("."):
            assert part not in text


# --- In-process minting and notary-server's configuration --------------------------------


def test_gatehouse_mints_its_own_tokens_for_its_own_realm(people, settings, caplog):
    settings.GATEHOUSE_PUBLIC_URL = "https://gatehouse.example.com"
    minter = gatehouse_minter(tokens.token_realm())
    ours = Challenge("https://gatehouse.example.com/auth/token", "notary-server")
    caplog.set_level(logging.INFO, logger="trust.token_service.tokens")

    token = minter(ours, f"repository:{UNKNOWN}:*")

    _, claims = decode(token)
    assert claims["sub"] == tokens.SERVICE_SUBJECT
    assert claims["access"] == [access(UNKNOWN, "*")]
    assert "via in-process" in caplog.text
    assert minter(Challenge("https://auth.example.com/token", "notary-server"), PUSH_PULL) is None


def test_notary_server_config_writes_the_certificate_and_prints_the_auth_section(
    people, settings, tmp_path
):
    settings.GATEHOUSE_PUBLIC_URL = "https://gatehouse.example.com"
    settings.GATEHOUSE_TOKEN_ISSUER = "gatehouse-prod"
    out = io.StringIO()
    call_command(
        "notary_server_config", "--cert-out", str(tmp_path / "ca" / "token.pem"), stdout=out
    )

    assert json.loads(out.getvalue()) == {
        "auth": {
            "type": "token",
            "options": {
                "realm": "https://gatehouse.example.com/auth/token",
                "service": "notary-server",
                "issuer": "gatehouse-prod",
                "rootcertbundle": str(tmp_path / "ca" / "token.pem"),
            },
        }
    }
    assert (tmp_path / "ca" / "token.pem").read_text() == custody.token_key().certificate
    assert "PRIVATE" not in (tmp_path / "ca" / "token.pem").read_text()
