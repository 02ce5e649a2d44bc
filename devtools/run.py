"""``make run``: the whole of Gatehouse on one machine, on embedded defaults.

Migrates, starts a development Notary (unless ``NOTARY_URL`` points at one) that takes its
bearer tokens from this Gatehouse (``notary_server_config``: realm ``<console>/auth/token``),
makes sure an admin and the root key exist, then runs the web console and a real Celery
worker with its periodic tasks (``--beat``: drift checks, requeueing). Ctrl-C stops everything.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from gatehouse.celery import worker_command

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
NOTARY_SERVER_PORT = 4443
NOTARY_SIGNER_PORT = 7899
CONSOLE_ADDRESS = os.environ.get("GATEHOUSE_RUN_ADDRESS", "127.0.0.1:8000")


def manage(*args: str, capture: bool = False) -> str:
    output = subprocess.PIPE if capture else None
    result = subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", *args], cwd=BASE_DIR, check=True, text=True, stdout=output
    )
    return result.stdout or ""


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
        manage("ensure_admin")
        manage("root_key")  # so the Trust root page has a key to export and pin from the start
        worker = worker_command(beat_schedule=var_dir / "celerybeat-schedule")
        processes.append(subprocess.Popen(worker, cwd=BASE_DIR))  # noqa: S603
        print(
            f"Gatehouse console: http://{CONSOLE_ADDRESS}/  "
            f"(Notary: {os.environ.get('NOTARY_URL') or 'none'}; Ctrl-C stops everything)"
        )
        console = subprocess.Popen(  # noqa: S603
            [PYTHON, "manage.py", "runserver", "--noreload", CONSOLE_ADDRESS], cwd=BASE_DIR
        )
        processes.append(console)
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
