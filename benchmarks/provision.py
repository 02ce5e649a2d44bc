"""Provisioning at scale: repositories per second through the API, jobs and Notary.

In one run, against notary-signer + notary-server on PostgreSQL (docs/deployment.md §7):

* the floor: the native client alone initialising repositories (two delegations each) with
  the same concurrency as the workers, which is what Notary itself allows here;
* (a) 200 repositories bulk-created through ``POST /api/v1/repositories/bulk/`` (gunicorn),
  timed until every one is ``ready``, with 2 Celery worker processes on Redis;
* (b) one member added to the team that signs those 200 repositories, timed until every
  repository holds the new key.

Needs PostgreSQL, Redis and the ``notary`` package. Run:
``.venv/bin/python benchmarks/provision.py [N]`` (default 200).
"""

import json
import os
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import celery_worker, configure_environment, gunicorn, scratch_database

BASE_DIR = Path(__file__).resolve().parent.parent
WORKERS = 2
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def api(url: str, token: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(  # noqa: S310
        url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.loads(response.read() or b"{}")


def wait_for(predicate, *, timeout: float = 600) -> float:
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise SystemExit("timed out")
        time.sleep(0.05)
    return time.perf_counter() - started


def floor_rate(notary_url: str, count: int) -> float:
    """Repositories per second the native client alone reaches with WORKERS in flight."""
    from trust.notary import keys
    from trust.notary.client import NotaryClient
    from trust.notary.http_transport import HttpTransport

    client = NotaryClient(HttpTransport(notary_url, pool_size=WORKERS))
    root = keys.generate_ecdsa_key()
    delegate = keys.plain_signing_key(keys.generate_ecdsa_key()).public

    def one(n: int) -> None:
        gun = f"bench.floor/{os.getpid()}/{n}"
        client.initialize(
            gun,
            root_key=keys.root_signing_key(root, gun),
            targets_key=keys.plain_signing_key(keys.generate_ecdsa_key()),
            delegations={"targets/releases": [delegate], "targets/signer": [delegate]},
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, range(count)))
    return count / (time.perf_counter() - started)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    from devtools.notary import NotaryStack

    stack = NotaryStack.ephemeral()
    stack.start()
    try:
        with scratch_database("gatehouse_bench_provision") as database_url:
            os.environ.update(
                CELERY_BROKER_URL=REDIS,
                NOTARY_URL=stack.url,
                GATEHOUSE_SYNC_DELAY_SECONDS="0.2",
                GATEHOUSE_CELERY_QUEUE=f"bench-{os.getpid()}",
            )
            configure_environment(database_url)
            from accounts.models import Team
            from accounts.services import api_token_create, team_create, user_create
            from bundles.services import bundle_issue
            from trust.models import Repository

            floor = floor_rate(stack.url, 40)

            admin = user_create(
                actor=None, username="bench", password="a-benchmark-passphrase", is_admin=True
            )
            token, _ = api_token_create(user=admin)
            signer = user_create(actor=None, username="signer", password="a-benchmark-passphrase")
            newcomer = user_create(actor=None, username="new1", password="a-benchmark-passphrase")
            bundle_issue(user=signer, signing=True)
            new_key = bundle_issue(user=newcomer, signing=True).key
            team = team_create(actor=admin, name="ci")
            from accounts.services import team_member_add

            team_member_add(actor=admin, team=team, user=signer)

            with celery_worker(WORKERS), gunicorn(workers=2) as url:
                guns = [f"registry.example.com/bench/{n}" for n in range(count)]
                started = time.perf_counter()
                api(
                    url,
                    token,
                    "POST",
                    "/api/v1/repositories/bulk/",
                    {"guns": guns, "signer_teams": ["ci"]},
                )
                wait_for(lambda: Repository.objects.filter(state="ready").count() == count)
                provisioned = time.perf_counter() - started
                failed = Repository.objects.filter(state="failed").count()

                started = time.perf_counter()
                api(url, token, "PUT", "/api/v1/teams/ci/members/new1/")

                def in_step() -> bool:
                    done = 0
                    for delegations in Repository.objects.values_list("delegations", flat=True):
                        own = [d for d in delegations if d["role"] == "targets/new1"]
                        done += bool(own and new_key.tuf_key_id in own[0]["key_ids"])
                    return done == count

                wait_for(in_step)
                fan_out = time.perf_counter() - started
            assert Team.objects.get(name="ci").members.count() == 2
    finally:
        stack.discard()

    rate = count / provisioned
    print(f"floor: native client alone, {WORKERS} in flight:  {floor:6.1f} repositories/s")
    print(
        f"(a) bulk-create {count} via the API until ready: {provisioned:6.1f} s, "
        f"{rate:6.1f} repositories/s ({rate / floor:.0%} of the floor; goal >= 80%), "
        f"{failed} failed"
    )
    print(
        f"(b) one member added, {count} repositories in step: {fan_out:6.2f} s "
        f"({count / fan_out:.0f} repositories/s; goal < 5 s)"
    )


if __name__ == "__main__":
    main()
