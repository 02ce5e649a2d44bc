"""The content-trust policy end to end: a real notary-server, the real ``notary`` CLI signing
as Docker does with keys from real Gatehouse bundles, and evaluations through the API.

Each test has its own GUN on the shared server and starts with an empty trust cache; trust
data is revalidated at every evaluation, so a new signature counts at once.
"""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from accounts.models import User
from accounts.services import team_member_remove, user_deactivate
from bundles.models import PublicKey
from bundles.services import public_key_revoke
from devtools.ports import free_port
from policy.evaluation import POLICY_FAILED
from policy.services import policy_update
from tests.factories import make_team, make_user
from tests.trust.helpers import run_jobs, signing_key_of
from tests.trust.notary.test_reader_integration import TamperingProxy
from trust import trust_data
from trust.services.repositories import repository_create

pytestmark = [pytest.mark.django_db, pytest.mark.notary]

GUN_PREFIX = "test.gatehouse"  # every notary_gun starts with it
RELEASES = "targets/releases"
A = "a1" * 32
B = "b2" * 32
SIZE = "1234"


@dataclass
class Signer:
    user: User
    key: PublicKey
    trust_dir: Path


@dataclass
class World:
    """A Gatehouse-managed repository signed by ci and dev, and a delegate of each team."""

    gun: str
    admin: User
    api: object
    cli: object
    signers: dict[str, Signer] = field(default_factory=dict)

    def sign(self, name: str, tag: str, digest: str, *roles: str) -> None:
        """Sign ``tag`` = ``digest`` into each role, publishing each time, as a push does."""
        for role in roles:
            self.cli(
                self.signers[name].trust_dir,
                "addhash",
                self.gun,
                tag,
                SIZE,
                "--sha256",
                digest,
                "-r",
                role,
                "-p",
            )

    def policy(self, **changes) -> None:
        settings = {
            "enabled": True,
            "mode": "enforced",
            "signing_team_names": ["ci"],
            "allow_repos": [],
        }
        policy_update(actor=self.admin, **{**settings, **changes})

    def evaluate(self, image: str, *, status: int = 200) -> dict:
        response = self.api(self.admin).post(
            "/api/v1/policy/evaluate/", {"image": image}, format="json"
        )
        assert response.status_code == status, response.content
        return response.json()

    def tag(self, tag: str) -> dict:
        return self.evaluate(f"{self.gun}:{tag}")


@pytest.fixture(autouse=True)
def fresh_trust_cache():
    trust_data.forget()
    yield
    trust_data.forget()


@pytest.fixture
def on_notary(settings, notary_server):
    settings.NOTARY_URL = notary_server.url
    settings.GATEHOUSE_TRUST_REVALIDATE_SECONDS = 0
    return notary_server


@pytest.fixture
def world(on_notary, notary_gun, notary_cli_in, admin, api, tmp_path) -> World:
    result = World(gun=notary_gun, admin=admin, api=api, cli=notary_cli_in)
    for name, team in (("jenkins", "ci"), ("moby", "dev")):
        user = make_user(name)
        key, pem = signing_key_of(user)
        make_team(team, members=(user,), actor=admin)
        trust_dir = tmp_path / name
        trust_dir.mkdir()
        (trust_dir / "key.pem").write_bytes(pem)
        notary_cli_in(trust_dir, "key", "import", str(trust_dir / "key.pem"))
        result.signers[name] = Signer(user, key, trust_dir)
    repository_create(actor=admin, gun=notary_gun, signer_team_names=["ci", "dev"])
    (job,) = run_jobs()
    assert job.status == "succeeded", job.error
    result.policy()
    return result


# --- The scenarios ---------------------------------------------------------------


def test_jenkins_signs_for_ci_and_the_image_is_allowed(world):
    world.sign("jenkins", "1.0", A, RELEASES, "targets/jenkins")

    result = world.tag("1.0")

    assert result["decision"] == "allowed"
    assert result["allowed"] is True
    assert result["digest"] == f"sha256:{A}"
    assert result["root_pinned"] is True
    assert result["mode"] == "enforced"
    (ci,) = result["teams"]
    assert ci == {
        "team": "ci",
        "needed": 1,
        "signed": 1,
        "satisfied": True,
        "signers": [
            {
                "username": "jenkins",
                "key_id": world.signers["jenkins"].key.id,
                "role": "targets/jenkins",
            }
        ],
        "not_counted": [],
    }
    assert result["reasons"] == [f"team ci: signed sha256:{A} (jenkins in targets/jenkins)"]


