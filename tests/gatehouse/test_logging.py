"""Request and job ids on every log line; JSON lines when asked for."""

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from gatehouse import health
from gatehouse.logging import ContextFilter, JsonFormatter, job_context
from trust import tasks
from trust.services import jobs

BASE_DIR = Path(__file__).resolve().parents[2]
UUID_HEX = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def caplog_ids(caplog):
    """Records of the request, with the ids that the console handler's filter adds."""
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(ContextFilter())
    return caplog


def test_the_console_handler_adds_the_ids():
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    assert any(isinstance(f, ContextFilter) for f in handler.filters)


@pytest.mark.django_db
def test_every_line_of_a_request_carries_its_request_id(client, caplog_ids, monkeypatch, settings):
    settings.NOTARY_URL = ""  # readyz answers 503, which Django logs after the middleware

    def database_check() -> None:
        logging.getLogger("gatehouse.health").info("checking the database")

    monkeypatch.setitem(health.CHECKS, "database", (database_check, ()))
    response = client.get("/readyz")
    request_id = response["X-Request-ID"]
    assert UUID_HEX.fullmatch(request_id)
    messages = {record.getMessage(): record for record in caplog_ids.records}
    assert "checking the database" in messages
    assert "Service Unavailable: /readyz" in messages
    assert all(record.request_id == request_id for record in caplog_ids.records)
    # Between requests there is no request id.
    logging.getLogger("test").info("after")
    assert caplog_ids.records[-1].request_id is None


def test_a_sane_incoming_request_id_is_kept(client):
    response = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.01_x"})
    assert response["X-Request-ID"] == "lb-7f3a.01_x"


@pytest.mark.parametrize(
    "incoming",
    ["a" * 65, "abc\ninjected: yes", "abc def", "x\r\nSet-Cookie: a=b", "", "é"],
)
def test_a_malicious_or_malformed_request_id_is_replaced(client, incoming):
    response = client.get("/healthz", headers={"X-Request-ID": incoming})
    assert UUID_HEX.fullmatch(response["X-Request-ID"])


def test_each_request_gets_its_own_id(client):
    assert client.get("/healthz")["X-Request-ID"] != client.get("/healthz")["X-Request-ID"]


def test_a_job_logs_with_its_job_id(caplog_ids, monkeypatch):
    def job_run(*, job_id: int) -> jobs.JobOutcome:
        logging.getLogger("trust.services.jobs").warning("running %s", job_id)
        return jobs.DONE

    monkeypatch.setattr(jobs, "job_run", job_run)
    tasks.run_job(41)
    (record,) = [r for r in caplog_ids.records if r.getMessage() == "running 41"]
    assert record.job_id == "41"
    assert record.request_id is None


def test_json_lines_have_the_fields_one_object_per_line():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("tests.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with job_context(9):
            logger.warning("two\nlines %s", "and args")
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("it failed")
        logger.info("no ids")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    first, second, third = (json.loads(line) for line in lines)
    assert first["message"] == "two\nlines and args"
    assert first["level"] == "WARNING"
    assert first["logger"] == "tests.json"
    assert first["job_id"] == "9"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["time"])
    assert "ValueError: boom" in second["exc_info"]
    assert "request_id" not in third
    assert "job_id" not in third
    assert "exc_info" not in third


def test_plain_text_lines_carry_the_ids():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        logging.Formatter(django_settings.LOGGING["formatters"]["plain"]["format"])
    )
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("tests.plain")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with job_context(12):
            logger.warning("in a job")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    in_job, outside = stream.getvalue().splitlines()
    assert "[job_id=12] in a job" in in_job
    assert "[-] outside" in outside


def test_gatehouse_log_json_switches_the_console_to_json_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(
        GATEHOUSE_DEBUG="1",
        GATEHOUSE_VAR_DIR=str(tmp_path),
        GATEHOUSE_LOG_JSON="1",
        DJANGO_SETTINGS_MODULE="gatehouse.settings",
    )
    script = "import django, logging; django.setup(); logging.getLogger('x').error('a\\nb')"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    (line,) = result.stderr.splitlines()
    assert json.loads(line) | {"time": None} == {
        "time": None,
        "level": "ERROR",
        "logger": "x",
        "message": "a\nb",
    }
