"""Content-trust evaluations per second: the pure rule, the service, and HTTP under gunicorn.

A Gatehouse-managed repository on a real notary stack, ``jenkins`` (team ``ci``) signing tag
``1.0`` into ``targets/releases`` and ``targets/ci`` with his bundle's key through the real
``notary`` CLI, the policy enforcing ``ci``. Then, with a warm trust cache (revalidated every
``GATEHOUSE_TRUST_REVALIDATE_SECONDS``, 3 s by default, as in production):

* the floor: ``policy.evaluation.evaluate`` alone on inputs read beforehand;
* ``policy.services.image_evaluate`` in a loop, its SQL, and each of its reads on its own
  (the policy and key owners come from ``policy.inputs``, cached until the generation moves,
  and the trust data from ``trust.trust_data``'s cache);
* the whole API request in-process (``django.test.Client``), then
  ``POST /api/v1/policy/evaluate/`` under gunicorn with wrk (16 connections for 10 s, then
  2 connections for 5 s), beside an authenticated GET of the policy for scale.

``--profile`` adds where the API request's time goes (cProfile).

Needs PostgreSQL (``BENCH_POSTGRES_URL``, default postgres://postgres@127.0.0.1:5432), notary
(Debian package) and ``wrk``. Run: ``.venv/bin/python benchmarks/evaluate.py [--profile]``.
"""

import io
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from common import (
    configure_environment,
    gunicorn,
    profile_stats,
    rate,
    run_jobs,
    scratch_database,
    sign_tags,
    wrk,
)

GUN = "registry.example.com/ci/app"
IMAGE = f"{GUN}:1.0"
DIGEST = "a1" * 32
GOAL_RATE = 2000.0  # evaluations/s in-process
GOAL_P99_MS = 20.0  # over HTTP
# What the profile shows by cumulative time: our code and the layers above it.
PROFILED = (
    r"/(policy|trust|accounts|gatehouse)/\w+\.py|rest_framework/(views|authentication)"
    r"|django/(core/handlers/base|db/models/query\.py.*\(__iter__\))"
)


def setup(notary_url: str, directory: Path) -> str:
    """The people, the repository, the signature and the policy; returns an API token."""
    from accounts.services import api_token_create, team_create, team_member_add, user_create
    from bundles.services import bundle_issue
    from policy.services import policy_update
    from trust.services.repositories import repository_create

    admin = user_create(actor=None, username="admin", password="a-benchmark-pw", is_admin=True)
    jenkins = user_create(actor=None, username="jenkins", password="a-benchmark-pw")
    ci = team_create(actor=admin, name="ci")
    team_member_add(actor=admin, team=ci, user=jenkins)
    # Others in the team and with keys, so the identity queries are not trivially empty.
    for number in range(20):
        other = user_create(actor=None, username=f"dev{number}", password="a-benchmark-pw")
        team_member_add(actor=admin, team=ci, user=other)
        bundle_issue(user=other, signing=True)
    bundle = bundle_issue(user=jenkins, signing=True)
    with zipfile.ZipFile(io.BytesIO(bundle.archive)) as archive:
        key_pem = archive.read("key.pem")
    repository_create(actor=admin, gun=GUN, signer_team_names=["ci"])
    run_jobs()
    sign_tags(notary_url, directory, key_pem, {GUN: DIGEST}, "targets/jenkins")
    policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )
    token, _ = api_token_create(user=admin)
    return token


def queries_of_an_evaluation() -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from policy.services import image_evaluate

    with CaptureQueriesContext(connection) as captured:
        image_evaluate(image=IMAGE)
    return [query["sql"] for query in captured]


