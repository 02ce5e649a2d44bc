"""What ``accounts`` tells Prometheus (``GET /metrics``, ``gatehouse.metrics``): logins that
failed and the lockouts they caused, counted in ``services`` where the lockout is decided."""

from prometheus_client import Counter

LOGIN_FAILURES = Counter(
    "gatehouse_login_failures",
    "Wrong passwords (console, API and Notary token logins, a wrong current password when "
    "changing one's own).",
)
LOGIN_LOCKOUTS = Counter(
    "gatehouse_login_lockouts",
    "Lockouts a failed login caused, by scope: user (an account) or address.",
    ["scope"],
)
for _scope in ("user", "address"):  # at 0 from the start, so increase() sees the first
    LOGIN_LOCKOUTS.labels(scope=_scope)