def test_a_signature_outside_the_team_does_not_count_nor_does_a_stale_one(world):
    world.sign("jenkins", "1.0", A, RELEASES, "targets/jenkins")
    world.sign("moby", "2.0", B, RELEASES, "targets/moby")

    other = world.tag("2.0")
    assert other["decision"] == "denied"
    assert other["allowed"] is False
    (ci,) = other["teams"]
    assert (ci["satisfied"], ci["signers"]) == (False, [])
    assert [(n["reason"], n["username"], n["role"], n["key_id"]) for n in ci["not_counted"]] == [
        ("not_in_team", "moby", "targets/moby", world.signers["moby"].key.id)
    ]
    assert other["reasons"][0] == POLICY_FAILED
    assert "moby signed it in targets/moby, but is not in ci" in other["reasons"][1]

    # moby re-signs 1.0 into releases with another digest: releases names what Docker
    # pulls, and ci signed something else.
    world.sign("moby", "1.0", B, RELEASES)
    stale = world.tag("1.0")
    assert stale["decision"] == "denied"
    assert stale["digest"] == f"sha256:{B}"
    assert stale["teams"][0]["satisfied"] is False
    assert stale["reasons"][0] == POLICY_FAILED
    assert any(
        f"targets/jenkins signed sha256:{A} as 1.0, but {RELEASES} names sha256:{B}" in reason
        for reason in stale["reasons"]
    )


def test_two_signing_teams_need_a_member_of_each_on_the_same_digest(world):
    world.policy(signing_team_names=["ci", "dev"])
    world.sign("jenkins", "1.0", A, RELEASES, "targets/jenkins")

    half = world.tag("1.0")
    assert half["decision"] == "denied"
    assert [(t["team"], t["satisfied"]) for t in half["teams"]] == [("ci", True), ("dev", False)]

    world.sign("moby", "1.0", B, "targets/moby")  # the wrong digest does not help
    assert world.tag("1.0")["decision"] == "denied"

    world.sign("moby", "1.0", A, "targets/moby")
    both = world.tag("1.0")
    assert both["decision"] == "allowed"
    assert [(t["team"], t["signers"][0]["username"]) for t in both["teams"]] == [
        ("ci", "jenkins"),
        ("dev", "moby"),
    ]


@pytest.mark.parametrize("change", ["leaves ci", "key revoked", "deactivated"])
def test_identity_changes_count_at_the_next_evaluation(world, change):
    world.sign("jenkins", "1.0", A, RELEASES, "targets/jenkins")
    assert world.tag("1.0")["decision"] == "allowed"
    jenkins = world.signers["jenkins"]

    if change == "leaves ci":
        ci = jenkins.user.teams.get(name="ci")
        team_member_remove(actor=world.admin, team=ci, user=jenkins.user)
        why = ("not_in_team", "jenkins signed it in targets/jenkins, but is not in ci")
    elif change == "key revoked":
        public_key_revoke(actor=jenkins.user, key=jenkins.key)
        why = ("key_revoked", f"with key {jenkins.key.id}, which is revoked")
    else:
        user_deactivate(actor=world.admin, user=jenkins.user)
        why = ("deactivated", "jenkins signed it in targets/jenkins, but is deactivated")

    # No job has run: Notary still holds jenkins' signature, but it no longer counts.
    result = world.tag("1.0")
    assert result["decision"] == "denied"
    (ci,) = result["teams"]
    assert (ci["satisfied"], ci["signers"]) == (False, [])
    assert [n["reason"] for n in ci["not_counted"]] == [why[0]]
    assert why[1] in result["reasons"][1]


def test_permissive_mode_reports_the_failure_without_denying(world):
    world.sign("moby", "2.0", B, RELEASES, "targets/moby")
    world.policy(mode="permissive")

    result = world.tag("2.0")

    assert result["decision"] == "not_enforced"
    assert result["allowed"] is True
    assert result["mode"] == "permissive"
    assert result["reasons"][0] == POLICY_FAILED
    assert result["teams"][0]["satisfied"] is False


