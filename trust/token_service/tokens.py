"""Gatehouse as notary-server's token issuer (docs/notary-protocol.md, "Token authentication").

notary-server configured with ``"auth": {"type": "token", …}`` answers a request without a
token by a challenge naming a realm; the client asks that realm for a token for a scope such
as ``repository:<gun>:push,pull`` and sends it back as ``Authorization: Bearer``. Gatehouse is
that realm (``GET /auth/token``, ``trust.token_service.views``): it authenticates the caller, grants
per resource what the caller may do, intersected with what was asked, and signs an ES256 JWT
with the token key from custody, whose certificate is notary-server's ``rootcertbundle``.

What may be granted, per repository Gatehouse manages (a ``Repository`` with that GUN):

* ``pull``: any active user; anonymous callers only with ``GATEHOUSE_NOTARY_ANONYMOUS_PULL``;
* ``push``: active members of the repository's signer teams, and admins;
* ``*`` (key rotation, deletion): admins.

A GUN Gatehouse does not manage grants nothing, to admins too. ``registry:catalog:*`` (the
server's global endpoints) is for admins only. Gatehouse's own service identity (``SERVICE``),
which its jobs use in-process, may do anything with any GUN: its jobs initialise new ones. It
has no credentials and cannot be reached over HTTP.
"""

import base64
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import connection
from django.http import HttpRequest

from accounts.models import Membership, User
from accounts.selectors import api_token_lookup
from audit.services import audit_record
from trust import custody
from trust.models import Repository

logger = logging.getLogger(__name__)

PULL, PUSH, ALL = "pull", "push", "*"
REPOSITORY, REGISTRY, CATALOG = "repository", "registry", "catalog"
REALM_PATH = "/auth/token"
# Not a valid username (no ':' allowed), so no user can pass for Gatehouse itself.
SERVICE_SUBJECT = "gatehouse:service"
MAX_SCOPES = 32
MAX_SCOPE_LENGTH = 512
CHECK_TOKEN_SECONDS = 60


class ServiceIdentity:
    """Gatehouse itself, for its own jobs; it exists only in-process."""

    subject = SERVICE_SUBJECT

    def __repr__(self) -> str:
        return "<Gatehouse service identity>"


SERVICE = ServiceIdentity()

# Who asks: a user, Gatehouse itself, or ``None`` for an anonymous caller.
Identity = User | ServiceIdentity | None


class TokenRequestInvalid(ValueError):
    """The request names another service or a malformed scope (HTTP 400)."""


