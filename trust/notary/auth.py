"""Docker token authentication, as notary-server asks for it (docs/notary-protocol.md,
"Token authentication").

A 401 carries a ``WWW-Authenticate: Bearer`` challenge that names the realm issuing tokens.
``BearerTokens`` gets a token for exactly the scope a request needs, from the caller's
``TokenMinter`` or from the realm with the configured credentials, and caches it per scope
until it expires. ``TokenVerdict`` is what the server made of a token. Kept apart from
``http_transport.HttpTransport``, which only turns to this module when challenged.
"""

import base64
import http.client
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlencode, urlsplit

from trust.notary.connections import ConnectionPool, ResponseTooLarge, origin
from trust.notary.errors import NotaryRejected, NotaryUnavailable

TOKEN_LIMIT = 64 * 1024
TOKEN_MIN_LIFETIME = 60  # seconds; the registry token spec's minimum ("Token authentication")


@dataclass(frozen=True)
class Challenge:
    """A ``WWW-Authenticate: Bearer`` challenge; ``error`` is what the server made of the
    token it was shown, if any: ``invalid_token`` or ``insufficient_scope``
    (docs/notary-protocol.md, "Token authentication")."""

    realm: str
    service: str
    error: str = ""

    @classmethod
    def parse(cls, header: str) -> "Challenge | None":
        if not header.lower().startswith("bearer "):
            return None
        params = dict(re.findall(r'(\w+)="([^"]*)"', header))
        if "realm" not in params:
            return None
        return cls(params["realm"], params.get("service", ""), params.get("error", ""))


class TokenVerdict(StrEnum):
    """What notary-server made of a bearer token (``HttpTransport.token_verdict``)."""

    NOT_REQUIRED = "not_required"  # it answered without a token: it does not check tokens
    ACCEPTED = "accepted"  # valid, and it grants what the request needs
    INSUFFICIENT_SCOPE = "insufficient_scope"  # valid (signer, issuer, audience, times), too little
    INVALID = "invalid_token"  # refused: untrusted signer, bad signature, wrong claims, expired


# Given a challenge and a scope (``repository:<gun>:push,pull``), give a token; ``None``
# leaves it to the challenge's realm, asked over HTTP with the credentials.
TokenMinter = Callable[[Challenge, str], str | None]


class BearerTokens:
    """The tokens of one transport: one per scope, cached until it expires.

    ``token_minter`` replaces the HTTP call to the realm, for a caller that is itself the
    token issuer; where it answers ``None``, the realm is asked over ``pool``, with the
    credentials when given (else anonymously). Thread-safe.
    """

    def __init__(
        self,
        pool: ConnectionPool,
        *,
        username: str | None = None,
        password: str | None = None,
        token_minter: TokenMinter | None = None,
    ) -> None:
        self._pool = pool
        self._credentials = (username, password) if username else None
        self._token_minter = token_minter
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def cached(self, scope: str) -> str | None:
        with self._lock:
            entry = self._tokens.get(scope)
        if entry and entry[1] > time.monotonic():
            return entry[0]
        return None

    def fetch(self, challenge: Challenge, scope: str, gun: str) -> str:
        minted = self._token_minter(challenge, scope) if self._token_minter else None
        if minted is not None:
            token, lifetime = minted, TOKEN_MIN_LIFETIME
        else:
            token, lifetime = self._token_from_realm(challenge, scope, gun)
        with self._lock:
            # Renew a little early so a token never expires between use and arrival.
            self._tokens[scope] = (token, time.monotonic() + max(lifetime - 10, 1))
        return token

    def _token_from_realm(self, challenge: Challenge, scope: str, gun: str) -> tuple[str, int]:
        query = {"service": challenge.service, "scope": scope}
        headers = {}
        if self._credentials:
            username, password = self._credentials
            query["account"] = username
            basic = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {basic}"
        realm = urlsplit(challenge.realm)
        if realm.scheme not in ("http", "https") or not realm.hostname:
            raise NotaryRejected(
                f"the token realm {challenge.realm!r} is not an http(s) URL",
                gun=gun,
                code="UNAUTHORIZED",
            )
        target = (realm.path or "/") + "?" + (f"{realm.query}&" if realm.query else "")
        try:
            answer = self._pool.exchange(
                origin(realm.scheme, realm.hostname, realm.port),
                "GET",
                target + urlencode(query),
                None,
                headers,
                TOKEN_LIMIT,
            )
        except ResponseTooLarge as error:
            raise NotaryRejected("token service answered too much", gun=gun) from error
        except (OSError, http.client.HTTPException) as error:
            raise NotaryUnavailable(
                f"cannot reach the token service {challenge.realm}: {error}", gun=gun
            ) from error
        if answer.status >= 500:
            raise NotaryUnavailable(f"token service answered {answer.status}", gun=gun)
        if answer.status != 200:
            raise NotaryRejected(
                f"token service refused the credentials for {scope}",
                gun=gun,
                code="UNAUTHORIZED",
                status=answer.status,
            )
        try:
            document = json.loads(answer.body)
            token = document.get("token") or document["access_token"]
            lifetime = max(int(document.get("expires_in", TOKEN_MIN_LIFETIME)), TOKEN_MIN_LIFETIME)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise NotaryRejected("token service answered no token", gun=gun) from error
        return str(token), lifetime
