"""HTTP to notary-server: one connection pool, TLS always verified, token auth.

Everything that talks to the network is here, behind ``Transport``; the rest of the package
works on bytes, so it can be tested without a server. ``Transport`` holds every transport,
real or fake, to the failure contract of ``errors.py``. The HTTP is the standard library's
``http.client`` with a small keep-alive pool per origin: a third of urllib3's CPU per request.
What the server answers, and how its token authentication works, is in
docs/notary-protocol.md ("Repositories and roles", "Token authentication").
"""

import base64
import contextlib
import http.client
import json
import queue
import re
import secrets
import ssl
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal
from urllib.parse import quote, urlencode, urlsplit

from trust.notary.errors import (
    NotaryError,
    NotaryRejected,
    NotaryUnavailable,
    NotFound,
    VersionConflict,
)

ERROR_BODY_LIMIT = 1024  # error bodies are read to 1 KiB (docs/notary-protocol.md, "Reading")
KEY_LIMIT = 256 * 1024
TOKEN_LIMIT = 64 * 1024
DEFAULT_LIMIT = 100 * 1024 * 1024
TOKEN_MIN_LIFETIME = 60  # seconds; the registry token spec's minimum ("Token authentication")
CONNECT_TIMEOUT_CAP = 5.0
# Needs registry:catalog:* under token auth, answers {} ("Token authentication").
PING_PATH = "/v2/"
# What a kept-alive connection that the server closed meanwhile raises on reuse. Only then,
# and only on a reused connection, is a request sent again (once, on a fresh connection).
STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
# What a failed exchange raises: no answer (refused, reset, timed out, TLS: all OSError), a
# broken HTTP stream, or an answer that makes no sense (ValueError). Worth retrying.
EXCHANGE_ERRORS = (OSError, http.client.HTTPException, ValueError)


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


class Transport(ABC):
    """Sends one request to notary-server; every transport, real or fake, derives from it.

    As python-tuf's ``FetcherInterface``: subclasses implement ``_request``, and ``request``
    holds them to the contract of ``errors.py``, so a caller only ever handles a
    ``NotaryError``. A ``NotaryError`` from ``_request`` passes through; a failed exchange
    (``EXCHANGE_ERRORS``) becomes ``NotaryUnavailable``, to retry; any other exception is a
    bug, not an outage, and becomes a plain ``NotaryError`` that no caller retries. A 2xx
    body over ``limit`` is ``NotaryRejected`` ``TOO_LARGE``, whoever read it.
    """

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        gun: str,
        role: str = "",
        body: bytes | None = None,
        content_type: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> bytes:
        """Send one request; answer the body of a 2xx, or raise the matching NotaryError."""
        with notary_errors_only(gun=gun, role=role):
            answer = self._request(
                method,
                path,
                scope=scope,
                gun=gun,
                role=role,
                body=body,
                content_type=content_type,
                limit=limit,
            )
        if len(answer) > limit:
            raise NotaryRejected(
                f"response larger than {limit} bytes", gun=gun, role=role, code="TOO_LARGE"
            )
        return answer

    @abstractmethod
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
        """The exchange itself: the body of a 2xx, else a ``NotaryError`` or any failure."""


@contextlib.contextmanager
def notary_errors_only(*, gun: str, role: str) -> Iterator[None]:
    """Turn what a transport raises into the ``NotaryError`` the contract names
    (``Transport``); the original stays attached as the cause."""
    try:
        yield
    except NotaryError:
        raise
    except EXCHANGE_ERRORS as error:
        raise NotaryUnavailable(
            f"no usable answer: {type(error).__name__}: {error}", gun=gun, role=role
        ) from error
    except Exception as error:
        raise NotaryError(
            f"transport failed: {type(error).__name__}: {error}", gun=gun, role=role
        ) from error


TrustApi = Literal["tuf", "changefeed"]


