"""Django's PostgreSQL backend with a per-request health check that sends nothing.

Django's check (``CONN_HEALTH_CHECKS``) runs ``SELECT 1`` before each request's first query
on a kept connection: a round trip on every request, paid by the cheapest reads most. A
server that ends a connection (a restart, ``pg_terminate_backend``, ``idle_session_timeout``,
a proxy timing out) sends its reason and closes the socket, and a healthy connection with no
statement running has nothing to read. So the check here asks the kernel, without waiting,
whether the socket has anything to read or has been hung up; if it has, the connection is
replaced before the request uses it, as Django's check would. After an error, Django still
checks with ``SELECT 1`` (``is_usable`` is unchanged), because then the connection's state is
in doubt.
"""

import select

import psycopg
from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


def connection_is_quiet(connection: psycopg.Connection) -> bool:
    """Whether an open connection is idle with nothing from the server waiting to be read."""
    if connection.closed or connection.broken:
        return False
    if connection.info.transaction_status != TransactionStatus.IDLE:
        return False
    try:
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN)
        return not poller.poll(0)
    except (OSError, psycopg.Error):
        return False


class DatabaseWrapper(base.DatabaseWrapper):
    _checking_health = False

    def close_if_health_check_failed(self) -> None:
        """Django decides when a check is due (once per request, when enabled); the check
        itself is ``connection_is_quiet``."""
        self._checking_health = True
        try:
            super().close_if_health_check_failed()
        finally:
            self._checking_health = False

    def is_usable(self) -> bool:
        if self._checking_health and self.connection is not None:
            return connection_is_quiet(self.connection)
        return super().is_usable()
