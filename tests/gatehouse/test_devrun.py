"""``make run``'s launcher: console and Celery worker up, admin printed once, root key made,
Ctrl-C stops all."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devtools.ports import free_port

BASE_DIR = Path(__file__).resolve().parents[2]


def launch(var_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GATEHOUSE_", "DJANGO_", "DATABASE_URL", "CELERY_"))
    }
    env.update(
        GATEHOUSE_VAR_DIR=str(var_dir),
        GATEHOUSE_RUN_ADDRESS=f"127.0.0.1:{port}",
        NOTARY_URL="http://127.0.0.1:9",  # this test is about the console and the worker
    )
    return subprocess.Popen(
        [sys.executable, "-m", "devtools.run"],
        cwd=BASE_DIR,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for(predicate, what: str, process: subprocess.Popen, log: Path, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        assert process.poll() is None, f"make run exited early:\n{log.read_text()}"
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s:\n{log.read_text()}")


def console_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def process_group(pid: int) -> list[str]:
    return subprocess.run(
        ["pgrep", "-g", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()


def ctrl_c(process: subprocess.Popen) -> None:
    """What a terminal does on Ctrl-C: SIGINT to the whole foreground process group.

    Everything must be gone within a few seconds: the launcher, the console, the worker and
    its pool.
    """
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=30)
    deadline = time.monotonic() + 15
    while (survivors := process_group(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if survivors:
        listing = subprocess.run(
            ["ps", "-o", "pid,args", "-p", ",".join(survivors)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError(f"processes left running after Ctrl-C:\n{listing}")


def test_make_run_serves_the_console_with_a_worker_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    first_log = tmp_path / "first.log"
    process = launch(tmp_path / "var", port, first_log)
    try:
        wait_for(lambda: SUMMARY_END in first_log.read_text(), "the summary", process, first_log)
        first = closing_summary(first_log.read_text(), port)
        assert console_answers(port)
    finally:
        ctrl_c(process)
    output = first_log.read_text()
    assert "Created root key " in output
    username, rest = first["Log in as"].split(" / ")
    password, note = rest.split(maxsplit=1)
    assert (username, note) == ("admin", "(shown only now: change it under My profile)")
    assert output.count(password) == 1  # shown once, in the summary

    second_log = tmp_path / "second.log"
    process = launch(tmp_path / "var", port, second_log)
    try:
        wait_for(lambda: SUMMARY_END in second_log.read_text(), "the summary", process, second_log)
        second = closing_summary(second_log.read_text(), port)
        assert api_login(port, "admin", password) == 200
    finally:
        ctrl_c(process)
    output = second_log.read_text()
    assert "exists already; nothing changed." in output
    assert password not in output
    assert second["Log in as"] == (
        "an existing admin (its password was shown when make run created it)"
    )


SUMMARY_END = "Ctrl-C stops everything."


def api_login(port: int, username: str, password: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/auth/login/",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.status


def closing_summary(output: str, port: int) -> dict[str, str]:
    """The block ``make run`` ends its start-up with: after every start-up line (the worker
    is ready, the console answers), it names the console, the login, the API docs and
    Notary."""
    lines = output.splitlines()
    start = lines.index("Gatehouse is running.")
    end = lines.index(SUMMARY_END, start)
    assert lines[start - 1] == lines[end + 1] == "=" * 72
    before = "\n".join(lines[:start])
    assert " ready." in before  # the worker
    assert "Starting development server" in before  # the console
    fields = dict(map(str.strip, line.split(": ", 1)) for line in lines[start + 1 : end])
    assert fields["Console"] == f"http://127.0.0.1:{port}/"
    assert fields["API docs"] == f"http://127.0.0.1:{port}/api/v1/docs/"
    assert fields["Notary"] == "http://127.0.0.1:9"
    with urllib.request.urlopen(fields["API docs"], timeout=5) as response:  # noqa: S310
        assert response.status == 200
    return fields
