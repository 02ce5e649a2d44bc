"""Django's PostgreSQL backend with a per-request health check that sends nothing, and
prepared statements that survive another process changing the schema.

Django's check (``CONN_HEALTH_CHECKS``) runs ``SELECT 1`` before each request's first query
on a kept connection: a round trip on every request, paid by the cheapest reads most. A
server that ends a connection (a restart, ``pg_terminate_backend``, ``idle_session_timeout``,
a proxy timing out) sends its reason and closes the socket, and a healthy connection with no
statement running has nothing to read. So the check here asks the kernel, without waiting,
whether the socket has anything to read or has been hung up; if it has, the connection is
replaced before the request uses it, as Django's check would. After an error, Django still
checks with ``SELECT 1`` (``is_usable`` is unchanged), because then the connection's state is
in doubt.

A statement a connection has prepared cannot run once another process (a migration of the
next release) changes the type of a column it returns: PostgreSQL refuses it ("cached plan
must not change result type") for as long as the connection lives. Outside a transaction the
statement is run again unprepared; inside one, where the transaction is lost, the request
fails as when the database is briefly unavailable (a 503 to try again). Either way the
connection is replaced at the end of the request, with whatever it had prepared.
"""

import select
import weakref
from typing import Any

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


# Connections that met a statement prepared before the schema changed: closed at the end of
# the request.
_stale_plans: "weakref.WeakSet[psycopg.Connection]" = weakref.WeakSet()


def is_stale_plan(error: psycopg.Error) -> bool:
    """PostgreSQL's refusal to run a prepared plan whose result type changed, told by where
    it was raised rather than by its message, which the server may translate."""
    return (
        isinstance(error, psycopg.errors.FeatureNotSupported)
        and error.diag.source_function == "RevalidateCachedQuery"
    )


# Django's server-binding cursor, which django-stubs do not declare.
_ServerBindingCursor: Any = getattr(base, "ServerBindingCursor")  # noqa: B009


class PreparingCursor(_ServerBindingCursor):
    """Django's server-binding cursor, which outlives a schema change made elsewhere."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        try:
            return super().execute(query, params, **kwargs)
        except psycopg.Error as error:
            if not is_stale_plan(error):
                raise
            _stale_plans.add(self.connection)
            if self.connection.info.transaction_status != TransactionStatus.IDLE:
                raise psycopg.OperationalError(
                    "A statement prepared before the schema changed; try again."
                ) from error
            return super().execute(query, params, **{**kwargs, "prepare": False})


class DatabaseWrapper(base.DatabaseWrapper):
    _checking_health = False

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        if params.get("cursor_factory") is _ServerBindingCursor:
            params["cursor_factory"] = PreparingCursor
        return params

    def close_if_unusable_or_obsolete(self) -> None:
        if self.connection is not None and self.connection in _stale_plans:
            self.close()
            return
        super().close_if_unusable_or_obsolete()

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
