"""Free TCP ports on loopback, for the development Notary, tests and benchmarks."""

import socket


def free_port() -> int:
    """A TCP port that was free a moment ago (another process may still take it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