def round_trip() -> None:
    """The cheapest query: what one PostgreSQL round trip costs, with no ORM."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def profile(step, count: int = 1000) -> str:
    """Where ``step``'s time goes: our functions and the layers above them, by cumulative
    time, then the hottest functions of all by their own time."""
    out = io.StringIO()
    stats = profile_stats(step, count)
    stats.stream = out
    stats.sort_stats("cumulative").print_stats(PROFILED, 25)
    stats.sort_stats("tottime").print_stats(12)
    return out.getvalue()


def main() -> None:
    show_profile = "--profile" in sys.argv
    os.environ["CELERY_BROKER_URL"] = "memory://"  # jobs are run here, by hand
    with scratch_database("gatehouse_bench_evaluate") as database_url:
        configure_environment(database_url)
        from django.conf import settings
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from devtools.notary import NotaryStack
        from policy.evaluation import evaluate, parse_image_reference, trust_data_from_verified
        from policy.inputs import evaluation_context
        from policy.services import image_evaluate
        from trust.trust_data import root_pin, verified_repository

        stack = NotaryStack.ephemeral()
        stack.start()
        try:
            os.environ["NOTARY_URL"] = settings.NOTARY_URL = stack.url
            with tempfile.TemporaryDirectory() as directory:
                token = setup(stack.url, Path(directory))

            result = image_evaluate(image=IMAGE)  # warms the trust cache
            assert result.decision == "allowed", result
            assert result.teams[0].signers[0].username == "jenkins"
            queries = queries_of_an_evaluation()

            reference = parse_image_reference(IMAGE)
            context = evaluation_context()
            trust = trust_data_from_verified(verified_repository(GUN))
            floor = rate(lambda: evaluate(reference, context.policy, trust, context.identities))
            service = rate(lambda: image_evaluate(image=IMAGE))
            parts = {
                "one SQL round trip, no ORM (SELECT 1)": rate(round_trip, 1.0),
                "parse_image_reference": rate(lambda: parse_image_reference(IMAGE), 1.0),
                "inputs.evaluation_context (cached: one query)": rate(evaluation_context, 1.0),
                "trust_data.root_pin (the repository row)": rate(lambda: root_pin(GUN), 1.0),
                "verified_repository (cached, incl. root_pin)": rate(
                    lambda: verified_repository(GUN), 1.0
                ),
                "trust_data_from_verified": rate(
                    lambda: trust_data_from_verified(verified_repository(GUN)), 1.0
                ),
            }
            client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")

            def request() -> None:
                response = client.post(
                    "/api/v1/policy/evaluate/", {"image": IMAGE}, content_type="application/json"
                )
                assert response.status_code == 200, response.content

            with CaptureQueriesContext(connection) as captured:
                request()
            request_queries = len(captured)
            in_process_request = rate(request)
            profiled = profile(request) if show_profile else ""

            body = json.dumps({"image": IMAGE}).replace('"', '\\"')
            script = (
                'wrk.method = "POST"\n'
                f'wrk.headers["Authorization"] = "Bearer {token}"\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.body = "{body}"\n'
            )
            get_script = f'wrk.headers["Authorization"] = "Bearer {token}"\n'
            with gunicorn(workers=2) as url:
                endpoint = f"{url}/api/v1/policy/evaluate/"
                wrk(endpoint, script=script, connections=8, seconds=2)  # warm-up, every worker
                http = wrk(endpoint, script=script, connections=16, seconds=10)
                light = wrk(endpoint, script=script, connections=2, seconds=5)
                baseline = wrk(
                    f"{url}/api/v1/policy/content-trust/",
                    script=get_script,
                    connections=16,
                    seconds=5,
                )
        finally:
            stack.discard()

    print(f"floor: evaluation.evaluate on inputs read beforehand: {floor:9.0f} evaluations/s")
    print(
        f"service image_evaluate, warm cache, 1 thread:       {service:9.0f} evaluations/s "
        f"({service / GOAL_RATE:.0%} of the goal of {GOAL_RATE:.0f}/s; "
        f"{service / floor:.1%} of the floor), {1000 / service:.2f} ms each, "
        f"{len(queries)} SQL queries each"
    )
    for sql in queries:
        print(f"  query: {sql[:150]}")
    for name, value in parts.items():
        print(f"  {name:46s} {value:9.0f}/s  {1000 / value:6.3f} ms")
    print(
        f"the whole API request in-process (django.test.Client, no server): "
        f"{in_process_request:9.0f} requests/s, {1000 / in_process_request:.2f} ms each, "
        f"{request_queries} SQL queries each"
    )
    print(
        f"HTTP POST /api/v1/policy/evaluate/ (gunicorn 2 workers x 4 threads, 16 connections, "
        f"10 s): {http['rps']:.0f} evaluations/s, p50 {http['p50_ms']:.1f} ms, "
        f"p99 {http['p99_ms']:.1f} ms ({http['p99_ms'] / GOAL_P99_MS:.0%} of the "
        f"{GOAL_P99_MS:.0f} ms goal), non-2xx {http['errors']:.0f}"
    )
    print(
        f"the same with 2 connections (little queueing): {light['rps']:.0f} evaluations/s, "
        f"p50 {light['p50_ms']:.1f} ms, p99 {light['p99_ms']:.1f} ms, "
        f"non-2xx {light['errors']:.0f}"
    )
    print(
        f"for scale, an authenticated GET /api/v1/policy/content-trust/ on the same server: "
        f"{baseline['rps']:.0f} requests/s, p50 {baseline['p50_ms']:.1f} ms, "
        f"p99 {baseline['p99_ms']:.1f} ms"
    )
    if profiled:
        print(profiled)


if __name__ == "__main__":
    main()