def test_an_exempt_repository_is_allowed_and_says_which_pattern_exempts_it(world):
    world.sign("moby", "2.0", B, RELEASES, "targets/moby")
    world.policy(allow_repos=[f"{GUN_PREFIX}/*"])

    result = world.tag("2.0")

    assert result["decision"] == "allowed"
    assert result["reasons"][0] == (
        f"exempt: rule exempt-repositories matches by image pattern {GUN_PREFIX}/*, "
        "and its mode is off"
    )
    assert (result["rule"]["name"], result["mode"]) == ("exempt-repositories", "off")


# --- Trust data Gatehouse does not manage, tampered with or out of reach ------------------


@pytest.mark.parametrize("trust_on_first_use", [False, True])
def test_a_repository_made_by_the_cli_alone_counts_only_on_trust_on_first_use(
    on_notary, notary_cli, notary_gun, admin, api, settings, trust_on_first_use
):
    """Nothing pins its root: denied for that alone, unless trust on first use is allowed,
    and then denied still because nobody signed it in their own role."""
    settings.GATEHOUSE_TRUST_ON_FIRST_USE = trust_on_first_use
    make_team("ci", actor=admin)
    policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )
    notary_cli("init", notary_gun, "-p")
    notary_cli("key", "rotate", notary_gun, "snapshot", "-r")
    notary_cli("addhash", notary_gun, "1.0", SIZE, "--sha256", A, "-p")

    result = api(admin).post(
        "/api/v1/policy/evaluate/", {"image": f"{notary_gun}:1.0"}, format="json"
    )

    assert result.status_code == 200
    body = result.json()
    assert body["root_pinned"] is False
    assert body["digest"] == f"sha256:{A}"
    assert body["decision"] == "denied"
    (ci,) = body["teams"]
    if trust_on_first_use:
        assert [n["reason"] for n in ci["not_counted"]] == ["releases_only"]
        assert body["reasons"][1].startswith(
            f"team ci: no current member signed sha256:{A} in their own role "
            "(it is signed only in targets, which never counts"
        )
    else:
        assert [n["reason"] for n in ci["not_counted"]] == ["root_not_pinned"]
        assert body["reasons"][1].startswith(f"the root of {notary_gun} is not pinned")


def test_tampered_trust_data_is_denied_with_the_reason(world, settings, notary_server):
    world.sign("jenkins", "1.0", A, RELEASES, "targets/jenkins")
    assert world.tag("1.0")["decision"] == "allowed"

    def flip(body: bytes) -> bytes:
        """One bit of the signed part changed: the hash the snapshot records no longer fits."""
        at = body.index(b'"expires"') + 1
        return body[:at] + bytes([body[at] ^ 0x20]) + body[at + 1 :]

    with TamperingProxy(notary_server.url) as proxy:
        proxy.rewrite(r"targets\.[0-9a-f]{64}\.json", flip)
        settings.NOTARY_URL = proxy.url
        trust_data.forget()

        result = world.tag("1.0")

    assert result["decision"] == "denied"
    assert result["digest"] is None
    assert result["teams"] == [
        {
            "team": "ci",
            "needed": 1,
            "signed": 0,
            "satisfied": False,
            "signers": [],
            "not_counted": [],
        }
    ]
    assert result["reasons"][0] == f"image or trust data does not exist for {world.gun}:1.0"
    assert result["reasons"][1].startswith("trust data does not verify: ")
    assert "targets: sha256 does not match the snapshot" in result["reasons"][1]


def test_an_unreachable_notary_is_a_503_not_a_decision(world, settings):
    settings.NOTARY_URL = f"http://127.0.0.1:{free_port()}"
    trust_data.forget()

    result = world.evaluate(f"{world.gun}:1.0", status=503)

    assert result["detail"].startswith("Notary cannot be reached")


def test_a_malformed_reference_is_a_400_naming_image(world):
    result = world.evaluate("Not A Valid::ref", status=400)

    assert list(result) == ["image"]
    assert "is not a valid image reference" in result["image"][0]
