"""Load with real processes: ``benchmarks/load.py`` runs 50 API clients for 60 seconds
(logins, bundle downloads, membership changes, evaluations) against gunicorn, a Celery worker
with beat on Redis and a real notary stack; no request may fail and nothing may be lost."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import require
from tests.trust.conftest import database_url

BASE_DIR = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.notary


def test_fifty_clients_for_a_minute(tmp_path, capsys):
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")
    require(settings.CELERY_BROKER_URL.startswith("redis://"), "Redis (CELERY_BROKER_URL)")
    require(shutil.which("notary-server") is not None, "notary-server (Debian package notary)")
    report = tmp_path / "load.json"

    run = subprocess.run(
        [
            *(sys.executable, "benchmarks/load.py", "--clients", "50", "--seconds", "60"),
            *("--json", str(report)),
        ],
        cwd=BASE_DIR,
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "BENCH_POSTGRES_URL": database_url().rsplit("/", 1)[0],  # the server, not the db
            "BENCH_REDIS_URL": settings.CELERY_BROKER_URL,
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    with capsys.disabled():
        print("\n" + run.stdout)

    result = json.loads(report.read_text())
    assert result["errors"] == 0, result["first_errors"]
    assert result["throttled_logins"] == []
    assert set(result["operations"]) == {"login", "logout", "bundle", "membership", "evaluate"}
    assert all(figures["count"] >= 10 for figures in result["operations"].values())
    assert result["jobs"] > 0
    assert result["jobs_unfinished"] == 0
    assert result["jobs_failed"] == 0
    assert result["drifted"] == []
