"""Start and stop a real OpenID Connect provider (npm ``oidc-provider``) for tests.

``OidcProvider.ephemeral(clients, users)`` keeps everything in a temporary directory: the
provider's config (client secrets, passwords and its private signing key, mode 0600), a CA
and a server certificate for 127.0.0.1 and localhost when it serves HTTPS, and the log.
``start()`` picks a free loopback port and returns once discovery answers.
``rotate_keys()`` restarts it on the same port with a new signing key, so a test can
check that a relying party follows a rotation, or refuses a token signed with the old key.

The provider itself is devtools/oidc_provider/provider.mjs; its packages are installed by
``make test`` (``npm ci``) or ``ensure_installed()``. Its state (sessions, codes, tokens)
lives in memory: a restart forgets it.

No Django here: tests start it before (and without) the project's settings.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.certificates import loopback_certificates
from devtools.notary import _write
from devtools.ports import free_port

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
# npm writes this file last; its presence means `npm ci` finished.
INSTALLED_MARKER = PROVIDER_DIR / "node_modules" / ".package-lock.json"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
PORT_ATTEMPTS = 5
PORT_TAKEN_EXIT = 98  # provider.mjs exits with this when its port is in use
SIGNING_ALG = "RS256"


class OidcProviderError(RuntimeError):
    """The provider could not be installed, started or stopped; the message holds its log."""


@dataclass(frozen=True)
class OidcClient:
    """A client registered at the provider.

    With ``any_loopback_port`` it is registered as a native client: a ``http://127.0.0.1``
    or ``http://localhost`` redirect URI then matches on any port (RFC 8252, section 7.3),
    so one registration serves every test's live server.
    """

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    any_loopback_port: bool = False
    token_endpoint_auth_method: str = "client_secret_basic"  # noqa: S105 - a method's name

    def metadata(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": list(self.redirect_uris),
            "application_type": "native" if self.any_loopback_port else "web",
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
        }


@dataclass(frozen=True)
class OidcUser:
    """An account at the provider; ``groups`` become the ID token's ``groups`` claim."""

    sub: str
    username: str
    password: str
    name: str
    email: str
    groups: tuple[str, ...] = ()

    def config(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "username": self.username,
            "password": self.password,
            "name": self.name,
            "email": self.email,
            "groups": list(self.groups),
        }


def installed() -> bool:
    return INSTALLED_MARKER.exists()


def npm_install() -> None:
    """``npm ci`` in devtools/oidc_provider: the locked packages, no output unless it fails."""
    npm = shutil.which("npm")
    if npm is None:
        raise OidcProviderError("npm is not installed")
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=PROVIDER_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise OidcProviderError(f"npm ci failed ({result.returncode}):\n{result.stderr}")


def ensure_installed() -> None:
    """Install the provider's packages unless they are there."""
    if not installed():
        npm_install()


