"""``HttpTransport``: notary-server over HTTP(S), the transport Gatehouse runs on.

It sends each request over the kept-alive pool of ``connections.py``, answers a 401
challenge with a token from ``auth.py`` and retries once, and turns the server's error
answers into the errors of ``errors.py`` (docs/notary-protocol.md, "Repositories and roles",
"Token authentication").
"""

import http.client
import json
import threading
from urllib.parse import quote, urlsplit

from trust.notary.auth import BearerTokens, Challenge, TokenMinter, TokenVerdict
from trust.notary.connections import (
    ERROR_BODY_LIMIT,
    Answer,
    ConnectionPool,
    Origin,
    ResponseTooLarge,
    origin,
)
from trust.notary.errors import NotaryRejected, NotaryUnavailable, NotFound, VersionConflict
from trust.notary.transport import RequestObserver, Transport, notary_errors_only

CONNECT_TIMEOUT_CAP = 5.0
# Needs registry:catalog:* under token auth, answers {} ("Token authentication").
PING_PATH = "/v2/"


class HttpTransport(Transport):
    """notary-server over HTTP(S), with keep-alive and Docker token authentication.

    On a 401 challenge it asks the realm for a token for exactly the scope the operation
    needs (with the configured credentials, or anonymously), caches it per scope until it
    expires, and retries once. ``token_minter`` replaces the HTTP call to the realm, for a
    caller that is itself the token issuer; where it answers ``None``, the realm is asked.

    HTTPS always verifies the server's certificate and name, against ``ca_bundle`` when
    given, else the system's CAs. ``timeout`` bounds each read; connecting gets at most 5 s.
    Thread-safe: threads share the pool, which keeps up to ``pool_size`` idle connections
    per origin (more may be open at once; the extra ones are closed after use). ``observer``
    is told of every request (``Transport``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        ca_bundle: str | None = None,
        timeout: float = 10.0,
        username: str | None = None,
        password: str | None = None,
        token_minter: TokenMinter | None = None,
        pool_size: int = 8,
        observer: RequestObserver | None = None,
    ) -> None:
        self.observer = observer
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._origin: Origin = origin(parts.scheme, parts.hostname, parts.port)
        self._prefix = parts.path
        self._pool = ConnectionPool(
            pool_size, min(timeout, CONNECT_TIMEOUT_CAP), timeout, ca_bundle
        )
        self._tokens = BearerTokens(
            self._pool, username=username, password=password, token_minter=token_minter
        )
        self._lock = threading.Lock()
        self.requests_sent = 0

    def close(self) -> None:
        """Close the idle connections (the transport stays usable)."""
        self._pool.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        gun: str,
        role: str,
        body: bytes | None,
        content_type: str | None,
        limit: int,
    ) -> bytes:
        headers = {"Content-Type": content_type} if content_type else {}
        token = self._tokens.cached(scope)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        target = self._target(path)
        answer = self._send(method, target, body, headers, limit, gun, role)
        if answer.status == 401:
            challenge = self._challenge(answer, gun=gun, role=role)
            headers["Authorization"] = f"Bearer {self._tokens.fetch(challenge, scope, gun)}"
            answer = self._send(method, target, body, headers, limit, gun, role)
        if 200 <= answer.status < 300:
            return answer.body
        raise self._error(answer.status, answer.body, gun=gun, role=role)

    def token_verdict(self, token: str) -> TokenVerdict:
        """What notary-server makes of ``token`` for ``GET /v2/``, without fetching another.

        It is asked without a token first: a server that does not check tokens ignores one
        (it answers 200 to any), so only that tells it apart from one that accepts this
        token. Then the challenge's ``error`` tells a token it distrusts (``invalid_token``)
        from one it trusts that grants too little (``insufficient_scope``), both a 401.
        Failures keep to ``request``'s contract.
        """
        with notary_errors_only(gun="", role=""):
            return self._token_verdict(token)

    def _token_verdict(self, token: str) -> TokenVerdict:
        target = self._target(PING_PATH)
        answer = self._send("GET", target, None, {}, ERROR_BODY_LIMIT, "", "")
        if 200 <= answer.status < 300:
            return TokenVerdict.NOT_REQUIRED
        if answer.status != 401:
            raise self._error(answer.status, answer.body, gun="", role="")
        self._challenge(answer, gun="", role="")
        headers = {"Authorization": f"Bearer {token}"}
        answer = self._send("GET", target, None, headers, ERROR_BODY_LIMIT, "", "")
        if 200 <= answer.status < 300:
            return TokenVerdict.ACCEPTED
        if answer.status == 401:
            error = self._challenge(answer, gun="", role="").error
            if error in (TokenVerdict.INVALID, TokenVerdict.INSUFFICIENT_SCOPE):
                return TokenVerdict(error)
        raise self._error(answer.status, answer.body, gun="", role="")

    def _target(self, path: str) -> str:
        return self._prefix + quote(path, safe="/:@!$&'()*+,;=-._~?")

    @staticmethod
    def _challenge(answer: Answer, *, gun: str, role: str) -> Challenge:
        """The Bearer challenge of a 401; without one there is no way to authenticate."""
        challenge = Challenge.parse(answer.headers.get("WWW-Authenticate", ""))
        if challenge is None:
            raise NotaryRejected(
                "authentication required, but no Bearer challenge",
                gun=gun,
                role=role,
                code="UNAUTHORIZED",
                status=401,
            )
        return challenge

    def _send(
        self,
        method: str,
        target: str,
        body: bytes | None,
        headers: dict[str, str],
        limit: int,
        gun: str,
        role: str,
    ) -> Answer:
        try:
            return self._pool.exchange(
                self._origin, method, target, body, headers, limit, on_sent=self._count
            )
        except ResponseTooLarge as error:
            raise NotaryRejected(
                f"response larger than {limit} bytes", gun=gun, role=role, code="TOO_LARGE"
            ) from error
        except (OSError, http.client.HTTPException) as error:  # refused, timeout, TLS, garbage
            raise NotaryUnavailable(
                f"cannot reach {self.base_url}: {type(error).__name__}: {error}", gun=gun, role=role
            ) from error

    def _count(self) -> None:
        """One more request sent to notary-server (``requests_sent``)."""
        with self._lock:  # threads share one transport (pool_size); += is not atomic
            self.requests_sent += 1

    @staticmethod
    def _error(status: int, payload: bytes, *, gun: str, role: str) -> Exception:
        code, message = "", payload[:200].decode("utf-8", "replace").strip()
        try:
            first = json.loads(payload)["errors"][0]
            code = str(first.get("code", ""))
            message = str(first.get("message", "")) + (
                f" ({json.dumps(first['detail'])})" if first.get("detail") else ""
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
            pass
        message = message or f"HTTP {status}"
        if status >= 500:
            return NotaryUnavailable(
                f"server error {status}: {code} {message}".strip(), gun=gun, role=role
            )
        if status == 404:
            return NotFound(message, gun=gun, role=role, code=code or "NOT_FOUND", status=status)
        if code == "VERSION":
            return VersionConflict(message, gun=gun, role=role, code=code, status=status)
        return NotaryRejected(message, gun=gun, role=role, code=code, status=status)
