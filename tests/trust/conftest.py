"""A real Celery worker process on the Redis broker, for the tests of the Celery path.

Eager mode would hide what matters here (serialisation, commit-then-enqueue, retries,
redelivery), so the worker is a separate process on the test database and a real broker.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import require

BASE_DIR = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(log: Path, **env: str) -> subprocess.Popen:
    """A ``celery worker`` (2 processes) on the test database, in its own process group, so
    a test can kill it whole; ``log`` is its own file."""
    log_file = log.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "gatehouse",
            "worker",
            "-l",
            "INFO",
            "-c",
            "2",
            "-Q",
            settings.CELERY_TASK_DEFAULT_QUEUE,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=BASE_DIR,
        env={**os.environ, "DATABASE_URL": database_url(), **env},
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log_file.close()
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the Celery worker did not start:\n{log.read_text()}")
        time.sleep(0.2)
    return process


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def worker_env(notary_server) -> dict[str, str]:
    return {
        "NOTARY_URL": notary_server.url,
        "GATEHOUSE_SYNC_DELAY_SECONDS": "0.5",
        "GATEHOUSE_JOB_BACKOFF_SECONDS": "0.5",
        "GATEHOUSE_JOB_BACKOFF_MAX_SECONDS": "2",
        "GATEHOUSE_JOB_MAX_ATTEMPTS": "30",
        "NOTARY_TIMEOUT_SECONDS": "5",
        # Short, so a killed worker's repository is free again within the test (no beat
        # runs here, so nothing else resends a job while its lease holds).
        "GATEHOUSE_JOB_LEASE_SECONDS": "5",
    }


@pytest.fixture
def celery_worker(transactional_db, worker_env, tmp_path):
    """Start ``celery worker`` (2 processes) against the test database and this Notary.

    Yields the process; it is stopped with SIGTERM at the end, and its log is printed, so
    pytest shows it when a test fails.
    """
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")
    require(
        settings.CELERY_BROKER_URL.startswith("redis://"),
        "Redis as the broker (CELERY_BROKER_URL=redis://...)",
    )
    from gatehouse.celery import app

    app.control.purge()
    log = tmp_path / "worker.log"
    process = start_worker(log, **worker_env)
    yield process
    stop_worker(process)
    print(log.read_text()[-5000:])
