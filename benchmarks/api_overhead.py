"""What each API request costs beside ``GET /healthz`` (the whole middleware stack and nothing
else), measured in one run against one seeded database: in-process, over HTTP under the
production server, and where the time of the worst five goes.

The seed: 50 users (an admin, ``jenkins``, 48 more, each with a signing key; ``user-00`` has
50 keys), 10 teams with members (``ci`` signs), 5 more teams with 10 directory group mappings
each, 50 repositories on a real notary stack (three of them signed by ``jenkins`` through the
``notary`` CLI, as ``benchmarks/admission.py`` does), their 50 jobs, a policy of four rules
enforcing ``ci`` changed 50 times, 50 root key pins, 50 directory sync runs, 50 admission
decisions and the audit entries all of that wrote.

The endpoints: two floors of the API beside ``/healthz`` (``floor_urls.py``: DRF's view
answering a fixed body, without authentication and with the bearer token's lookup, so the
table shows what any authenticated request costs before it reads its own rows); every route
under ``/api/v1/`` that answers ``GET`` (found through DRF's
endpoint enumerator, the one the schema is made from), each asked by the admin with a bearer
token, ids and names taken from the seed; then the hot paths: ``POST
/api/v1/policy/evaluate/``, ``POST /api/v1/admission/validate/`` and ``.../mutate/`` with a
Deployment of three images (as the ``kube-apiserver`` service account), ``POST
/api/v1/bundles/``, and ``GET /auth/token`` with Basic whose password is an API token.

1. In-process (``django.test.Client``): per endpoint, warm-up requests, then N requests;
   median and p99 in ms, the SQL statements of one request and the median's ratio to
   ``/healthz``'s. Under gunicorn every request that touches the database also pays
   Django's connection health check (a ``SELECT 1`` before its first query); the test
   client skips it, so neither the figures nor the count include it.
2. cProfile of the five endpoints with the worst in-process ratio (the schema and its
   viewer, which have no goal, left out): each layer's share of the time (our code, DRF,
   the ORM, the DB driver with its waits, the rest of Django, the rest), then our code and
   those layers' top 15 functions by cumulative time.
3. Over HTTP: gunicorn 2 workers x 4 threads with production settings (``common.gunicorn``),
   wrk with 16 connections, per endpoint a 2 s warm-up then three runs of 2 s in which both
   workers held connections (a run's fresh connections often all go to one worker, which
   then serves them on one core: such runs are repeated, see ``measure_http``); the median
   run's requests/s, p50 and p99, its requests/s as a share of ``/healthz``'s, and issue
   19's goal with PASS/MISS.

Hot paths run after the reads in each phase; what they write (admission decisions, keys,
audit entries) is there for the phases after.

Needs PostgreSQL (``BENCH_POSTGRES_URL``), the ``notary`` package and ``wrk``. Run:
``.venv/bin/python benchmarks/api_overhead.py [--quick] [--only PATTERN]``; ``--quick`` is a
smoke run (fewer requests, runs of 1 s), ``--only`` measures the endpoints whose label
matches the regular expression (``/healthz`` always, as the floor), ``--in-process`` skips
the profiles and the HTTP runs.
"""

import argparse
import base64
import datetime as dt
import io
import json
import os
import pstats
import re
import statistics
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    BASE_DIR,
    REVIEW_CONTAINERS,
    configure_environment,
    gunicorn,
    profile_stats,
    review_body,
    run_jobs,
    scratch_database,
    sign_tags,
    wrk,
)
from django.http.response import HttpResponseBase

