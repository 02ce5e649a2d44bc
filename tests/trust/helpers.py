"""Shared steps of the trust tests: people with signing keys, jobs run to the end, and what
the real notary CLI says a repository delegates."""

import re
import time
from collections.abc import Callable

from accounts.models import User
from bundles.models import PublicKey
from bundles.services import bundle_issue
from tests.bundles.helpers import open_bundle
from trust.models import Job
from trust.services import jobs
from trust.services.jobs import JobRunner, RunResult, job_run


def signing_key_of(user: User) -> tuple[PublicKey, bytes]:
    """Issue ``user`` a signing key; return it and its bundle's ``key.pem``."""
    bundle = bundle_issue(user=user, signing=True)
    return bundle.key, open_bundle(bundle.archive)["key.pem"]


def run_jobs() -> list[Job]:
    """Run every unfinished job in this process, as a worker would, until none is left."""
    for _ in range(20):
        pending = list(Job.objects.exclude(status__in=Job.FINISHED).order_by("id"))
        if not pending:
            break
        for job in pending:
            job_run(job_id=job.pk)
    return list(Job.objects.order_by("id"))


def runner_replace(monkeypatch, kind: str, run: Callable[[Job], RunResult]) -> None:
    """For this test, jobs of ``kind`` do ``run`` instead of their Notary work."""

    class Replacement(JobRunner):
        service = "The replacement"

        def run(self, job: Job) -> RunResult:
            return run(job)

    Replacement.kind = kind
    monkeypatch.setitem(jobs.RUNNERS, kind, Replacement())


def cli_delegations(notary_cli, gun: str) -> dict[str, set[str]]:
    """Role -> canonical key IDs, from ``notary delegation list`` with a fresh trust dir.

    The CLI prints a role's further keys on the lines below it, with the role column empty.
    """
    output = notary_cli("delegation", "list", gun, fresh=True).stdout
    roles: dict[str, set[str]] = {}
    role = None
    for line in output.splitlines():
        words = line.split()
        if words and words[0].startswith("targets/"):
            role = words[0]
            roles[role] = set()
        if role is not None:
            roles[role].update(re.findall(r"\b[0-9a-f]{64}\b", line))
    return roles


def wait_until(predicate: Callable[[], bool], *, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def settled() -> bool:
    """No job is left to run."""
    return not Job.objects.exclude(status__in=Job.FINISHED).exists()