def new_signing_jwk() -> dict[str, str]:
    """A fresh RSA private key as a JWK with a random ``kid``, for RS256 ID tokens."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_numbers()
    public = private.public_numbers
    return {
        "kty": "RSA",
        "kid": secrets.token_urlsafe(12),
        "alg": SIGNING_ALG,
        "use": "sig",
        "n": _b64_int(public.n),
        "e": _b64_int(public.e),
        "d": _b64_int(private.d),
        "p": _b64_int(private.p),
        "q": _b64_int(private.q),
        "dp": _b64_int(private.dmp1),
        "dq": _b64_int(private.dmq1),
        "qi": _b64_int(private.iqmp),
    }


@dataclass
class OidcProvider:
    """oidc-provider under node, with its config, certificates and log in ``state_dir``."""

    state_dir: Path
    port: int
    clients: tuple[OidcClient, ...]
    users: tuple[OidcUser, ...]
    tls: bool = True
    retry_ports: bool = False  # pick a new port when it is taken (only for a chosen-free port)
    _signing_jwk: dict[str, str] = field(default_factory=new_signing_jwk, repr=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @classmethod
    def ephemeral(
        cls, clients: Sequence[OidcClient], users: Sequence[OidcUser], tls: bool = True
    ) -> OidcProvider:
        """A throwaway provider: temporary directory, free port; ``discard()`` removes it."""
        return cls(
            state_dir=Path(tempfile.mkdtemp(prefix="oidc-provider-")),
            port=free_port(),
            clients=tuple(clients),
            users=tuple(users),
            tls=tls,
            retry_ports=True,
        )

    @property
    def issuer(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        """The CA that signed the provider's certificate (``None`` over plain HTTP)."""
        return self.state_dir / "ca.crt" if self.tls else None

    @property
    def verify(self) -> str | bool:
        """What ``requests`` takes as ``verify=`` to trust this provider."""
        return str(self.ca_file) if self.ca_file is not None else True

    @property
    def signing_jwk(self) -> dict[str, str]:
        """The current private signing key, for a test that signs tokens of its own."""
        return dict(self._signing_jwk)

    def client(self, client_id: str) -> OidcClient:
        """The registered client ``client_id``, with its secret."""
        return next(client for client in self.clients if client.client_id == client_id)

    def start(self) -> None:
        """Start node and wait until discovery answers; on failure the error holds the log."""
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not installed():
            raise OidcProviderError(
                f"{INSTALLED_MARKER.parent} is missing: run `make test` or ensure_installed()"
            )
        if self.tls:
            self._write_certificates()
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._start_process()
                return
            except _PortTaken:
                self.stop()
                if not self.retry_ports or attempt == PORT_ATTEMPTS:
                    raise
                self.port = free_port()

    def stop(self) -> None:
        """Stop node (SIGTERM, then SIGKILL); sessions, codes and tokens are gone with it."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def discard(self) -> None:
        """Stop and delete the state directory: a throwaway provider's teardown."""
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        path = self.state_dir / "provider.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def rotate_keys(self) -> dict[str, str]:
        """Restart on the same port with a new signing key; return the old private key.

        The old key is no longer in the provider's JWKS: a token it signed must now be refused.
        """
        old = self.signing_jwk
        self._signing_jwk = new_signing_jwk()
        self.stop()
        retry_ports, self.retry_ports = self.retry_ports, False  # the issuer must stay the same
        try:
            self.start()
        finally:
            self.retry_ports = retry_ports
        return old

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "issuer": self.issuer,
            "port": self.port,
            "clients": [client.metadata() for client in self.clients],
            "users": [user.config() for user in self.users],
            "jwks": {"keys": [self._signing_jwk]},
        }
        if self.tls:
            config["tls"] = {
                "cert": str(self.state_dir / "server.crt"),
                "key": str(self.state_dir / "server.key"),
            }
        return config

    def _start_process(self) -> None:
        config_path = self.state_dir / "config.json"
        _write(config_path, json.dumps(self._config()).encode(), 0o600)
        node = shutil.which("node")
        if node is None:
            raise OidcProviderError("Node.js (node) is not installed")
        log_path = self.state_dir / "provider.log"
        with open(log_path, "ab") as log:
            start_size = log.tell()
            self._process = subprocess.Popen(  # noqa: S603 - fixed script and our own config
                [node, str(PROVIDER_DIR / "provider.mjs"), str(config_path)],
                cwd=PROVIDER_DIR, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                process_group=0,
            )  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._ready():
            returncode = self._process.poll()
            if returncode is not None:
                with open(log_path, "rb") as log:
                    log.seek(start_size)
                    output = log.read().decode(errors="replace")
                if returncode == PORT_TAKEN_EXIT:
                    raise _PortTaken(f"oidc-provider: port {self.port} in use:\n{output}")
                raise OidcProviderError(f"oidc-provider exited ({returncode}):\n{output}")
            if time.monotonic() > deadline:
                self.stop()
                raise OidcProviderError(
                    f"oidc-provider not ready after {READY_TIMEOUT}s:\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def _ready(self) -> bool:
        context = None
        if self.ca_file is not None:
            context = ssl.create_default_context(cafile=self.ca_file)
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as response:  # noqa: S310 - our own URL
                status: int = response.status
                return status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _write_certificates(self) -> None:
        """A CA and a server certificate for 127.0.0.1 and localhost; reused when both exist."""
        loopback_certificates(
            self.state_dir, ca_name="gatehouse-test-oidc-ca", server_name="oidc-provider"
        )


class _PortTaken(OidcProviderError):
    """node could not bind its port; with a chosen-free port, pick another and retry."""


def _b64_int(value: int) -> str:
    data = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
