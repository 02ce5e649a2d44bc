"""A real Celery worker process on the Redis broker, for the tests of the Celery path.

Eager mode would hide what matters here (serialisation, commit-then-enqueue, retries,
redelivery), so the worker is a separate process on the test database and a real broker.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import kombu.pools
import pytest
import redis
from django.conf import settings
from django.db import connection

from devtools.ports import free_port
from gatehouse.celery import worker_command
from tests.conftest import require

BASE_DIR = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(log: Path, *, beat: bool = False, **env: str) -> subprocess.Popen:
    """A ``celery worker`` (2 processes) on the test database, in its own process group, so
    a test can kill it whole; ``log`` is its own file. With ``beat`` it also runs the
    periodic tasks, as ``make run``'s worker does."""
    log_file = log.open("w")
    process = subprocess.Popen(
        [
            *worker_command(
                queue=settings.CELERY_TASK_DEFAULT_QUEUE,
                beat_schedule=log.with_suffix(".schedule") if beat else None,
            ),
            *("--without-heartbeat", "--without-gossip", "--without-mingle"),
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


class PrivateRedis:
    """A redis-server of the test's own on a free loopback port, which the test may kill and
    start again (the machine's Redis is shared). Like the machine's, it keeps nothing on disk,
    so a restart loses every message it held."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = (self.directory / "redis.log").open("a")
        self.process = subprocess.Popen(
            [
                "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start: {self.directory / 'redis.log'}")
                time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)


@pytest.fixture
def private_redis(tmp_path):
    """A private Redis, and this process's Celery app sending to it while the test runs."""
    require(shutil.which("redis-server") is not None, "redis-server")
    from gatehouse.celery import app

    server = PrivateRedis(tmp_path)
    server.start()
    previous = app.conf.broker_url
    _send_to(app, server.url)
    yield server
    _send_to(app, previous)
    server.kill()


def _send_to(app, url: str) -> None:
    """Point ``app`` at another broker: kombu keeps connection and producer pools per
    broker, and Celery caches its own pointers to them."""
    kombu.pools.reset()
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None
