"""HTTP exchanges over kept-alive connections: the standard library's ``http.client`` with a
small pool per origin, TLS always verified.

A third of urllib3's CPU per request. Kept apart from ``http_transport.HttpTransport``,
which decides what an answer means, so that the token realm (``auth.py``) is asked over
the same pool: this module only sends a request and reads its answer, within limits
(docs/notary-protocol.md, "Reading").
"""

import http.client
import queue
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass

ERROR_BODY_LIMIT = 1024  # error bodies are read to 1 KiB (docs/notary-protocol.md, "Reading")
# What a kept-alive connection that the server closed meanwhile raises on reuse. Only then,
# and only on a reused connection, is a request sent again (once, on a fresh connection).
STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class ResponseTooLarge(Exception):
    """A 2xx body over the caller's limit (internal: becomes ``NotaryRejected`` TOO_LARGE)."""


Origin = tuple[str, str, int]  # scheme, host, port


def origin(scheme: str, host: str, port: int | None) -> Origin:
    return scheme, host, port or (443 if scheme == "https" else 80)


@dataclass
class Answer:
    status: int
    body: bytes
    headers: http.client.HTTPMessage


class ConnectionPool:
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

    def exchange(
        self,
        origin: Origin,
        method: str,
        target: str,
        body: bytes | None,
        headers: dict[str, str],
        limit: int,
        *,
        on_sent: Callable[[], None] | None = None,
    ) -> Answer:
        """One request and its answer; a stale kept-alive connection is replaced once.

        ``on_sent`` is called each time the request goes out (``HttpTransport`` counts the
        requests to notary-server that way; those to the token realm are not counted).
        """
        connection, reused = self.take(origin)
        try:
            try:
                response = _roundtrip(connection, method, target, body, headers, on_sent)
            except STALE_CONNECTION_ERRORS:
                connection.close()
                if not reused:
                    raise
                connection = self.connect(origin)
                response = _roundtrip(connection, method, target, body, headers, on_sent)
            ceiling = limit if 200 <= response.status < 300 else ERROR_BODY_LIMIT
            payload = response.read(ceiling + 1)
            if len(payload) > ceiling and 200 <= response.status < 300:
                # Never drain it: a hostile server could stream forever.
                raise ResponseTooLarge
        except BaseException:
            connection.close()
            raise
        if response.isclosed():  # read to the end: the connection can serve another request
            self.give_back(origin, connection)
        else:  # an error body over 1 KiB, left unread
            connection.close()
        return Answer(response.status, payload, response.headers)


def _roundtrip(
    connection: http.client.HTTPConnection,
    method: str,
    target: str,
    body: bytes | None,
    headers: dict[str, str],
    on_sent: Callable[[], None] | None,
) -> http.client.HTTPResponse:
    connection.request(method, target, body=body, headers=headers)
    if on_sent is not None:
        on_sent()
    return connection.getresponse()
