"""What the benchmarks share: a scratch PostgreSQL database, Django set up on it, and a
production-style server (gunicorn) started against it."""

import cProfile
import json
import os
import pstats
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import psycopg

BASE_DIR = Path(__file__).resolve().parent.parent
# ``python benchmarks/<name>.py`` puts only this folder on the path; ``devtools`` is not
# installed, so the repository root goes first.
sys.path.insert(0, str(BASE_DIR))

from devtools.ports import free_port  # noqa: E402

POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")


@contextmanager
def scratch_database(name: str):
    """A fresh PostgreSQL database, dropped afterwards; yields its URL."""
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def configure_environment(database_url: str, settings_module: str = "gatehouse.settings") -> None:
    """Production mode with throwaway secrets, on the scratch database."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE=settings_module,
        GATEHOUSE_DEBUG="0",
        GATEHOUSE_SECRET_KEY=secrets.token_urlsafe(50),
        GATEHOUSE_KEY_ENCRYPTION_KEY=secrets.token_urlsafe(32),
        GATEHOUSE_LOG_LEVEL="WARNING",
        DATABASE_URL=database_url,
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@contextmanager
def gunicorn(workers: int = 2, threads: int = 4):
    """gunicorn (gthread workers, as docs/deployment.md runs it) on a free port with the
    current environment; yields the base URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "gatehouse.wsgi:application",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--keep-alive",
            "30",
        ],
        cwd=BASE_DIR,
        env=os.environ.copy(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/api/v1/schema/", timeout=1)  # noqa: S310
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def wrk(url: str, *, script: str, connections: int, seconds: int) -> dict[str, float]:
    """Run wrk (Debian package ``wrk``) and read requests/s and latency percentiles."""
    script_path = Path("/tmp") / f"gatehouse-bench-{os.getpid()}.lua"  # noqa: S108
    script_path.write_text(script)
    try:
        output = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                str(connections),
                "-d",
                f"{seconds}s",
                "--latency",
                "-s",
                str(script_path),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        script_path.unlink()
    figures = {}
    for line in output.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            figures["rps"] = float(words[1])
        elif len(words) == 2 and words[0] in {"50%", "99%"}:
            figures[f"p{words[0][:-1]}_ms"] = _milliseconds(words[1])
        elif "Non-2xx" in line:
            figures["errors"] = float(words[-1])
    figures.setdefault("errors", 0.0)
    return figures


def _milliseconds(text: str) -> float:
    for suffix, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    raise ValueError(text)


@contextmanager
def celery_worker(concurrency: int = 2, *, beat_schedule: Path | None = None):
    """``celery worker`` with the current environment (its queue is
    ``GATEHOUSE_CELERY_QUEUE``), with beat when given a schedule file; stopped at the end."""
    from gatehouse.celery import worker_command

    process = subprocess.Popen(
        worker_command(
            concurrency=concurrency,
            loglevel="WARNING",
            queue=os.environ["GATEHOUSE_CELERY_QUEUE"],
            beat_schedule=beat_schedule,
            quiet=True,
        ),
        cwd=BASE_DIR,
        env=os.environ.copy(),
    )
    try:
        time.sleep(3)  # connected and consuming
        yield process
    finally:
        process.terminate()
        process.wait(timeout=60)


def sign_tags(
    notary_url: str, trust_dir: Path, key_pem: bytes, digests: dict[str, str], role: str
) -> None:
    """Sign tag ``1.0`` of each repository (GUN -> digest) with ``key_pem`` through the real
    notary CLI, as ``docker push`` does with content trust: into ``targets/releases``, then
    the signer's own ``role``."""
    env = {**os.environ, "NOTARY_DELEGATION_PASSPHRASE": "bench-delegation"}

    def notary(*args: str) -> None:
        subprocess.run(
            ["notary", "-d", str(trust_dir), "-s", notary_url, *args],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )

    (trust_dir / "key.pem").write_bytes(key_pem)
    notary("key", "import", str(trust_dir / "key.pem"))
    for gun, digest in digests.items():
        for signed in ("targets/releases", role):
            notary("addhash", gun, "1.0", "1234", "--sha256", digest, "-r", signed, "-p")


def rate(step, seconds: float = 3.0) -> float:
    """Calls per second of ``step`` over about ``seconds``."""
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        step()
        count += 1
    return count / elapsed


def run_jobs() -> None:
    """Run every unfinished job in this process, as a worker would, until none is left;
    a failed one ends the benchmark."""
    from trust.models import Job
    from trust.services.jobs import job_run

    for _ in range(20):
        pending = list(Job.objects.exclude(status__in=Job.FINISHED).order_by("id"))
        if not pending:
            break
        for job in pending:
            job_run(job_id=job.pk)
    failed = Job.objects.filter(status=Job.Status.FAILED).first()
    if failed is not None:
        raise SystemExit(f"job {failed.pk} ({failed.kind} of {failed.gun}) failed: {failed.error}")


REVIEW_CONTAINERS = ("api", "metrics", "envoy")


def review_body(guns: list[str]) -> str:
    """An ``admission.k8s.io/v1`` review of a Deployment whose containers (one per name in
    ``REVIEW_CONTAINERS``) run tag ``1.0`` of each of ``guns``."""
    return json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "5b1f6c6e-3f1a-4c47-9d4e-0d8e2f1a7b10",
                "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                "name": "checkout",
                "namespace": "shop",
                "operation": "CREATE",
                "userInfo": {"username": "kubernetes-admin"},
                "object": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "checkout", "namespace": "shop"},
                    "spec": {
                        "replicas": 3,
                        "selector": {"matchLabels": {"app": "checkout"}},
                        "template": {
                            "metadata": {"labels": {"app": "checkout"}},
                            "spec": {
                                "containers": [
                                    {"name": name, "image": f"{gun}:1.0"}
                                    for name, gun in zip(REVIEW_CONTAINERS, guns, strict=True)
                                ]
                            },
                        },
                    },
                },
                "oldObject": None,
                "dryRun": False,
            },
        }
    )


def profile_stats(step, count: int) -> pstats.Stats:
    """``step`` called ``count`` times under cProfile."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        step()
    profiler.disable()
    return pstats.Stats(profiler)
