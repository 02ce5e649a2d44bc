"""What every transport to notary-server shares: the ``Transport`` base class, its failure
contract, and the paths, scopes and bodies of the trust data API.

Everything that talks to the network is behind ``Transport``; the rest of the package works
on bytes, so it can be tested without a server. ``Transport`` holds every transport, real
or fake, to the failure contract of ``errors.py``. The real one, over HTTP(S), is
``http_transport.HttpTransport``. What the server answers is in docs/notary-protocol.md
("Repositories and roles", "Publishing").
"""

import contextlib
import http.client
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Literal
from urllib.parse import urlencode

from trust.notary.errors import NotaryError, NotaryRejected, NotaryUnavailable

KEY_LIMIT = 256 * 1024
DEFAULT_LIMIT = 100 * 1024 * 1024
# What a failed exchange raises: no answer (refused, reset, timed out, TLS: all OSError), a
# broken HTTP stream, or an answer that makes no sense (ValueError). Worth retrying.
EXCHANGE_ERRORS = (OSError, http.client.HTTPException, ValueError)

# Told of every request a transport sent: its method, how long it took in seconds, and the
# error it raised (None when it answered). The library keeps no metrics itself; whoever
# builds the transport may (trust.notary_access, to Prometheus).
RequestObserver = Callable[[str, float, NotaryError | None], None]


class Transport(ABC):
    """Sends one request to notary-server; every transport, real or fake, derives from it.

    As python-tuf's ``FetcherInterface``: subclasses implement ``_request``, and ``request``
    holds them to the contract of ``errors.py``, so a caller only ever handles a
    ``NotaryError``. A ``NotaryError`` from ``_request`` passes through; a failed exchange
    (``EXCHANGE_ERRORS``) becomes ``NotaryUnavailable``, to retry; any other exception is a
    bug, not an outage, and becomes a plain ``NotaryError`` that no caller retries. A 2xx
    body over ``limit`` is ``NotaryRejected`` ``TOO_LARGE``, whoever read it. ``observer``,
    when set, is told of every request's duration and outcome.
    """

    observer: RequestObserver | None = None

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
        started = time.perf_counter()
        try:
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
        except NotaryError as error:
            if self.observer is not None:
                self.observer(method, time.perf_counter() - started, error)
            raise
        if self.observer is not None:
            self.observer(method, time.perf_counter() - started, None)
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