PASSWORD = "a-benchmark-passphrase"  # noqa: S105
REGISTRY = "bench.gatehouse"
SIGNED = [f"{REGISTRY}/shop/{name}" for name in REVIEW_CONTAINERS]
IMAGE = f"{SIGNED[0]}:1.0"
LISTED = 50  # of each thing a list shows
OTHER_USERS = LISTED - 2  # besides the admin and jenkins
TEAMS = ["ci", *(f"team-{number:02d}" for number in range(1, 10))]
MAPPED_TEAMS = 5
CONNECTIONS = 16
WORKERS = 2
WRK_RUNS = 3
MAX_LOPSIDED = 6
WORST = 5
TOP = 15  # functions by cumulative time
TOP_OWN = 8  # by their own time
# Routes that answer GET but are documents about the API, not reads of its objects.
UNGOALED_ROUTES = {"/api/v1/schema/", "/api/v1/docs/"}
OUR_CODE = re.escape(str(BASE_DIR)) + r"/(?!\.venv/|benchmarks/)"
PROFILED_LAYERS = OUR_CODE + r"|/rest_framework/|/django/db/|/psycopg/"


@dataclass(frozen=True)
class Goal:
    """One of issue 19's goals, and the test of whether a run kept it."""

    text: str
    kept: Callable[[dict[str, float], dict[str, float]], bool]  # (its HTTP figures, the floor's)


SHARE_40 = Goal("≥ 40 % of healthz", lambda http, floor: http["rps"] >= 0.40 * floor["rps"])
GOALS = {
    "read": SHARE_40,
    "evaluate": SHARE_40,
    "list": Goal("≥ 25 % of healthz", lambda http, floor: http["rps"] >= 0.25 * floor["rps"]),
    "validate": Goal("p99 < 30 ms", lambda http, floor: http["p99_ms"] < 30.0),
    "bundles": Goal("≥ 500/s", lambda http, floor: http["rps"] >= 500.0),
    "token": Goal("≥ 1,000/s", lambda http, floor: http["rps"] >= 1000.0),
}


@dataclass
class Endpoint:
    """One request to measure, and what was measured of it."""

    label: str
    method: str
    path: str
    kind: str  # floor, drf-floor, read, list, evaluate, validate, mutate, bundles, token, other
    authorization: str = ""
    body: str = ""
    rows: int | None = None
    in_process: dict[str, float] = field(default_factory=dict)
    http: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """How many requests and for how long: a full run's, or a smoke run's."""

    warmup: int
    requests: int
    seconds_each: float  # an endpoint's in-process measurement stops after this, or N
    profiled: int
    wrk_seconds: int  # per run; WRK_RUNS of them
    wrk_warmup: int


FULL = Settings(
    warmup=20, requests=200, seconds_each=10.0, profiled=300, wrk_seconds=2, wrk_warmup=2
)
QUICK = Settings(warmup=3, requests=20, seconds_each=2.0, profiled=30, wrk_seconds=1, wrk_warmup=1)


