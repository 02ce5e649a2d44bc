"""The README's curl walk-through works as written, against a live server."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from accounts.models import Team
from tests.factories import PASSWORD, make_user

README = Path(__file__).resolve().parents[2] / "README.md"


def curl_walkthrough() -> str:
    section = README.read_text().split("## The workflow, with curl", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)


@pytest.mark.django_db(transaction=True)
def test_the_readme_curl_flow_creates_jenkins_in_ci(live_server):
    assert shutil.which("curl"), "curl is needed to run the README's walk-through"
    make_user("admin", is_admin=True)
    script = (
        curl_walkthrough()
        .replace("GATEHOUSE=http://127.0.0.1:8000", f"GATEHOUSE={live_server.url}")
        .replace("'the password make run printed'", f"'{PASSWORD}'")
    )
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "['jenkins']" in result.stdout
    assert list(Team.objects.get(name="ci").members.values_list("username", flat=True)) == [
        "jenkins"
    ]


@pytest.mark.django_db(transaction=True)
def test_the_readmes_key_registration_works_with_openssl(live_server, tmp_path):
    """The Keys section's commands, as written: a nonce, signed by the real openssl with the
    key of a certificate made elsewhere, registers that certificate on jenkins's account."""
    from bundles.models import PublicKey
    from tests.conftest import require

    require(shutil.which("openssl") is not None, "openssl")
    assert shutil.which("curl"), "curl is needed to run the README's commands"
    make_user("admin", is_admin=True)
    make_user("jenkins")
    make_certificate = [
        *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
        *("-nodes", "-days", "30", "-subj", "/CN=jenkins"),
        *("-addext", "basicConstraints=critical,CA:FALSE"),  # req makes a CA by default
        *("-keyout", "key.pem", "-out", "cert.pem"),
    ]
    subprocess.run(
        make_certificate,
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    walkthrough = curl_walkthrough()
    login = walkthrough[: walkthrough.index("\n", walkthrough.index("AUTH="))]
    section = README.read_text().split("\n## Keys\n", 1)[1]
    keys = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    script = (
        login.replace("GATEHOUSE=http://127.0.0.1:8000", f"GATEHOUSE={live_server.url}").replace(
            "'the password make run printed'", f"'{PASSWORD}'"
        )
        + "\n"
        + keys
    )
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    key = PublicKey.objects.get(user__username="jenkins")
    assert (key.label, key.source, key.algorithm) == ("yubikey", "registered", "ecdsa-p256")
    assert key.certificate.strip() == (tmp_path / "cert.pem").read_text().strip()