@dataclass(frozen=True)
class Scope:
    """``<type>:<name>:<action>,…``; names hold ``/`` and may hold ``:``
    (docs/notary-protocol.md, "Token authentication")."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> "Scope":
        kind, first, rest = text.partition(":")
        name, last, actions = rest.rpartition(":")
        if not (first and last and kind and name) or len(text) > MAX_SCOPE_LENGTH:
            raise TokenRequestInvalid(f"malformed scope {_shown(text)}")
        return cls(kind, name, tuple(dict.fromkeys(a for a in actions.split(",") if a)))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def claim(self) -> dict:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


@dataclass(frozen=True)
class TokenRequest:
    service: str
    scopes: tuple[Scope, ...]

    @classmethod
    def parse(cls, *, service: str, scopes: Iterable[str]) -> "TokenRequest":
        """Check the ``service`` and ``scope`` parameters; one ``scope`` may hold several,
        separated by spaces (the registry token spec)."""
        if service != settings.GATEHOUSE_NOTARY_SERVICE:
            raise TokenRequestInvalid(f"unknown service {_shown(service)}")
        texts = [text for value in scopes for text in value.split()]
        if len(texts) > MAX_SCOPES:
            raise TokenRequestInvalid(f"more than {MAX_SCOPES} scopes")
        return cls(service, tuple(Scope.parse(text) for text in texts))


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: dt.datetime
    access: tuple[Scope, ...]

    def as_response(self) -> dict:
        """The token endpoint's JSON: the CLI reads ``token``, others ``access_token``
        (docs/notary-protocol.md, "Token authentication")."""
        return {
            "token": self.token,
            "access_token": self.token,
            "expires_in": self.expires_in,
            "issued_at": self.issued_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def token_realm() -> str:
    """The realm notary-server must name for Gatehouse to be its issuer."""
    return settings.GATEHOUSE_PUBLIC_URL.rstrip("/") + REALM_PATH


def user_for_credentials(
    username: str, password: str, *, request: HttpRequest | None = None
) -> User | None:
    """The active user whose password, or one of whose live API tokens, ``password`` is.

    A CI system puts an API token where the password goes. The token is tried first: its
    lookup is one indexed query, a password check a deliberately slow hash. The username's
    case does not matter, as for every login.
    """
    if password:
        token = api_token_lookup(raw_token=password)
        if token is not None and token.user.username.lower() == username.lower():
            return token.user
    user = authenticate(request, username=username, password=password)
    if isinstance(user, User) and user.is_active:
        return user
    return None


def granted_access(identity: Identity, scopes: Iterable[Scope]) -> tuple[Scope, ...]:
    """What ``identity`` gets of ``scopes``: per resource (scopes naming the same one are
    merged), the actions asked that it may do; resources with none are left out."""
    asked: dict[tuple[str, str], dict[str, None]] = {}
    for scope in scopes:
        asked.setdefault((scope.type, scope.name), {}).update(dict.fromkeys(scope.actions))
    allowed = _allowed(identity, list(asked))
    granted = []
    for (kind, name), actions in asked.items():
        may = allowed.get((kind, name), frozenset())
        kept = tuple(action for action in actions if action in may)
        if kept:
            granted.append(Scope(kind, name, kept))
    return tuple(granted)


def _allowed(
    identity: Identity, resources: list[tuple[str, str]]
) -> dict[tuple[str, str], frozenset[str]]:
    if identity is SERVICE:
        return {
            (kind, name): frozenset({PULL, PUSH, ALL})
            for kind, name in resources
            if kind == REPOSITORY or (kind, name) == (REGISTRY, CATALOG)
        }
    user = identity if isinstance(identity, User) else None
    if user is not None and not user.is_active:
        return {}
    if user is None and not settings.GATEHOUSE_NOTARY_ANONYMOUS_PULL:
        return {}
    known = _managed(user, [name for kind, name in resources if kind == REPOSITORY])
    allowed: dict[tuple[str, str], frozenset[str]] = {}
    for kind, name in resources:
        if kind == REPOSITORY and name in known:
            if user is None:
                allowed[kind, name] = frozenset({PULL})
            elif user.is_admin:
                allowed[kind, name] = frozenset({PULL, PUSH, ALL})
            else:
                allowed[kind, name] = frozenset({PULL, PUSH} if known[name] else {PULL})
        elif (kind, name) == (REGISTRY, CATALOG) and user is not None and user.is_admin:
            allowed[kind, name] = frozenset({ALL})
    return allowed


def _managed(user: User | None, guns: list[str]) -> dict[str, bool]:
    """GUN -> whether ``user`` is in one of its signer teams, for the GUNs Gatehouse manages.

    One query, written out: it runs for every token, and building it with the ORM cost
    several times running it (docs/performance.md, "Token service").
    """
    if not guns:
        return {}
    repository = Repository._meta
    signer_teams = Repository.signer_teams.through._meta
    membership = Membership._meta
    placeholders = ", ".join(["%s"] * len(guns))
    # Only our own table names are formatted in; every value is a bound parameter.
    if user is None or user.is_admin:
        signs = "0"
        params: list[str | int] = list(guns)
    else:
        signs = (
            f"EXISTS (SELECT 1 FROM {signer_teams.db_table} s "  # noqa: S608
            f"JOIN {membership.db_table} m ON m.team_id = s.team_id "
            "WHERE s.repository_id = r.id AND m.user_id = %s)"
        )
        params = [user.pk, *guns]
    sql = f"SELECT r.gun, {signs} FROM {repository.db_table} r WHERE r.gun IN ({placeholders})"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {gun: bool(signs) for gun, signs in cursor.fetchall()}


def token_issue(*, identity: Identity, request: TokenRequest, via: str = "http") -> IssuedToken:
    """Grant, mint and log (one INFO line: who, what was asked, what was granted; never the
    token). A token is issued even when nothing is granted: notary-server then refuses."""
    access = granted_access(identity, request.scopes)
    subject = _subject(identity)
    token, issued_at = mint(subject=subject, service=request.service, access=access)
    logger.info(
        "Notary token for %s via %s: asked %s, granted %s",
        subject or "anonymous",
        via,
        json.dumps([str(scope) for scope in request.scopes]),
        json.dumps([str(scope) for scope in access]),
    )
    writes = [str(scope) for scope in access if PUSH in scope.actions or ALL in scope.actions]
    if writes and identity is not SERVICE:  # Gatehouse's own jobs are recorded as jobs
        audit_record(
            action="notary_token.issued",
            actor=identity,
            target_type="notary_token",
            target_id=" ".join(scope.name for scope in access if str(scope) in writes),
            after={"subject": subject, "via": via, "granted": [str(scope) for scope in access]},
        )
    return IssuedToken(token, settings.GATEHOUSE_NOTARY_TOKEN_SECONDS, issued_at, access)


def service_token(*, service: str, scope: str) -> str:
    """A token for Gatehouse's own jobs, minted in-process (no HTTP round trip)."""
    request = TokenRequest.parse(service=service, scopes=[scope])
    return token_issue(identity=SERVICE, request=request, via="in-process").token


