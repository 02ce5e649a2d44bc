"""HTTP to notary-server: one connection pool, TLS always verified, token auth (§1, §7).

Everything that talks to the network is here, behind ``Transport``; the rest of the package
works on bytes, so it can be tested without a server.
"""

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urlencode

import urllib3

from trust.notary.errors import (
    NotaryRejected,
    NotaryUnavailable,
    NotFound,
    VersionConflict,
)

ERROR_BODY_LIMIT = 1024  # §8.17: error bodies are read to 1 KiB
KEY_LIMIT = 256 * 1024
TOKEN_LIMIT = 64 * 1024
DEFAULT_LIMIT = 100 * 1024 * 1024
TOKEN_MIN_LIFETIME = 60  # seconds; the registry token spec's minimum (§7.3)


@dataclass(frozen=True)
class Challenge:
    """A ``WWW-Authenticate: Bearer`` challenge (§7.2)."""

    realm: str
    service: str

    @classmethod
    def parse(cls, header: str) -> "Challenge | None":
        if not header.lower().startswith("bearer "):
            return None
        params = dict(re.findall(r'(\w+)="([^"]*)"', header))
        if "realm" not in params:
            return None
        return cls(params["realm"], params.get("service", ""))


# Given a challenge and a scope (``repository:<gun>:push,pull``), give a token.
TokenMinter = Callable[[Challenge, str], str]


class Transport(Protocol):
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
        ...


def repository_scope(gun: str, *actions: str) -> str:
    return f"repository:{gun}:{','.join(actions)}"


def multipart(files: dict[str, bytes]) -> tuple[bytes, str]:
    """The publish body (§1.2): one part per role, filename = the role, slash kept literal."""
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


class HttpTransport:
    """notary-server over HTTP(S), with keep-alive and Docker token authentication.

    On a 401 challenge it asks the realm for a token for exactly the scope the operation
    needs (with the configured credentials, or anonymously), caches it per scope until it
    expires, and retries once. ``token_minter`` replaces the HTTP call to the realm, for a
    caller that is itself the token issuer.
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
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=pool_size,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_bundle,
            timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
            retries=False,
        )
        self._credentials = (username, password) if username else None
        self._token_minter = token_minter
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.requests_sent = 0

    def trust_path(self, gun: str, tail: str) -> str:
        return f"/v2/{gun}/_trust/tuf/{tail}"

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
        headers = {"Content-Type": content_type} if content_type else {}
        token = self._cached_token(scope)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        status, payload, response_headers = self._send(
            method, path, body, headers, limit, gun, role
        )
        if status == 401:
            challenge = Challenge.parse(response_headers.get("WWW-Authenticate", ""))
            if challenge is None:
                raise NotaryRejected(
                    "authentication required, but no Bearer challenge",
                    gun=gun,
                    role=role,
                    code="UNAUTHORIZED",
                    status=401,
                )
            headers["Authorization"] = f"Bearer {self._fetch_token(challenge, scope, gun)}"
            status, payload, response_headers = self._send(
                method, path, body, headers, limit, gun, role
            )
        if 200 <= status < 300:
            return payload
        raise self._error(status, payload, gun=gun, role=role)

    def _send(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
        limit: int,
        gun: str,
        role: str,
    ) -> tuple[int, bytes, urllib3.HTTPHeaderDict]:
        url = self.base_url + quote(path, safe="/:@!$&'()*+,;=-._~?")
        try:
            response = self._pool.request(
                method, url, body=body, headers=headers, preload_content=False
            )
            with self._lock:  # threads share one transport (pool_size); += is not atomic
                self.requests_sent += 1
            try:
                ceiling = limit if 200 <= response.status < 300 else ERROR_BODY_LIMIT
                payload = response.read(ceiling + 1)
                if len(payload) > ceiling and 200 <= response.status < 300:
                    raise NotaryRejected(
                        f"response larger than {limit} bytes", gun=gun, role=role, code="TOO_LARGE"
                    )
            finally:
                response.drain_conn()
                response.release_conn()
        except urllib3.exceptions.HTTPError as error:
            raise NotaryUnavailable(
                f"cannot reach {self.base_url}: {type(error).__name__}: {error}", gun=gun, role=role
            ) from error
        return response.status, payload, response.headers

    @staticmethod
    def _error(status: int, payload: bytes, *, gun: str, role: str) -> Exception:
        code, message = "", payload[:200].decode("utf-8", "replace").strip()
        try:
            first = json.loads(payload)["errors"][0]
            code = str(first.get("code", ""))
            message = str(first.get("message", "")) + (
                f" ({json.dumps(first['detail'])})" if first.get("detail") else ""
            )
        except (ValueError, KeyError, IndexError, TypeError):
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
        if self._token_minter is not None:
            token, lifetime = self._token_minter(challenge, scope), TOKEN_MIN_LIFETIME
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
        try:
            response = self._pool.request(
                "GET",
                f"{challenge.realm}?{urlencode(query)}",
                headers=headers,
                preload_content=False,
            )
            try:
                payload = response.read(TOKEN_LIMIT + 1)
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as error:
            raise NotaryUnavailable(
                f"cannot reach the token service {challenge.realm}: {error}", gun=gun
            ) from error
        if response.status >= 500:
            raise NotaryUnavailable(f"token service answered {response.status}", gun=gun)
        if response.status != 200:
            raise NotaryRejected(
                f"token service refused the credentials for {scope}",
                gun=gun,
                code="UNAUTHORIZED",
                status=response.status,
            )
        try:
            answer = json.loads(payload)
            token = answer.get("token") or answer["access_token"]
            lifetime = max(int(answer.get("expires_in", TOKEN_MIN_LIFETIME)), TOKEN_MIN_LIFETIME)
        except (ValueError, KeyError, TypeError) as error:
            raise NotaryRejected("token service answered no token", gun=gun) from error
        return str(token), lifetime