def seed(notary_url: str, trust_dir: Path) -> dict[str, str]:
    """Everything the endpoints list and read; returns the values their paths and headers
    need."""
    from django.utils import timezone

    from accounts.services import api_token_create, team_create, team_member_add, user_create
    from audit.models import AuditEntry
    from bundles.models import PublicKey
    from bundles.services import bundle_issue
    from directory.models import SyncRun
    from directory.plan import Change
    from directory.services import group_mapping_create
    from policy.selectors import policy_get
    from policy.services import admission_review, admission_service_account, policy_apply
    from trust.models import Job, Repository, RootKeyPin
    from trust.pins import root_key_pin_create
    from trust.services.repositories import repositories_create_bulk, repository_create

    admin = user_create(actor=None, username="admin", password=PASSWORD, is_admin=True)
    jenkins = user_create(actor=None, username="jenkins", password=PASSWORD)
    teams = [team_create(actor=admin, name=name) for name in TEAMS]
    team_member_add(actor=admin, team=teams[0], user=jenkins)
    with zipfile.ZipFile(io.BytesIO(bundle_issue(user=jenkins, signing=True).archive)) as archive:
        key_pem = archive.read("key.pem")
    users = []
    for number in range(OTHER_USERS):
        user = user_create(actor=None, username=f"user-{number:02d}", password=PASSWORD)
        for team in (teams[number % 10], teams[(number + 3) % 10]):
            team_member_add(actor=admin, team=team, user=user)
        bundle_issue(user=user, signing=True)
        users.append(user)
    for _ in range(LISTED - 1):
        bundle_issue(user=users[0])
    for number in range(MAPPED_TEAMS):
        team = team_create(actor=admin, name=f"directory-{number}")
        for group in range(LISTED // MAPPED_TEAMS):
            group_mapping_create(
                actor=admin,
                source="ldap",
                group=f"cn=group-{number}-{group},ou=groups,dc=example,dc=com",
                team=team,
            )
    for number in range(LISTED):
        root_key_pin_create(
            actor=admin, pattern=f"vendor-{number:02d}.example.com/*", key_ids=[f"{number:064x}"]
        )
    now = timezone.now()
    SyncRun.objects.bulk_create(
        SyncRun(
            source="ldap",
            trigger="schedule",
            started_at=now - dt.timedelta(hours=hour, seconds=1),
            finished_at=now - dt.timedelta(hours=hour),
            outcome="applied",
            people=1000,
            changes=[
                Change("join", f"user-{hour % OTHER_USERS:02d}", "directory-0").as_dict(),
                Change("leave", f"user-{(hour + 1) % OTHER_USERS:02d}", "directory-1").as_dict(),
            ],
        )
        for hour in range(LISTED)
    )
    for gun in SIGNED:
        repository_create(actor=admin, gun=gun, signer_team_names=["ci"])
    repositories_create_bulk(
        actor=admin,
        guns=[f"{REGISTRY}/team-{n % 10:02d}/app-{n:02d}" for n in range(LISTED - len(SIGNED))],
        signer_team_names=TEAMS[1:3],
    )
    run_jobs()
    sign_tags(
        notary_url,
        trust_dir,
        key_pem,
        {gun: f"{number + 1:02x}" * 32 for number, gun in enumerate(SIGNED)},
        "targets/jenkins",
    )
    for version in range(LISTED):
        policy_apply(actor=admin, document=policy_document(version))
    body = review_body(SIGNED)
    for _ in range(LISTED):
        answer = admission_review(body=body, mutate=False)["response"]
        assert answer["allowed"] is True, answer

    _, kube_token, _, _ = admission_service_account(username="kube-apiserver")
    jenkins_token, _ = api_token_create(user=jenkins)
    return {
        "admin": api_token_create(user=admin)[0],
        "kube": kube_token,
        "jenkins": jenkins_token,
        "bundler": api_token_create(user=users[-1])[0],
        "user": users[0].username,
        "key": PublicKey.objects.filter(user=users[0]).order_by("created_at").first().pk,
        "team": TEAMS[0],
        "repository": str(Repository.objects.get(gun=SIGNED[0]).pk),
        "job": str(Job.objects.order_by("id").first().pk),
        "audit": str(AuditEntry.objects.order_by("id").first().pk),
        "pin": str(RootKeyPin.objects.order_by("id").first().pk),
        "version": str(policy_get().version),
        "counts": (
            f"{len(users) + 2} people, {Repository.objects.count()} repositories, "
            f"{Job.objects.count()} jobs, {AuditEntry.objects.count()} audit entries"
        ),
    }


def policy_document(version: int) -> dict:
    """A policy of four rules enforcing ``ci`` by default; ``version`` moves one rule."""
    return {
        "enabled": True,
        "default": {"mode": "enforced", "require": {"teams": [{"team": "ci"}]}},
        "rules": [
            {"name": "system", "namespaces": ["kube-*"], "mode": "off"},
            {
                "name": "public",
                "images": ["docker.io/library/*"],
                "mode": "permissive",
                "require": {"teams": [{"team": "ci"}]},
            },
            {
                "name": "team-01-images",
                "images": [f"{REGISTRY}/team-01/*"],
                "require": {"teams": [{"team": "team-01"}, {"team": "ci"}], "match": "any"},
            },
            {"name": "mirrors", "images": [f"mirror.example.com/v{version}/**"], "mode": "off"},
        ],
    }


def get_routes() -> list[str]:
    """Every route under ``/api/v1/`` that answers GET, as the schema names it."""
    from rest_framework.schemas.generators import EndpointEnumerator

    return [
        path
        for path, method, _ in EndpointEnumerator().get_api_endpoints()
        if method == "GET" and path.startswith("/api/v1/")
    ]


def endpoints_of(values: dict[str, str]) -> list[Endpoint]:
    """The floor, each GET route with the seed's ids and names, then the hot paths."""
    concrete = {
        "/api/v1/users/{username}/": f"/api/v1/users/{values['user']}/",
        "/api/v1/users/{username}/keys/": f"/api/v1/users/{values['user']}/keys/",
        "/api/v1/users/{username}/keys/{pk}/": (
            f"/api/v1/users/{values['user']}/keys/{values['key']}/"
        ),
        "/api/v1/teams/{name}/": f"/api/v1/teams/{values['team']}/",
        "/api/v1/teams/{name}/members/": f"/api/v1/teams/{values['team']}/members/",
        "/api/v1/repositories/{pk}/": f"/api/v1/repositories/{values['repository']}/",
        "/api/v1/jobs/{pk}/": f"/api/v1/jobs/{values['job']}/",
        "/api/v1/audit/{pk}/": f"/api/v1/audit/{values['audit']}/",
        "/api/v1/trust/pins/{pk}/": f"/api/v1/trust/pins/{values['pin']}/",
        "/api/v1/policy/versions/{number}/": f"/api/v1/policy/versions/{values['version']}/",
        "/api/v1/policy/evaluate/": f"/api/v1/policy/evaluate/?image={IMAGE}",
        "/api/v1/admission/webhook-configuration/": (
            "/api/v1/admission/webhook-configuration/?mode=validate"
            "&url=https://gatehouse.example.com"
        ),
    }
    admin = f"Bearer {values['admin']}"
    endpoints = [
        Endpoint("GET /healthz", "GET", "/healthz", "floor"),
        Endpoint("GET floor: DRF, no authentication", "GET", "/floor/drf", "drf-floor"),
        Endpoint("GET floor: DRF, the bearer token", "GET", "/floor/drf-token", "drf-floor", admin),
    ]
    for route in get_routes():
        path = concrete.get(route, route)
        if "{" in path:
            raise SystemExit(f"{route}: the seed gives no value for its parameters")
        kind = "other" if route in UNGOALED_ROUTES else "read"
        if route == "/api/v1/policy/evaluate/":
            kind = "evaluate"
        endpoints.append(Endpoint(f"GET {route}", "GET", path, kind, admin))
    review = review_body(SIGNED)
    kube = f"Bearer {values['kube']}"
    basic = base64.b64encode(f"jenkins:{values['jenkins']}".encode()).decode()
    scope = f"repository:{SIGNED[0]}:push,pull"
    endpoints += [
        Endpoint(
            "POST /api/v1/policy/evaluate/", "POST", "/api/v1/policy/evaluate/", "evaluate",
            admin, f'{{"image": "{IMAGE}"}}',
        ),
        Endpoint(
            "POST /api/v1/admission/validate/ (3 images)", "POST", "/api/v1/admission/validate/",
            "validate", kube, review,
        ),
        Endpoint(
            "POST /api/v1/admission/mutate/ (3 images)", "POST", "/api/v1/admission/mutate/",
            "mutate", kube, review,
        ),
        Endpoint(
            "POST /api/v1/bundles/", "POST", "/api/v1/bundles/", "bundles",
            f"Bearer {values['bundler']}", "{}",
        ),
        Endpoint(
            "GET /auth/token (Basic, an API token)", "GET",
            f"/auth/token?service=notary-server&scope={scope}&account=jenkins", "token",
            f"Basic {basic}",
        ),
    ]  # fmt: skip
    return endpoints


def requester(endpoint: Endpoint) -> Callable[[], HttpResponseBase]:
    """A function that sends ``endpoint``'s request in-process and checks it succeeded."""
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    headers = {"HTTP_AUTHORIZATION": endpoint.authorization} if endpoint.authorization else {}

    def send() -> HttpResponseBase:
        response = client.generic(
            endpoint.method,
            endpoint.path,
            endpoint.body,
            content_type="application/json",
            **headers,
        )
        if response.status_code != 200:
            raise SystemExit(f"{endpoint.label}: {response.status_code} {response.content[:300]}")
        return response

    return send


def measure_in_process(endpoint: Endpoint, settings: Settings) -> None:
    """Median and p99 of N requests after a warm-up, and the SQL of one request; a list's
    rows are counted, which makes its kind."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    send = requester(endpoint)
    started = time.perf_counter()
    for _ in range(settings.warmup):
        response = send()
        if time.perf_counter() - started > settings.seconds_each / 2:
            break
    if endpoint.kind == "read" and response["Content-Type"] == "application/json":
        data = json.loads(response.content)
        if isinstance(data, dict) and "results" in data:
            endpoint.kind, endpoint.rows = "list", len(data["results"])
    with CaptureQueriesContext(connection) as captured:
        send()
    queries = len(captured)  # read now: it slices the log the next request clears
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < settings.requests and (
        len(times) < 10 or time.perf_counter() - started < settings.seconds_each
    ):
        begin = time.perf_counter()
        send()
        times.append((time.perf_counter() - begin) * 1000)
    times.sort()
    endpoint.in_process = {
        "requests": len(times),
        "median_ms": statistics.median(times),
        "p99_ms": times[min(len(times) - 1, round(len(times) * 0.99))],
        "queries": queries,
    }


def layers(stats: pstats.Stats) -> dict[str, float]:
    """Each layer's share of the profiled time, by the functions' own time; a C function's
    time goes to the layer of the Python code that called it (a socket read from psycopg is
    the driver's, a hash from Django's auth is Django's)."""

    def layer(filename: str) -> str:
        if re.match(OUR_CODE, filename):
            return "our code"
        for name, marker in (
            ("DB driver (incl. waiting for PostgreSQL)", "/psycopg"),
            ("Django ORM", "/django/db/"),
            ("DRF", "/rest_framework/"),
            ("Django, the rest (handlers, middleware, auth, test client)", "/django/"),
        ):
            if marker in filename:
                return name
        return "the rest (stdlib, other packages)"

    spent: dict[str, float] = {}
    for (filename, _, _), (_, _, own, _, callers) in stats.stats.items():
        if filename == "~" and callers:
            for (caller_file, _, _), (_, _, caller_own, _) in callers.items():
                spent[layer(caller_file)] = spent.get(layer(caller_file), 0.0) + caller_own
        else:
            spent[layer(filename)] = spent.get(layer(filename), 0.0) + own
    total = sum(spent.values()) or 1.0
    return {name: value / total for name, value in sorted(spent.items(), key=lambda i: -i[1])}


def hot_functions(stats: pstats.Stats, count: int) -> list[str]:
    """Per request: our code's, DRF's, the ORM's and the driver's functions by cumulative
    time, leaving out those that wrap nearly the whole request (the middleware chain, DRF's
    dispatch); then the functions with the most time of their own, whoever they are."""
    entries = stats.stats  # {(file, line, name): (primitive calls, calls, own, cumulative, …)}
    whole = max(cumulative for (_, _, _, cumulative, _) in entries.values())

    def line(key: tuple[str, int, str], own: float, cumulative: float, calls: int) -> str:
        filename, number, name = key
        where = (
            name
            if filename == "~"
            else f"{filename.replace(str(BASE_DIR) + '/', '')}:{number}({name})"
        )
        return (
            f"  {cumulative * 1000 / count:8.3f} {own * 1000 / count:8.3f} "
            f"{calls / count:7.1f}  {where}"
        )

    by_cumulative: list[tuple[float, float, int, tuple[str, int, str]]] = []
    for entry in sorted(
        (
            (cumulative, own, calls, key)
            for key, (_, calls, own, cumulative, _) in entries.items()
            if re.search(PROFILED_LAYERS, key[0]) and cumulative < 0.9 * whole
        ),
        reverse=True,
    ):
        if by_cumulative and entry[0] >= 0.99 * by_cumulative[-1][0]:
            by_cumulative[-1] = entry  # a wrapper's callee: the innermost of the chain says more
        elif len(by_cumulative) < TOP:
            by_cumulative.append(entry)
        else:
            break
    by_own = sorted(
        ((own, cumulative, calls, key) for key, (_, calls, own, cumulative, _) in entries.items()),
        reverse=True,
    )[:TOP_OWN]
    return [
        f"top {TOP} by cumulative time (our code, DRF, Django ORM, DB driver; of a chain of "
        "calls within 1 % of each other, the innermost), per request:",
        "    cum ms   own ms   calls  function",
        *(line(key, own, cumulative, calls) for cumulative, own, calls, key in by_cumulative),
        f"top {TOP_OWN} by own time, any code, per request:",
        *(line(key, own, cumulative, calls) for own, cumulative, calls, key in by_own),
    ]


def profile_worst(endpoints: list[Endpoint], floor: Endpoint, settings: Settings) -> str:
    """Where the time of the five endpoints with the worst in-process ratio goes."""
    ranked = sorted(
        (e for e in endpoints if e.kind not in {"floor", "drf-floor", "other"}),
        key=lambda e: -e.in_process["median_ms"],
    )[:WORST]
    out = []
    for endpoint in ranked:
        count = max(
            20,
            min(settings.profiled, int(15_000 / endpoint.in_process["median_ms"])),
        )
        send = requester(endpoint)
        started = time.perf_counter()
        stats = profile_stats(send, count)
        each = (time.perf_counter() - started) * 1000 / count
        ratio = endpoint.in_process["median_ms"] / floor.in_process["median_ms"]
        out.append(
            f"\n=== {endpoint.label}: {ratio:.1f}x healthz in-process; {count} requests under "
            f"cProfile, {each:.2f} ms each ===\nshare of the time by layer:"
        )
        out += [f"  {share:6.1%}  {name}" for name, share in layers(stats).items()]
        out += hot_functions(stats, count)
    return "\n".join(out)


def lua(endpoint: Endpoint) -> str:
    """The wrk script that sends ``endpoint``'s request."""
    lines = [f'wrk.method = "{endpoint.method}"', f'wrk.path = "{endpoint.path}"']
    if endpoint.authorization:
        lines.append(f'wrk.headers["Authorization"] = "{endpoint.authorization}"')
    if endpoint.body:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = [==[{endpoint.body}]==]")
    return "\n".join(lines) + "\n"


def workers_serving(port: str, after: float) -> int:
    """How many processes hold the connections to ``port``, ``after`` seconds from now."""
    time.sleep(after)
    listing = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(set(re.findall(r"pid=(\d+)", listing)))


def measure_http(endpoints: list[Endpoint], settings: Settings) -> None:
    """After a warm-up, ``WRK_RUNS`` runs of wrk in which both workers hold connections.

    Each run opens fresh connections, and the kernel hands them to the workers as they come:
    often all to one of them, which then serves them alone on one core at about half the
    rate. Such lopsided runs measure the accept queue, not the request, so they are
    counted and run again (up to ``MAX_LOPSIDED``; if every run is lopsided, those are
    kept). The median run is reported, with the range of the runs' requests/s.
    """
    with gunicorn(workers=WORKERS, threads=4) as url, ThreadPoolExecutor(1) as pool:
        port = url.rsplit(":", 1)[1]
        for endpoint in endpoints:
            script = lua(endpoint)
            wrk(url, script=script, connections=CONNECTIONS, seconds=settings.wrk_warmup)
            balanced, lopsided = [], []
            while len(balanced) < WRK_RUNS and len(lopsided) < MAX_LOPSIDED:
                serving = pool.submit(workers_serving, port, settings.wrk_seconds / 4)
                run = wrk(url, script=script, connections=CONNECTIONS, seconds=settings.wrk_seconds)
                (balanced if serving.result() == WORKERS else lopsided).append(run)
            runs = sorted(balanced or lopsided, key=lambda run: run["rps"])
            endpoint.http = {
                **runs[len(runs) // 2],
                "rps_low": runs[0]["rps"],
                "rps_high": runs[-1]["rps"],
                "errors": sum(run["errors"] for run in balanced + lopsided),
                "lopsided": len(lopsided),
                "all_lopsided": not balanced,
            }


def table(endpoints: list[Endpoint], floor: Endpoint) -> str:
    """The figures as a Markdown table, each endpoint beside the floor."""
    head = (
        "| endpoint | kind | in-process median ms (p99) | SQL | x healthz | HTTP req/s "
        "| % of healthz | p50 / p99 ms | goal | |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [head]
    for endpoint in endpoints:
        local, http = endpoint.in_process, endpoint.http
        kind = f"list of {endpoint.rows}" if endpoint.kind == "list" else endpoint.kind
        goal = GOALS.get(endpoint.kind)
        verdict = ("PASS" if goal.kept(http, floor.http) else "MISS") if goal and http else ""
        errors = f" ({http['errors']:.0f} non-2xx)" if http.get("errors") else ""
        if http.get("all_lopsided"):
            errors += " (one worker)"
        rows.append(
            f"| `{endpoint.label}` | {kind} "
            f"| {local['median_ms']:.2f} ({local['p99_ms']:.2f}) | {local['queries']} "
            f"| {local['median_ms'] / floor.in_process['median_ms']:.1f} "
            + (
                f"| {http['rps']:,.0f} ({http['rps_low']:,.0f}-{http['rps_high']:,.0f}){errors} "
                f"| {http['rps'] / floor.http['rps']:.0%} "
                f"| {http['p50_ms']:.1f} / {http['p99_ms']:.1f} "
                if http
                else "| - | - | - "
            )
            + f"| {goal.text if goal else '-'} | {verdict} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer requests")
    parser.add_argument("--only", help="measure only endpoints whose label matches this")
    parser.add_argument(
        "--in-process", action="store_true", help="skip the HTTP runs and the profiles"
    )
    options = parser.parse_args()
    settings = QUICK if options.quick else FULL

    from devtools.notary import NotaryStack

    os.environ["CELERY_BROKER_URL"] = "memory://"  # jobs are run here, by hand
    stack = NotaryStack.ephemeral()
    stack.start()
    try:
        with (
            scratch_database(f"gatehouse_bench_api_overhead_{os.getpid()}") as database_url,
            tempfile.TemporaryDirectory() as trust_dir,
        ):
            os.environ["NOTARY_URL"] = stack.url
            os.environ["PYTHONPATH"] = str(Path(__file__).parent)  # the floors, under gunicorn
            configure_environment(database_url, settings_module="floor_settings")
            started = time.perf_counter()
            values = seed(stack.url, Path(trust_dir))
            print(f"seeded in {time.perf_counter() - started:.0f} s: {values['counts']}")
            endpoints = [
                endpoint
                for endpoint in endpoints_of(values)
                if endpoint.kind in {"floor", "drf-floor"}
                or not options.only
                or re.search(options.only, endpoint.label)
            ]
            floor = endpoints[0]
            for endpoint in endpoints:
                measure_in_process(endpoint, settings)
            profiles = "" if options.in_process else profile_worst(endpoints, floor, settings)
            if not options.in_process:
                measure_http(endpoints, settings)
    finally:
        stack.discard()

    lopsided = sum(endpoint.http.get("lopsided", 0) for endpoint in endpoints)
    print(
        f"in-process: django.test.Client, {settings.requests} requests after "
        f"{settings.warmup} (at most {settings.seconds_each:.0f} s each); HTTP: gunicorn 2 "
        f"workers x 4 threads, wrk {CONNECTIONS} connections, {WRK_RUNS} runs of "
        f"{settings.wrk_seconds} s with both workers serving after {settings.wrk_warmup} s of "
        "warm-up, the median run (the range of the runs' requests/s in brackets); runs with "
        f"every connection on one worker, repeated: {lopsided}"
    )
    print(table(endpoints, floor))
    print(profiles)


if __name__ == "__main__":
    main()
