"""What ``trust`` tells Prometheus (``GET /metrics``, ``gatehouse.metrics``).

Notary requests and drift found are counted by the process that does them (a web process for
evaluations, the Celery worker for jobs and drift checks); they add up across processes in
prometheus_client's multiprocess mode (docs/deployment.md, "Metrics"). Jobs are the
database's: ``JobsCollector`` reads them when scraped, so every process answers the same.
"""

from collections.abc import Iterator

from django.db.models import Count, F, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from trust.models import Job, Repository
from trust.notary.errors import (
    InvalidMetadata,
    NotaryError,
    NotaryRejected,
    NotaryUnavailable,
    NotFound,
)

NOTARY_REQUEST_SECONDS = Histogram(
    "gatehouse_notary_request_duration_seconds",
    "Time Notary took to answer a request (a token fetch on a 401 included), by method.",
    ["method"],
)
NOTARY_REQUEST_ERRORS = Counter(
    "gatehouse_notary_request_errors",
    "Notary requests that failed, by kind: unavailable (no answer or 5xx, retried), "
    "not_found, rejected (another 4xx), invalid (an answer that makes no sense), error.",
    ["error"],
)
NOTARY_ERROR_KINDS = ("unavailable", "not_found", "rejected", "invalid", "error")
for _kind in NOTARY_ERROR_KINDS:  # at 0 from the start, so increase() sees the first
    NOTARY_REQUEST_ERRORS.labels(error=_kind)
DRIFT_FOUND = Counter(
    "gatehouse_drift_found",
    "Drift checks that found a repository's delegations on Notary not as they should be.",
)


def _error_kind(error: NotaryError) -> str:
    if isinstance(error, NotaryUnavailable):
        return "unavailable"
    if isinstance(error, NotaryRejected):
        return "not_found" if isinstance(error, NotFound) else "rejected"
    if isinstance(error, InvalidMetadata):
        return "invalid"
    return "error"


def notary_request_observed(method: str, seconds: float, error: NotaryError | None) -> None:
    """The observer of the process's Notary transport (``trust.notary_access``)."""
    NOTARY_REQUEST_SECONDS.labels(method=method).observe(seconds)
    if error is not None:
        NOTARY_REQUEST_ERRORS.labels(error=_error_kind(error)).inc()


class JobsCollector:
    """Jobs by kind and status, the oldest queued job's wait, retries, and repositories with
    drift, read from the database at each scrape in two aggregate queries.

    Jobs are run by the Celery worker, so a web process's own counters would miss them; the
    database is the record every process shares. Retries are each job's attempts beyond its
    first (a transient failure retried, or a lost job run again), summed over the jobs kept.
    """

    def collect(self) -> Iterator[Metric]:
        rows = (
            Job.objects.order_by()
            .values("kind", "status")
            .annotate(
                jobs=Count("id"),
                retries=Sum(F("attempts") - 1, filter=Q(attempts__gt=1)),
                oldest=Min(
                    Coalesce("enqueued_at", "created_at"), filter=Q(status=Job.Status.QUEUED)
                ),
            )
        )
        counts = {(kind, status): 0 for kind in Job.Kind.values for status in Job.Status.values}
        retries = dict.fromkeys(Job.Kind.values, 0)
        oldest = None
        for row in rows:
            counts[row["kind"], row["status"]] = row["jobs"]
            retries[row["kind"]] = retries.get(row["kind"], 0) + (row["retries"] or 0)
            if row["oldest"] is not None and (oldest is None or row["oldest"] < oldest):
                oldest = row["oldest"]

        jobs = GaugeMetricFamily(
            "gatehouse_jobs", "Jobs by kind and status.", labels=["kind", "status"]
        )
        for (kind, status), count in sorted(counts.items()):
            jobs.add_metric([kind, status], count)
        yield jobs
        age = (timezone.now() - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "gatehouse_job_queue_age_seconds",
            "How long the oldest queued job has waited since it was sent (0: none queued).",
            value=max(age, 0.0),
        )
        retried = CounterMetricFamily(
            "gatehouse_job_retries",
            "Attempts of jobs beyond their first, by kind.",
            labels=["kind"],
        )
        for kind, count in sorted(retries.items()):
            retried.add_metric([kind], count)
        yield retried
        yield GaugeMetricFamily(
            "gatehouse_repositories_drifted",
            "Repositories whose last drift check found drift not yet synced away.",
            value=Repository.objects.filter(drift__isnull=False).count(),
        )
