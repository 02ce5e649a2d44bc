"""A tiny Docker-registry token issuer for tests (docs/notary-protocol.md, "Token authentication").

``TokenIssuer`` holds an ECDSA P-256 key and a self-signed certificate for it; that
certificate is the ``rootcertbundle`` notary-server trusts (the leaf may be the bundle
certificate itself). ``start()`` serves ``GET /token?service=…&scope=…&account=…`` on
127.0.0.1: it checks HTTP Basic credentials, mints an ES256 JWT with ``x5c`` for the scopes
asked, and records every request in ``requests`` as ``(account, scope)``. ``minter`` mints in
process, for ``HttpTransport(token_minter=…)``. The JWT itself is made by the product's
``trust.token_service.tokens.signed_jwt``; only the key, the users and the (grant-all)
policy are the test's.
"""

import base64
import datetime as dt
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trust.custody import TokenSigner
from trust.notary.auth import Challenge
from trust.token_service.tokens import Scope, signed_jwt

SERVICE = "notary-server"
ISSUER = "gatehouse-test"
LIFETIME = 300  # seconds


def parse_scope(scope: str) -> dict:
    """``repository:<name>:<actions>``; the name may hold ``:`` or ``/``
    (docs/notary-protocol.md, "Token authentication")."""
    return Scope.parse(scope).claim()


class TokenIssuer:
    def __init__(self, directory: Path, users: dict[str, str]) -> None:
        self.users = dict(users)
        self.requests: list[tuple[str | None, str]] = []
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gatehouse-test-tokens")])
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(self._key, hashes.SHA256())
        )
        self.bundle = directory / "token-ca.pem"
        self.bundle.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self._signer = TokenSigner.for_key(self._key, self.certificate, "test-issuer")
        self._server: ThreadingHTTPServer | None = None

    # -- minting ----------------------------------------------------------------------

    def mint(self, scopes: list[str], *, subject: str = "", service: str = SERVICE) -> str:
        """A compact JWS exactly as notary-server accepts it: ES256, raw r‖s, x5c
        (docs/notary-protocol.md, "Token authentication")."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": service,  # a string: an array is rejected
            "exp": now + LIFETIME,  # integers: floats are rejected
            "nbf": now - 5,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": [parse_scope(scope) for scope in scopes],
        }
        return signed_jwt(self._signer, claims)

    def minter(self, challenge: Challenge, scope: str) -> str:
        """A ``TokenMinter``: a token for ``scope`` without an HTTP round trip."""
        return self.mint([scope], subject="in-process", service=challenge.service)

    # -- the HTTP service ---------------------------------------------------------------

    @property
    def realm(self) -> str:
        assert self._server is not None, "start() the issuer first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def auth_config(self) -> dict:
        """notary-server's ``"auth"`` section trusting this issuer (docs/notary-protocol.md,
        "Token authentication")."""
        return {
            "type": "token",
            "options": {
                "realm": self.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(self.bundle),
            },
        }

    def start(self) -> None:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                scopes = query.get("scope", [])
                account = issuer._account(self.headers.get("Authorization", ""))
                for scope in scopes:
                    issuer.requests.append((account, scope))
                if account is None:
                    self._answer(401, {"errors": [{"code": "UNAUTHORIZED"}]})
                    return
                token = issuer.mint(scopes, subject=account, service=query["service"][0])
                issued = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                self._answer(
                    200,
                    {"token": token, "access_token": token, "expires_in": LIFETIME,
                     "issued_at": issued},
                )  # fmt: skip

            def _answer(self, status: int, document: dict) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _account(self, authorization: str) -> str | None:
        """The user whose HTTP Basic credentials are right, else ``None``."""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            username, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        if username in self.users and secrets.compare_digest(self.users[username], password):
            return username
        return None
