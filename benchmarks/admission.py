"""Admission reviews per second: a Deployment with three containers, each image in its own
repository signed by a member of the signing team, the policy enforced.

In one run: the service alone in this process (``policy.services.admission_review``, warm
trust cache), then ``POST /api/v1/admission/validate/`` and ``.../mutate/`` over HTTP
(gunicorn 2 workers x 4 threads, wrk) after a warm-up that fills each worker's trust cache,
and for scale an authenticated GET on the same server. Every review is recorded, as in
production; trust data is revalidated every ``GATEHOUSE_TRUST_REVALIDATE_SECONDS`` (3 s).

Needs PostgreSQL (``BENCH_POSTGRES_URL``), the ``notary`` package (notary-server,
notary-signer and the CLI) and ``wrk``. Run: ``.venv/bin/python benchmarks/admission.py``.
"""

import io
import os
import tempfile
import time
import zipfile
from pathlib import Path

from common import (
    REVIEW_CONTAINERS,
    configure_environment,
    gunicorn,
    review_body,
    run_jobs,
    scratch_database,
    sign_tags,
    wrk,
)

SECONDS = 3.0


def rate(step, seconds: float = SECONDS) -> tuple[float, float, float]:
    """Calls per second of ``step``, and its p50 and p99 in milliseconds."""
    times, started = [], time.perf_counter()
    while time.perf_counter() - started < seconds:
        begin = time.perf_counter()
        step()
        times.append((time.perf_counter() - begin) * 1000)
    times.sort()
    return (
        len(times) / (time.perf_counter() - started),
        times[len(times) // 2],
        times[int(len(times) * 0.99)],
    )


def main() -> None:
    from devtools.notary import NotaryStack

    stack = NotaryStack.ephemeral()
    stack.start()
    trust_dir = Path(tempfile.mkdtemp(prefix="bench-admission-"))
    try:
        with scratch_database("gatehouse_bench_admission") as database_url:
            os.environ.update(NOTARY_URL=stack.url)
            configure_environment(database_url)
            figures = run(stack.url, trust_dir)
    finally:
        stack.discard()
    service, validate, mutate, baseline = figures
    print(
        f"service admission_review in-process, 1 thread: {service[0]:8.0f} reviews/s, "
        f"p50 {service[1]:.1f} ms, p99 {service[2]:.1f} ms"
    )
    for name, result in (("validate", validate), ("mutate", mutate)):
        print(
            f"HTTP POST /api/v1/admission/{name}/ (gunicorn 2 workers x 4 threads, "
            f"16 connections): {result['rps']:8.0f} reviews/s, p50 {result['p50_ms']:.1f} ms, "
            f"p99 {result['p99_ms']:.1f} ms (goal < 30 ms), non-2xx {result['errors']:.0f}"
        )
    print(
        f"for scale, an authenticated GET /api/v1/users/kube-apiserver/ on the same server: "
        f"{baseline['rps']:8.0f} requests/s, p50 {baseline['p50_ms']:.1f} ms, "
        f"p99 {baseline['p99_ms']:.1f} ms"
    )


def run(notary_url: str, trust_dir: Path):
    from accounts.services import team_create, team_member_add, user_create
    from bundles.services import bundle_issue
    from policy.models import AdmissionDecision
    from policy.services import admission_review, admission_service_account, policy_update
    from trust.services.repositories import repository_create

    admin = user_create(
        actor=None, username="bench-admin", password="a-benchmark-passphrase", is_admin=True
    )
    jenkins = user_create(actor=None, username="jenkins", password="a-benchmark-passphrase")
    team = team_create(actor=admin, name="ci")
    team_member_add(actor=admin, team=team, user=jenkins)
    bundle = bundle_issue(user=jenkins, signing=True)
    with zipfile.ZipFile(io.BytesIO(bundle.archive)) as archive:
        key_pem = next(
            archive.read(name) for name in archive.namelist() if name.endswith("key.pem")
        )
    guns = [f"bench.gatehouse/shop/{name}" for name in REVIEW_CONTAINERS]
    for gun in guns:
        repository_create(actor=admin, gun=gun, signer_team_names=["ci"])
    run_jobs()
    sign_tags(
        notary_url,
        trust_dir,
        key_pem,
        {gun: f"{n + 1:02x}" * 32 for n, gun in enumerate(guns)},
        "targets/jenkins",
    )
    policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )
    body = review_body(guns)
    answer = admission_review(body=body, mutate=True)["response"]
    assert answer["allowed"] is True, answer
    assert "patch" in answer, answer
    service = rate(lambda: admission_review(body=body, mutate=False))
    AdmissionDecision.objects.all().delete()

    _, token, _, _ = admission_service_account(username="kube-apiserver")
    script = (
        'wrk.method = "POST"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{body}]==]\n"
    )
    with gunicorn(workers=2) as url:
        for name in ("validate", "mutate"):  # warm-up: each worker reads the trust data once
            wrk(f"{url}/api/v1/admission/{name}/", script=script, connections=8, seconds=2)
        validate, mutate = (
            wrk(f"{url}/api/v1/admission/{name}/", script=script, connections=16, seconds=10)
            for name in ("validate", "mutate")
        )
        baseline = wrk(
            f"{url}/api/v1/users/kube-apiserver/",
            script=f'wrk.headers["Authorization"] = "Bearer {token}"\n',
            connections=16,
            seconds=5,
        )
    denied = AdmissionDecision.objects.filter(allowed=False).count()
    assert denied == 0, f"{denied} reviews were denied"
    return service, validate, mutate, baseline


if __name__ == "__main__":
    main()
