"""``GET /metrics``: Prometheus' text format, written by prometheus_client.

Each app defines what it counts in its own ``metrics.py``; this view gathers them with the
jobs and the directory's syncs read from the database (``trust.metrics.JobsCollector``,
``directory.metrics.DirectoryCollector``). Under gunicorn's several
workers, and with the Celery worker on the same host, set ``PROMETHEUS_MULTIPROC_DIR``: every
process then writes its counts there and a scrape of any one sums them (docs/deployment.md,
"Metrics").

Who may read it: whoever sends ``Authorization: Bearer <GATEHOUSE_METRICS_TOKEN>`` (compared
in constant time), and signed-in admins. Without the setting, it is a 404 to anyone else;
with it, a 401. Nothing in it names a user, a key or a secret.
"""

import hashlib
import hmac
import os
from collections.abc import Iterable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

# Imported so that their metrics are registered, and shown at zero, before their first use.
from accounts import metrics as accounts_metrics  # noqa: F401
from directory.metrics import DirectoryCollector
from policy import metrics as policy_metrics  # noqa: F401
from trust.metrics import JobsCollector


class Scrape:
    """What one scrape reads: the processes' counts, then the database's."""

    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def process_metrics() -> Collector:
    """This process's metrics; in multiprocess mode, every process's, summed."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def has_metrics_token(request: HttpRequest) -> bool:
    """Whether the request carries the metrics token; compared as SHA-256 digests, so in
    constant time whatever its length or characters."""
    expected = settings.GATEHOUSE_METRICS_TOKEN
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(_digest(given.strip()), _digest(expected))


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not has_metrics_token(request) and not (
        request.user.is_authenticated and request.user.is_admin
    ):
        if not settings.GATEHOUSE_METRICS_TOKEN:
            raise Http404("No such page.")
        response = HttpResponse(
            "The metrics token is required.\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body = generate_latest(Scrape(process_metrics(), JobsCollector(), DirectoryCollector()))
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
