"""``make run``'s launcher: console and Celery worker up, admin printed once, root key made,
Ctrl-C stops all."""

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
        wait_for(lambda: console_answers(port), "the console answering", process, first_log)
        wait_for(lambda: "ready." in first_log.read_text(), "the worker", process, first_log)
    finally:
        ctrl_c(process)
    output = first_log.read_text()
    assert "Created admin 'admin' with password: " in output
    assert "Created root key " in output

    second_log = tmp_path / "second.log"
    process = launch(tmp_path / "var", port, second_log)
    try:
        wait_for(lambda: console_answers(port), "the console answering", process, second_log)
    finally:
        ctrl_c(process)
    assert "An admin exists already" in second_log.read_text()
    assert "exists already; nothing changed." in second_log.read_text()
    assert "with password" not in second_log.read_text()
