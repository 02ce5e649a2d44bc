"""The "Sign images" guide: the commands that sign in a user's own role on this installation.

The one source of those commands: My profile shows them (the ``sign_guide`` tag), every
signing bundle's ``README.txt`` prints them, and README.md's "Sign images" is this guide for
an example installation (a test keeps it equal, and another runs it against notary-server).
"""

import json
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from bundles.archive import NOTARY_CA_NAME

NOTARY_URL_UNKNOWN = "<your Notary URL>"
IMAGE = "<registry>/<repository>"  # what the signer fills in: the GUN, then its tag
TAG = "<tag>"


@dataclass(frozen=True)
class Installation:
    """What the commands name of this Gatehouse: where signers reach it and its Notary."""

    gatehouse_url: str
    notary_url: str  # blank when no Notary is configured
    notary_ca: bool  # signers verify Notary with notary-ca.pem from their bundle

    @property
    def notary(self) -> str:
        """The notary CLI with this installation's server (and CA) flags."""
        flags = f" --tlscacert {NOTARY_CA_NAME}" if self.notary_ca else ""
        return f"notary -s {self.notary_url or shlex.quote(NOTARY_URL_UNKNOWN)}{flags}"


@dataclass(frozen=True)
class GuideStep:
    slug: str  # names the step's commands on the page: id="sign-guide-<slug>"
    title: str
    text: str
    commands: str


def installation() -> Installation:
    return Installation(
        gatehouse_url=settings.GATEHOUSE_PUBLIC_URL,
        notary_url=notary_public_url(),
        notary_ca=bool(settings.NOTARY_PUBLIC_CA_FILE),
    )


def notary_public_url() -> str:
    """Where signers reach Notary: ``NOTARY_PUBLIC_URL``, else Gatehouse's own ``NOTARY_URL``."""
    return (settings.NOTARY_PUBLIC_URL or settings.NOTARY_URL).rstrip("/")


def notary_public_ca() -> str | None:
    """The CA certificate signers verify Notary with, as bundles carry it; None when unset."""
    path = settings.NOTARY_PUBLIC_CA_FILE
    return _read_once(path) if path else None


@cache
def _read_once(path: str) -> str:
    """Read once per process: issuing bundles is a hot path, and the file is configuration."""
    return Path(path).read_text(encoding="ascii")


def guide_steps(*, username: str, role: str, site: Installation) -> tuple[GuideStep, ...]:
    """The steps, in order, for ``username`` signing in their own ``role`` (``targets/<name>``)."""
    user = shlex.quote(username)
    # Usernames hold no quote (Django's username syntax), so they go into quoted words as is.
    login_body = (
        "python3 -c 'import json, os; print(json.dumps("
        f'{{"username": {json.dumps(username)}, "password": os.environ["PASSWORD"]}}))\''
    )
    token = GuideStep(
        "token",
        "Get an API token",
        "Notary asks Gatehouse who you are. Give it an API token, never your password: a token "
        "expires, and changing your password revokes it.",
        f"read -rsp 'Gatehouse password for {username}: ' PASSWORD && echo "
        "&& export PASSWORD\n"
        f"TOKEN=$({login_body} \\\n"
        f"  | curl -sf -X POST {site.gatehouse_url}/api/v1/auth/login/ \\\n"
        "      -H 'Content-Type: application/json' -d @- \\\n"
        "  | python3 -c 'import json, sys; print(json.load(sys.stdin)[\"token\"])')\n"
        "unset PASSWORD",
    )
    key = GuideStep(
        "key",
        "Load your key",
        "key.pem from your signing bundle, into the tool you sign with: Docker, or the notary CLI.",
        f"docker trust key load key.pem --name {role.removeprefix('targets/')}\n"
        f"notary key import key.pem --role {role}",
    )
    notary_lines = []
    if site.notary_ca:
        host = urlsplit(site.notary_url).netloc or "<notary host:port>"
        notary_lines.append(
            f"mkdir -p ~/.docker/tls/{host}\ncp {NOTARY_CA_NAME} ~/.docker/tls/{host}/ca.crt"
        )
    notary_url = site.notary_url or NOTARY_URL_UNKNOWN
    notary_lines += [
        f"export DOCKER_CONTENT_TRUST_SERVER={shlex.quote(notary_url)}",
        f"export NOTARY_AUTH=$(printf '%s:%s' {user} \"$TOKEN\" | base64 -w0)",
    ]
    reach_text = (
        f"Notary is at {notary_url}; your bundle's env.sh (env.ps1, env.cmd) sets "
        "DOCKER_CONTENT_TRUST_SERVER to it. The notary CLI sends Gatehouse your username and "
        "token from NOTARY_AUTH (base64 -w0 is GNU's; on macOS, base64 alone)."
    )
    if site.notary_ca:
        reach_text += (
            f" Its certificate is signed by {NOTARY_CA_NAME}, in your bundle: Docker reads it "
            "from ~/.docker/tls/<host:port>/ca.crt, the notary CLI from --tlscacert."
        )
    if not notary_url.startswith("https://"):
        reach_text += (
            " Docker signs only with an https:// Notary: on this one, sign with the notary CLI."
        )
    reach = GuideStep("notary", "Reach Notary", reach_text, "\n".join(notary_lines))
    push = GuideStep(
        "docker",
        "Sign with Docker",
        f"A push with content trust signs targets/releases and your role, {role} (Docker signs "
        "every role under targets that holds your key). Docker sends Notary the credentials it "
        "holds for the registry, so log in to the registry as "
        f"{username} with your API token as the password; where the registry takes other "
        "credentials, push without content trust and sign what it pushed with the notary CLI.",
        f'printf %s "$TOKEN" | docker login <registry> -u {user} --password-stdin\n'
        f"DOCKER_CONTENT_TRUST=1 docker push {IMAGE}:{TAG}",
    )
    cli = GuideStep(
        "notary-cli",
        "Or sign with the notary CLI",
        f"Name both roles. <size> and <digest> are what docker push printed for the tag "
        f"({TAG}: digest: sha256:<digest> size: <size>).",
        f"{site.notary} \\\n  addhash {IMAGE} {TAG} <size> --sha256 <digest> \\\n"
        f"  --roles targets/releases --roles {role}\n"
        f"{site.notary} publish {IMAGE}",
    )
    check = GuideStep(
        "check",
        "Check the result",
        f"Your tag is listed in {role}, and Gatehouse's evaluation says whether it passes the "
        'policy ("allowed") and why: the console\'s Content Trust, Check an image, says the same.',
        f"{site.notary} list {IMAGE} --roles {role}\n"
        f"curl -sf -X POST {site.gatehouse_url}/api/v1/policy/evaluate/ "
        '-H "Authorization: Bearer $TOKEN" \\\n'
        f"  -H 'Content-Type: application/json' -d '{{\"image\": \"{IMAGE}:{TAG}\"}}'",
    )
    return (token, key, reach, push, cli, check)


def guide_text(steps: tuple[GuideStep, ...]) -> str:
    """The steps as README.txt prints them: numbered, commands indented."""
    blocks = []
    for number, step in enumerate(steps, 1):
        commands = "\n".join(f"    {line}" for line in step.commands.splitlines())
        blocks.append(f"{number}. {step.title}\n{_wrapped(step.text)}\n\n{commands}\n")
    return "\n".join(blocks)


def _wrapped(text: str, width: int = 88) -> str:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return "\n".join(lines)