def mint(*, subject: str, service: str, access: Iterable[Scope]) -> tuple[str, dt.datetime]:
    """A compact JWS notary-server accepts: ES256 over ``header.payload``, ``x5c`` with the
    token certificate, ``aud`` a string, integer times (docs/notary-protocol.md,
    "Token authentication")."""
    now = int(time.time())
    claims = _claims(subject, service, access, now, settings.GATEHOUSE_NOTARY_TOKEN_SECONDS)
    token = signed_jwt(custody.token_signer(), claims)
    return token, dt.datetime.fromtimestamp(now, dt.UTC)


def check_token(signer: custody.TokenSigner) -> str:
    """A token ``signer`` signs to show notary-server before it signs real ones: a real
    token's claims, but it grants nothing and expires within a minute, so it is worth
    nothing to whoever sees it. A server that trusts the signer answers ``insufficient_scope``,
    one that does not ``invalid_token`` (docs/notary-protocol.md, "Token authentication")."""
    service = settings.GATEHOUSE_NOTARY_SERVICE
    now = int(time.time())
    return signed_jwt(signer, _claims(SERVICE_SUBJECT, service, (), now, CHECK_TOKEN_SECONDS))


def _claims(
    subject: str, service: str, access: Iterable[Scope], now: int, seconds: int
) -> dict[str, object]:
    return {
        "iss": settings.GATEHOUSE_TOKEN_ISSUER,
        "sub": subject,
        "aud": service,  # a string: an array is rejected
        "exp": now + seconds,  # integers: floats are rejected
        "nbf": now,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        "access": [scope.claim() for scope in access],
    }


def signed_jwt(signer: custody.TokenSigner, claims: dict) -> str:
    """Compact JWS, base64url without padding: ``{"typ":"JWT","alg":"ES256","x5c":[…]}``,
    the claims, and the raw r‖s signature over ``header.payload``."""
    signing_input = f"{_header(signer.x5c)}.{_b64url(_json(claims))}"
    return f"{signing_input}.{_b64url(signer.sign(signing_input.encode('ascii')))}"


@lru_cache(maxsize=8)
def _header(x5c: str) -> str:
    return _b64url(_json({"typ": "JWT", "alg": "ES256", "x5c": [x5c]}))


def _json(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _subject(identity: Identity) -> str:
    if identity is SERVICE:
        return SERVICE_SUBJECT
    return identity.username if isinstance(identity, User) else ""


def _shown(text: str) -> str:
    """Caller-supplied text for a message: quoted, escaped, cut short."""
    return json.dumps(text[:100])
