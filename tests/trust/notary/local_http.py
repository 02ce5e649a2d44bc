"""A tiny local HTTP server for the transport tests (``test_transport.py``,
``test_http_transport.py``, ``test_connections.py``, ``test_auth.py``): bodies, challenges,
errors. The ``server`` and ``transport`` fixtures (``conftest.py``) are built on it."""

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GUN = "example.com/app"
TOKEN = "good-token"
THIN_TOKEN = "thin-token"  # valid, but grants too little
CHALLENGE = (
    'Bearer realm="https://auth.example/token",service="notary-server",'
    f'scope="repository:{GUN}:push,pull"'
)


def error_body(code: str, message: str, detail=None) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]}).encode()


# path -> (status, headers, body)
ROUTES = {
    "/missing": (404, {}, error_body("METADATA_NOT_FOUND", "not found")),
    "/old": (400, {}, error_body("VERSION", "A newer version of metadata is already available.")),
    "/invalid": (400, {}, error_body("INVALID_UPDATE", "invalid", {"Name": "ErrBadRoot"})),
    "/broken": (500, {}, error_body("UNKNOWN", "unknown error")),
    "/gateway": (502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>"),
    "/big": (200, {}, b"x" * 2000),
    "/bare-401": (401, {"WWW-Authenticate": 'Basic realm="x"'}, b""),
    "/long-error": (404, {}, b"e" * 5000),
    "/close": (200, {"Connection": "close"}, b"closing"),
    "/basic/v2/": (401, {"WWW-Authenticate": 'Basic realm="proxy"'}, b""),
    "/gone/v2/": (404, {}, b"404 page not found"),
    "/failing/v2/": (503, {}, b"unavailable"),
}


@contextlib.contextmanager
def serving() -> Iterator[ThreadingHTTPServer]:
    """Answers ``ROUTES``; under ``/auth/`` it demands ``Bearer good-token`` and, as
    notary-server does, says in its challenge what it made of another token
    (docs/notary-protocol.md, "Token authentication")."""
    seen: list[tuple[str, str, str | None, bytes]] = []
    connections: list[tuple[str, int]] = []  # the client address of each request

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as notary-server does

        def _handle(self) -> None:
            connections.append(self.client_address)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            authorization = self.headers.get("Authorization")
            seen.append((self.command, self.path, authorization, body))
            if self.path.startswith("/token?"):
                status, headers, payload = 200, {}, b'{"token":"good-token","expires_in":300}'
            elif self.path.startswith("/realm/"):
                if authorization == f"Bearer {TOKEN}":
                    status, headers, payload = 200, {}, b"{}"
                else:
                    port = self.server.server_address[1]
                    realm = f'Bearer realm="http://127.0.0.1:{port}/token",service="notary"'
                    status, headers, payload = 401, {"WWW-Authenticate": realm}, b""
            elif self.path.startswith("/auth/"):
                if authorization == f"Bearer {TOKEN}":
                    status, headers, payload = 200, {}, b"{}"
                else:
                    challenge = CHALLENGE
                    if authorization == f"Bearer {THIN_TOKEN}":
                        challenge += ',error="insufficient_scope"'
                    elif authorization is not None:
                        challenge += ',error="invalid_token"'
                    status, headers, payload = 401, {"WWW-Authenticate": challenge}, b""
            else:
                status, headers, payload = ROUTES.get(self.path, (200, {}, b"ok"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    httpd.seen = seen
    httpd.connections = connections
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def get(transport, path: str, **options) -> bytes:
    return transport.request("GET", path, scope=f"repository:{GUN}:pull", gun=GUN, **options)
