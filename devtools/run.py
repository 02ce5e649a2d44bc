"""``make run``: the whole of Gatehouse on one machine, on embedded defaults.

Migrates, starts a development Notary (unless ``NOTARY_URL`` points at one) that takes its
bearer tokens from this Gatehouse (``notary_server_config``: realm ``<console>/auth/token``),
makes sure an admin and the root key exist, then runs the web console and a real Celery
worker with its periodic tasks (``--beat``: drift checks, requeueing). Once both serve, it
prints a closing summary: the console, how to log in (a new admin's password, once), the
API docs and Notary. Ctrl-C stops everything.
"""

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, cast

from gatehouse.celery import worker_command

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
NOTARY_SERVER_PORT = 4443
NOTARY_SIGNER_PORT = 7899
CONSOLE_ADDRESS = os.environ.get("GATEHOUSE_RUN_ADDRESS", "127.0.0.1:8000")
START_SECONDS = 120  # the longest the closing summary waits for the console and the worker


def manage(*args: str, capture: bool = False, env: dict[str, str] | None = None) -> str:
    output = subprocess.PIPE if capture else None
    result = subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", *args],
        cwd=BASE_DIR,
        check=True,
        text=True,
        stdout=output,
        env=env,
    )
    return result.stdout or ""


def ensure_admin() -> str:
    """Make the first admin unless one exists, and say how to log in: the generated
    password is shown once, in the closing summary, not among the start-up lines."""
    username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
    chosen = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
    password = chosen or secrets.token_urlsafe(15)
    env = {**os.environ, "DJANGO_SUPERUSER_USERNAME": username}
    env["DJANGO_SUPERUSER_PASSWORD"] = password
    if not manage("ensure_admin", capture=True, env=env).startswith("Created admin"):
        return "an existing admin (its password was shown when make run created it)"
    if chosen:
        return f"{username}, with the password in DJANGO_SUPERUSER_PASSWORD"
    return f"{username} / {password}  (shown only now: change it under My profile)"


def start_worker(command: list[str]) -> tuple[subprocess.Popen, threading.Event]:
    """The Celery worker, its output passed on line by line; the event is set once it
    says it is ready."""
    ready = threading.Event()
    worker = subprocess.Popen(  # noqa: S603
        command,
        cwd=BASE_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def relay() -> None:
        for line in cast(IO[str], worker.stdout):
            sys.stdout.write(line)
            sys.stdout.flush()
            if " ready." in line:
                ready.set()

    threading.Thread(target=relay, daemon=True).start()
    return worker, ready


def console_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}healthz", timeout=1) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_until_serving(
    console_url: str, worker_ready: threading.Event, processes: list[subprocess.Popen]
) -> None:
    """Until the console answers and the worker is ready, so the summary comes last; at
    most ``START_SECONDS``, or until a process ends."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and all(p.poll() is None for p in processes):
        if worker_ready.is_set() and console_answers(console_url):
            return
        time.sleep(0.2)


def summary(*, console_url: str, admin: str, notary_url: str) -> str:
    """What a newcomer needs, printed once everything has started."""
    rule = "=" * 72
    return "\n".join(
        [
            "",
            rule,
            "Gatehouse is running.",
            f"  Console:   {console_url}",
            f"  Log in as: {admin}",
            f"  API docs:  {console_url}api/v1/docs/",
            f"  Notary:    {notary_url or 'none (set NOTARY_URL; see the lines above)'}",
            "Ctrl-C stops everything.",
            rule,
            "",
        ]
    )


def notary_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_notary_server/health", timeout=1) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def token_auth_config(state_dir: Path) -> Path:
    """notary-server's ``auth`` section trusting this Gatehouse's tokens, in a file for
    ``devtools.notary --server-config-json``; the certificate is written beside it."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    certificate = str(state_dir / "token-ca.pem")
    section = manage("notary_server_config", "--cert-out", certificate, capture=True)
    path = state_dir / "token-auth.json"
    path.write_text(section)
    return path


def start_development_notary(var_dir: Path) -> subprocess.Popen | None:
    """Run notary-signer + notary-server with persistent storage under ``var/notary``."""
    url = f"http://127.0.0.1:{NOTARY_SERVER_PORT}"
    state_dir = var_dir / "notary"
    process = subprocess.Popen(  # noqa: S603
        [
            PYTHON,
            "-m",
            "devtools.notary",
            "--state-dir",
            str(state_dir),
            "--server-port",
            str(NOTARY_SERVER_PORT),
            "--signer-port",
            str(NOTARY_SIGNER_PORT),
            "--server-config-json",
            str(token_auth_config(state_dir)),
        ],
        cwd=BASE_DIR,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print("Gatehouse runs without a development Notary (see the line above).")
            return None
        if notary_healthy(url):
            os.environ["NOTARY_URL"] = url
            return process
        time.sleep(0.2)
    process.terminate()
    print(f"The development Notary did not answer at {url} within 120 s; running without it.")
    return None


def stop(processes: list[subprocess.Popen]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
    for process in reversed(processes):
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> int:
    os.environ.setdefault("GATEHOUSE_DEBUG", "1")
    # The token realm notary-server names is the console's /auth/token.
    os.environ.setdefault("GATEHOUSE_PUBLIC_URL", f"http://{CONSOLE_ADDRESS}")
    var_dir = Path(os.environ.setdefault("GATEHOUSE_VAR_DIR", str(BASE_DIR / "var")))
    var_dir.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        manage("migrate", "--no-input", "-v", "0")  # first: the token key lives in the database
        if not os.environ.get("NOTARY_URL"):
            notary = start_development_notary(var_dir)
            if notary is not None:
                processes.append(notary)
        admin = ensure_admin()
        manage("root_key")  # so the Trust root page has a key to export and pin from the start
        worker, worker_ready = start_worker(
            worker_command(beat_schedule=var_dir / "celerybeat-schedule")
        )
        processes.append(worker)
        console = subprocess.Popen(  # noqa: S603
            [PYTHON, "manage.py", "runserver", "--noreload", CONSOLE_ADDRESS], cwd=BASE_DIR
        )
        processes.append(console)
        console_url = f"http://{CONSOLE_ADDRESS}/"
        wait_until_serving(console_url, worker_ready, processes)
        print(
            summary(
                console_url=console_url,
                admin=admin,
                notary_url=os.environ.get("NOTARY_URL", ""),
            ),
            flush=True,
        )
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        return next(p.returncode for p in processes if p.returncode is not None) or 0
    except subprocess.CalledProcessError as error:
        return error.returncode
    except KeyboardInterrupt:
        return 0
    finally:
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())
