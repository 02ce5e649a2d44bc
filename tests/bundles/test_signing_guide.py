"""The "Sign images" guide: one set of commands, filled in for the user and the installation,
on My profile, in a signing bundle's README.txt and (for an example installation) README.md."""

import html
import re
from pathlib import Path

import pytest

from bundles.models import PublicKey
from bundles.signing_guide import Installation, guide_steps
from tests.bundles.helpers import open_bundle
from tests.factories import make_user

README = Path(__file__).resolve().parents[2] / "README.md"
# The installation README.md's "Sign images" is written for.
EXAMPLE = Installation(
    gatehouse_url="https://gatehouse.example.com",
    notary_url="https://notary.example.com:4443",
    notary_ca=True,
)
NOTARY_CA = "-----BEGIN CERTIFICATE-----\nnotary's CA\n-----END CERTIFICATE-----\n"


def readme_sign_images_commands() -> list[str]:
    """The shell blocks of README.md's "Sign images", in order."""
    section = README.read_text().split("\n### Sign images\n", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, re.DOTALL)


@pytest.fixture
def installation(settings, tmp_path):
    """Gatehouse and its Notary as signers reach them, Notary's certificate from a CA of its own."""
    ca_file = tmp_path / "notary-ca.pem"
    ca_file.write_text(NOTARY_CA)
    settings.GATEHOUSE_PUBLIC_URL = "https://gatehouse.example.com"
    settings.NOTARY_URL = "http://notary.internal:4443"
    settings.NOTARY_PUBLIC_URL = "https://notary.example.com:4443"
    settings.NOTARY_PUBLIC_CA_FILE = str(ca_file)


def test_readme_sign_images_is_the_guide_for_its_example_installation():
    steps = guide_steps(username="jenkins", role="targets/jenkins", site=EXAMPLE)
    assert readme_sign_images_commands() == [step.commands for step in steps]


def test_the_guide_signs_in_the_users_own_role_with_an_api_token():
    steps = {
        step.slug: step.commands
        for step in guide_steps(username="Jenkins.CI", role="targets/jenkins-ci", site=EXAMPLE)
    }
    assert '"username": "Jenkins.CI"' in steps["token"]
    assert "https://gatehouse.example.com/api/v1/auth/login/" in steps["token"]
    assert steps["key"].splitlines() == [
        "docker trust key load key.pem --name jenkins-ci",
        "notary key import key.pem --role targets/jenkins-ci",
    ]
    assert (
        "export NOTARY_AUTH=$(printf '%s:%s' Jenkins.CI \"$TOKEN\" | base64 -w0)"
        in (steps["notary"])
    )
    assert "cp notary-ca.pem ~/.docker/tls/notary.example.com:4443/ca.crt" in steps["notary"]
    assert "--roles targets/releases --roles targets/jenkins-ci" in steps["notary-cli"]
    assert (
        "notary -s https://notary.example.com:4443 --tlscacert notary-ca.pem"
        in (steps["notary-cli"])
    )
    assert "DOCKER_CONTENT_TRUST=1 docker push" in steps["docker"]
    assert "--roles targets/jenkins-ci" in steps["check"]
    assert "/api/v1/policy/evaluate/" in steps["check"]


def test_without_a_ca_or_https_the_guide_says_so_and_asks_no_ca():
    plain = Installation("http://127.0.0.1:8000", "http://127.0.0.1:4443", notary_ca=False)
    steps = {s.slug: s for s in guide_steps(username="jenkins", role="targets/jenkins", site=plain)}
    assert "--tlscacert" not in steps["notary-cli"].commands
    assert "~/.docker/tls" not in steps["notary"].commands
    assert "Docker signs only with an https:// Notary" in steps["notary"].text


@pytest.mark.django_db
def test_a_signing_bundle_carries_the_guide_the_ca_and_the_trust_server(
    client, installation, settings
):
    jenkins = make_user("Jenkins.CI")
    client.force_login(jenkins)
    response = client.post("/profile/bundle/", {"signing": "on"})

    files = {name: data.decode() for name, data in open_bundle(response.content).items()}
    readme = files["README.txt"]
    assert "your own role,\ntargets/jenkins-ci," in readme
    steps = guide_steps(
        username="Jenkins.CI",
        role="targets/jenkins-ci",
        site=Installation(
            "https://gatehouse.example.com", "https://notary.example.com:4443", notary_ca=True
        ),
    )
    for step in steps:
        assert "\n".join(f"    {line}" for line in step.commands.splitlines()) in readme
    assert files["notary-ca.pem"] == NOTARY_CA
    url = "https://notary.example.com:4443"
    assert f'export DOCKER_CONTENT_TRUST_SERVER="{url}"\n' in files["env.sh"]
    assert f'$env:DOCKER_CONTENT_TRUST_SERVER = "{url}"\n' in files["env.ps1"]
    assert f"set DOCKER_CONTENT_TRUST_SERVER={url}\n" in files["env.cmd"]


@pytest.mark.django_db
def test_a_plain_bundle_points_at_the_profile_and_notary_url_defaults_to_gatehouses(
    client, settings
):
    settings.NOTARY_URL = "http://127.0.0.1:4443"
    settings.NOTARY_PUBLIC_URL = ""
    settings.NOTARY_PUBLIC_CA_FILE = ""
    client.force_login(make_user("moby"))
    files = open_bundle(client.post("/profile/bundle/", {}).content)

    assert "This key is not a signing key" in files["README.txt"].decode()
    assert "--roles" not in files["README.txt"].decode()
    assert "notary-ca.pem" not in files
    assert b'export DOCKER_CONTENT_TRUST_SERVER="http://127.0.0.1:4443"\n' in files["env.sh"]


@pytest.mark.django_db
def test_profile_shows_the_guide_with_the_users_commands(client, installation):
    jenkins = make_user("jenkins")
    client.force_login(jenkins)
    client.post("/profile/bundle/", {"signing": "on"})

    page = client.get("/profile/").text
    assert '<code id="sign-guide-role">targets/jenkins</code>' in page
    for step in guide_steps(username="jenkins", role="targets/jenkins", site=EXAMPLE):
        shown = re.search(
            rf'<pre class="snippet" id="sign-guide-{step.slug}">(.*?)</pre>', page, re.S
        )
        assert shown is not None, step.slug
        assert html.unescape(shown.group(1)) == step.commands
    assert 'data-copy="#sign-guide-notary-cli"' in page


@pytest.mark.django_db
def test_profile_without_a_signing_role_says_how_to_get_one(client):
    client.force_login(make_user("moby"))
    page = client.get("/profile/").text
    assert 'id="sign-guide-none"' in page
    assert "sign-guide-token" not in page


@pytest.mark.django_db
def test_the_bundle_form_is_ticked_to_sign_and_unticking_downloads_a_plain_key(client):
    moby = make_user("moby")
    client.force_login(moby)
    page = client.get("/profile/").text
    checkbox = re.search(r'<input type="checkbox" name="signing"[^>]*>', page).group(0)
    assert 'id="bundle_signing"' in checkbox
    assert "checked" in checkbox

    client.post("/profile/bundle/", {"label": "unticked"})  # a browser omits an unticked box
    assert PublicKey.objects.get(user=moby).is_signing_key is False