def trust_path(gun: str, api: TrustApi = "tuf", name: str = "", **query: int) -> str:
    """The one place a GUN's trust data paths are spelt (docs/notary-protocol.md,
    "Repositories and roles", "The change feed"): ``/v2/<gun>/_trust/tuf/<name>`` (a file or
    key; bare, where publishes and deletions go), or ``/v2/<gun>/_trust/changefeed?<query>``.
    """
    if api == "tuf":
        path = f"/v2/{gun}/_trust/tuf/{name}"
    elif name:
        raise ValueError(f"the {api} API takes no name: {name!r}")
    else:
        path = f"/v2/{gun}/_trust/{api}"
    return f"{path}?{urlencode(query)}" if query else path


def repository_scope(gun: str, *actions: str) -> str:
    return f"repository:{gun}:{','.join(actions)}"


def multipart(files: dict[str, bytes]) -> tuple[bytes, str]:
    """The publish body: one part per role, filename = the role, slash kept literal
    (docs/notary-protocol.md, "Publishing")."""
    boundary = secrets.token_hex(16)
    parts = []
    for role, data in files.items():
        parts.append(
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="files"; filename="{role}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode("ascii")
            + data
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode("ascii")
    return body, f"multipart/form-data; boundary={boundary}"


class _ResponseTooLarge(Exception):
    """A 2xx body over the caller's limit (internal: becomes ``NotaryRejected`` TOO_LARGE)."""


Origin = tuple[str, str, int]  # scheme, host, port


@dataclass
class _Answer:
    status: int
    body: bytes
    headers: http.client.HTTPMessage


class _ConnectionPool:
    """Idle keep-alive connections per origin, last in first out, at most ``size`` each.

    A connection is handed to one thread at a time; it comes back only when its response was
    read to the end and the server did not ask to close it. Anything else is closed.
    """

    def __init__(
        self, size: int, connect_timeout: float, read_timeout: float, ca_bundle: str | None
    ) -> None:
        self._size = max(size, 1)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._ca_bundle = ca_bundle
        self._idle: dict[Origin, queue.LifoQueue[http.client.HTTPConnection]] = {}
        self._ssl_context: ssl.SSLContext | None = None
        self._lock = threading.Lock()

    def _queue(self, origin: Origin) -> "queue.LifoQueue[http.client.HTTPConnection]":
        idle = self._idle.get(origin)
        if idle is None:
            with self._lock:
                idle = self._idle.setdefault(origin, queue.LifoQueue(self._size))
        return idle

    def _context(self) -> ssl.SSLContext:
        """Verifying TLS, always: the system CAs, or only ``ca_bundle`` when given."""
        with self._lock:
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context(cafile=self._ca_bundle)
            return self._ssl_context

    def take(self, origin: Origin) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection (reused = True) or a new, connected one."""
        try:
            return self._queue(origin).get_nowait(), True
        except queue.Empty:
            return self.connect(origin), False

    def connect(self, origin: Origin) -> http.client.HTTPConnection:
        scheme, host, port = origin
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=self._connect_timeout, context=self._context()
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self._connect_timeout)
        try:
            connection.connect()  # TCP (and TLS handshake) under the connect timeout
            connection.sock.settimeout(self._read_timeout)
        except BaseException:
            connection.close()
            raise
        return connection

    def give_back(self, origin: Origin, connection: http.client.HTTPConnection) -> None:
        if connection.sock is None:  # the server asked to close it (Connection: close)
            connection.close()
            return
        try:
            self._queue(origin).put_nowait(connection)
        except queue.Full:
            connection.close()

    def close(self) -> None:
        with self._lock:
            queues = list(self._idle.values())
        for idle in queues:
            while True:
                try:
                    idle.get_nowait().close()
                except queue.Empty:
                    break


class HttpTransport(Transport):
    """notary-server over HTTP(S), with keep-alive and Docker token authentication.

    On a 401 challenge it asks the realm for a token for exactly the scope the operation
    needs (with the configured credentials, or anonymously), caches it per scope until it
    expires, and retries once. ``token_minter`` replaces the HTTP call to the realm, for a
    caller that is itself the token issuer; where it answers ``None``, the realm is asked.

    HTTPS always verifies the server's certificate and name, against ``ca_bundle`` when
    given, else the system's CAs. ``timeout`` bounds each read; connecting gets at most 5 s.
    Thread-safe: threads share the pool, which keeps up to ``pool_size`` idle connections
    per origin (more may be open at once; the extra ones are closed after use).
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._origin: Origin = _origin(parts.scheme, parts.hostname, parts.port)
        self._prefix = parts.path
        self._pool = _ConnectionPool(
            pool_size, min(timeout, CONNECT_TIMEOUT_CAP), timeout, ca_bundle
        )
        self._credentials = (username, password) if username else None
        self._token_minter = token_minter
        self._tokens: dict[str, tuple[str, float]] = {}
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
        token = self._cached_token(scope)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        target = self._target(path)
        answer = self._send(method, target, body, headers, limit, gun, role)
        if answer.status == 401:
            challenge = self._challenge(answer, gun=gun, role=role)
            headers["Authorization"] = f"Bearer {self._fetch_token(challenge, scope, gun)}"
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
    def _challenge(answer: _Answer, *, gun: str, role: str) -> Challenge:
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
    ) -> _Answer:
        try:
            return self._exchange(self._origin, method, target, body, headers, limit)
        except _ResponseTooLarge as error:
            raise NotaryRejected(
                f"response larger than {limit} bytes", gun=gun, role=role, code="TOO_LARGE"
            ) from error
        except (OSError, http.client.HTTPException) as error:  # refused, timeout, TLS, garbage
            raise NotaryUnavailable(
                f"cannot reach {self.base_url}: {type(error).__name__}: {error}", gun=gun, role=role
            ) from error

    def _exchange(
        self,
        origin: Origin,
        method: str,
        target: str,
        body: bytes | None,
        headers: dict[str, str],
        limit: int,
        *,
        counted: bool = True,
    ) -> _Answer:
        """One request and its answer; a stale kept-alive connection is replaced once.

        ``counted``: whether it goes into ``requests_sent`` (requests to notary-server do,
        those to the token realm do not).
        """
        connection, reused = self._pool.take(origin)
        try:
            try:
                response = self._roundtrip(connection, method, target, body, headers, counted)
            except STALE_CONNECTION_ERRORS:
                connection.close()
                if not reused:
                    raise
                connection = self._pool.connect(origin)
                response = self._roundtrip(connection, method, target, body, headers, counted)
            ceiling = limit if 200 <= response.status < 300 else ERROR_BODY_LIMIT
            payload = response.read(ceiling + 1)
            if len(payload) > ceiling and 200 <= response.status < 300:
                # Never drain it: a hostile server could stream forever.
                raise _ResponseTooLarge
        except BaseException:
            connection.close()
            raise
        if response.isclosed():  # read to the end: the connection can serve another request
            self._pool.give_back(origin, connection)
        else:  # an error body over 1 KiB, left unread
            connection.close()
        return _Answer(response.status, payload, response.headers)

    def _roundtrip(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        target: str,
        body: bytes | None,
        headers: dict[str, str],
        counted: bool,
    ) -> http.client.HTTPResponse:
        connection.request(method, target, body=body, headers=headers)
        if counted:
            with self._lock:  # threads share one transport (pool_size); += is not atomic
                self.requests_sent += 1
        return connection.getresponse()

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

    def _cached_token(self, scope: str) -> str | None:
        with self._lock:
            entry = self._tokens.get(scope)
        if entry and entry[1] > time.monotonic():
            return entry[0]
        return None

    def _fetch_token(self, challenge: Challenge, scope: str, gun: str) -> str:
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
            answer = self._exchange(
                _origin(realm.scheme, realm.hostname, realm.port),
                "GET",
                target + urlencode(query),
                None,
                headers,
                TOKEN_LIMIT,
                counted=False,
            )
        except _ResponseTooLarge as error:
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


def _origin(scheme: str, host: str, port: int | None) -> Origin:
    return scheme, host, port or (443 if scheme == "https" else 80)
