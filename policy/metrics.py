"""What ``policy`` tells Prometheus (``GET /metrics``, ``gatehouse.metrics``): evaluations and
admission reviews by decision, and how long they took.

Each is counted once, where it is decided: ``services.image_evaluate`` (the console's check
and the evaluate API) and ``services.admission_review`` (the webhooks; the images a review
evaluates are not counted again as evaluations).
"""

from prometheus_client import Counter, Histogram

# From an evaluation that needs no Notary (under a millisecond) to the webhook timeout (10 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

EVALUATIONS = Counter(
    "gatehouse_evaluations",
    "Image evaluations by decision: allowed, denied, not_enforced (content trust disabled, "
    "or a failing image in permissive mode), notary_unavailable (Notary cannot be reached).",
    ["decision"],
)
EVALUATION_DECISIONS = ("allowed", "denied", "not_enforced", "notary_unavailable")
EVALUATION_SECONDS = Histogram(
    "gatehouse_evaluation_duration_seconds",
    "Time an image evaluation took, Notary's part included.",
    buckets=LATENCY_BUCKETS,
)
ADMISSION_REVIEWS = Counter(
    "gatehouse_admission_reviews",
    "Admission reviews answered, by webhook (validate, mutate), decision (allowed, denied) "
    "and reason: evaluated (images checked), not_checked (an operation, object or "
    "namespace not checked), notary_unavailable (Notary could not be reached: denied when "
    "enforced, failing closed), unrecognised (an object whose images cannot be found).",
    ["webhook", "decision", "reason"],
)
ADMISSION_REASONS = ("evaluated", "not_checked", "notary_unavailable", "unrecognised")
ADMISSION_REVIEW_SECONDS = Histogram(
    "gatehouse_admission_review_duration_seconds",
    "Time an admission review took to answer, its evaluations included.",
    buckets=LATENCY_BUCKETS,
)

# Every series exists from the start, at 0: Prometheus' increase() sees no rise in a series
# whose first sample is already 1, so the first denial after a restart would be missed.
_EVALUATIONS_BY_DECISION = {d: EVALUATIONS.labels(decision=d) for d in EVALUATION_DECISIONS}
for _webhook in ("validate", "mutate"):
    for _decision in ("allowed", "denied"):
        for _reason in ADMISSION_REASONS:
            ADMISSION_REVIEWS.labels(webhook=_webhook, decision=_decision, reason=_reason)


def evaluation_observed(decision: str, seconds: float) -> None:
    """Count an evaluation; its series looked up once, as this runs on every check."""
    counter = _EVALUATIONS_BY_DECISION.get(decision) or EVALUATIONS.labels(decision=decision)
    counter.inc()
    EVALUATION_SECONDS.observe(seconds)
