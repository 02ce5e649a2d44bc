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
