"""The dashboard as admins and signers meet it: the getting-started checklist on a fresh
installation, the counts of a configured one, and a signer's own teams, keys and
repositories. No Notary is needed: writes only queue jobs, which nothing runs here."""

import re

import pytest

from audit.services import audit_record, audit_record_folded
from bundles.services import public_key_revoke
from policy.services import policy_apply, policy_update
from tests.factories import make_team, make_user
from tests.trust.helpers import signing_key_of
from trust.models import Job, Repository, RoleFileSighting, RootKeyExport, SignedTag
from trust.services.repositories import repositories_create_bulk, repository_create
from trust.services.root_key import root_key_ensure

pytestmark = pytest.mark.django_db

GUN = "registry.example.com/ci/app"
STEPS = ["step-user", "step-team", "step-policy", "step-repository", "step-sign", "step-check"]


@pytest.fixture
def as_admin(client, admin):
    client.force_login(admin)
    return client


def stat(response, stat_id: str) -> tuple[int, str]:
    """The number a stat tile shows, and where it links."""
    match = re.search(
        rf'<a class="stat" id="{stat_id}" href="([^"]*)">\s*<span class="stat-value">(\d+)</span>',
        response.text,
    )
    assert match, f"no stat {stat_id}"
    return int(match.group(2)), match.group(1).replace("&amp;", "&")


def step(response, step_id: str) -> tuple[bool, str]:
    """Whether a step of the checklist is done, and the address of its link."""
    match = re.search(
        rf'<li id="{step_id}" class="step-(done|todo)">(.*?)</li>', response.text, re.S
    )
    assert match, f"no step {step_id}"
    link = re.search(r'<a href="([^"]*)">', match.group(2))
    assert link
    return match.group(1) == "done", link.group(1)


def steps_done(response) -> list[str]:
    return [step_id for step_id in STEPS if step(response, step_id)[0]]


def signed_tag_seen(signer) -> SignedTag:
    """What a read of verified trust data records when it finds a tag ``signer`` signed in
    their own role (``trust.signed_tags``)."""
    return SignedTag.objects.create(
        gun=GUN,
        role=f"targets/{signer.signing_role.name}",
        tag="1",
        digest="sha256:" + "ab" * 32,
        signer=signer,
        fingerprint="cd" * 32,
    )


def enforce(admin, team: str) -> None:
    policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=[team], allow_repos=[]
    )


# --- A fresh installation ------------------------------------------------------------------


def test_a_fresh_installation_shows_every_step_to_do_with_links_that_work(as_admin):
    response = as_admin.get("/")

    assert 'id="getting-started"' in response.text
    assert "Getting started" in response.text
    assert "0 of 6 done" in response.text
    assert steps_done(response) == []
    links = [step(response, step_id)[1] for step_id in STEPS]
    assert links == [
        "/users/new/",
        "/teams/new/",
        "/content-trust/",
        "/repositories/#new",
        "/profile/#sign-guide",
        "/content-trust/check/",
    ]
    for link in links:
        assert as_admin.get(link.split("#")[0]).status_code == 200, link
    assert stat(response, "stat-repositories-ready") == (0, "/repositories/?state=ready")
    assert 'id="root-key-status">Not made yet' in response.text
    assert "No denials yet." in response.text
    assert "No drift found" in response.text


def test_a_scoped_rule_that_enforces_a_team_ticks_the_policy_step(as_admin, admin):
    make_team("ci", members=(make_user("jenkins"),), actor=admin)
    rule = {
        "name": "prod",
        "namespaces": ["prod"],
        "mode": "enforced",
        "require": {"teams": [{"team": "ci", "count": 1}]},
    }
    document = {
        "enabled": True,
        "default": {"mode": "permissive", "require": {"teams": []}},
        "rules": [rule],
    }
    policy_apply(actor=admin, document=document)
    response = as_admin.get("/")
    assert "step-policy" in steps_done(response)
    assert "1 besides the default" in response.text


def test_each_step_is_ticked_from_real_state_and_the_list_goes_once_all_are(as_admin, admin):
    jenkins = make_user("jenkins")
    assert steps_done(as_admin.get("/")) == ["step-user"]

    make_team("ci", members=(jenkins,), actor=admin)
    assert steps_done(as_admin.get("/"))[-1] == "step-team"

    policy_update(
        actor=admin, enabled=True, mode="permissive", signing_team_names=["ci"], allow_repos=[]
    )
    assert "step-policy" not in steps_done(as_admin.get("/"))  # permissive enforces nothing
    enforce(admin, "ci")
    assert steps_done(as_admin.get("/"))[-1] == "step-policy"

    repository_create(actor=admin, gun=GUN, signer_team_names=["ci"])
    assert steps_done(as_admin.get("/"))[-1] == "step-repository"

    signing_key_of(jenkins)
    assert steps_done(as_admin.get("/"))[-1] == "step-repository"  # nothing signed yet

    audit_record_folded(
        action="policy.evaluation_denied",
        actor=admin,
        target_type="repository",
        target_id=GUN,
        after={"image": f"{GUN}:1", "mode": "enforced", "reasons": ["never signed"]},
    )
    assert steps_done(as_admin.get("/"))[-1] == "step-check"
    assert "5 of 6 done" in as_admin.get("/").text

    signed_tag_seen(jenkins)
    response = as_admin.get("/")

    assert 'id="getting-started"' not in response.text
    assert "Getting started" not in response.text
    assert stat(response, "stat-users")[0] == 2


def test_a_tag_seen_signed_ticks_signing_and_checking_unless_its_file_is_a_replay(as_admin, admin):
    jenkins = make_user("jenkins")
    signing_key_of(jenkins)
    tag = signed_tag_seen(jenkins)
    assert steps_done(as_admin.get("/")) == ["step-user", "step-sign", "step-check"]

    RoleFileSighting.objects.create(
        fingerprint=tag.fingerprint,
        gun="registry.example.com/other/app",
        role=tag.role,
        replayed=True,
    )
    assert steps_done(as_admin.get("/")) == ["step-user"]


def test_a_revoked_key_does_not_tick_the_signing_step(as_admin, admin):
    jenkins = make_user("jenkins")
    key, _ = signing_key_of(jenkins)
    signed_tag_seen(jenkins)
    assert "step-sign" in steps_done(as_admin.get("/"))

    public_key_revoke(actor=admin, key=key)

    assert "step-sign" not in steps_done(as_admin.get("/"))


# --- A configured installation -------------------------------------------------------------


@pytest.fixture
def configured(admin, alice):
    """ci signs three repositories: one ready, one failed (its job failed too), one pending
    whose Notary drifted; alice signs for ci, and a tag she signed was seen; denials from
    admission and from checks."""
    make_team("ci", members=(alice,), actor=admin)
    enforce(admin, "ci")
    created = repositories_create_bulk(
        actor=admin,
        guns=[f"registry.example.com/ci/{name}" for name in ("app", "db", "web")],
        signer_team_names=["ci"],
    ).created
    app, db, web = sorted((repository for repository, _ in created), key=lambda r: r.gun)
    Repository.objects.filter(pk=app.pk).update(state="ready")
    Repository.objects.filter(pk=db.pk).update(state="failed")
    Job.objects.filter(repository=db).update(status="failed", error="notary said no")
    Repository.objects.filter(pk=web.pk).update(drift={"missing": {"targets/alice": ["k"]}})
    signing_key_of(alice)
    signed_tag_seen(alice)
    for _ in range(3):  # one entry, three denials
        audit_record_folded(
            action="policy.evaluation_denied",
            actor=alice,
            target_type="repository",
            target_id=app.gun,
            after={"image": f"{app.gun}:1", "mode": "enforced", "reasons": ["never signed"]},
        )
    audit_record(
        action="admission.denied",
        actor=None,
        target_type="workload",
        target_id="prod/Pod/web",
        after={"message": "registry.example.com/ci/web:2 is not signed by ci"},
    )
    root_key_ensure()
    return app, db, web


def test_counts_of_a_configured_installation_link_to_their_lists(as_admin, configured):
    app, db, web = configured

    response = as_admin.get("/")

    assert 'id="getting-started"' not in response.text
    assert stat(response, "stat-repositories-ready") == (1, "/repositories/?state=ready")
    assert stat(response, "stat-repositories-pending") == (1, "/repositories/?state=pending")
    assert stat(response, "stat-repositories-failed") == (1, "/repositories/?state=failed")
    assert stat(response, "stat-failed-jobs") == (1, "/jobs/?status=failed")
    assert stat(response, "stat-drift") == (1, "#drift")
    assert stat(response, "stat-denials") == (4, "#denials")
    failed_list = as_admin.get("/repositories/?state=failed").text
    assert f'href="/repositories/{db.pk}/"' in failed_list
    assert f'href="/repositories/{app.pk}/"' not in failed_list
    assert db.gun in as_admin.get("/jobs/?status=failed").text
    drift = response.text.split('id="drift"')[1].split("</section>")[0]
    assert f'href="/repositories/{web.pk}/"' in drift
    assert app.gun not in drift


def test_the_policy_latest_denials_and_root_key_are_shown(as_admin, configured):
    app, _, _ = configured

    response = as_admin.get("/")

    policy = response.text.split('id="policy-summary"')[1].split("</section>")[0]
    assert "Enforced" in policy
    assert 'href="/teams/ci/">ci</a>' in policy
    assert 'href="/content-trust/">Content trust policy</a>' in policy
    denials = response.text.split('id="denials"')[1].split("</section>")[0]
    assert "prod/Pod/web" in denials
    assert "is not signed by ci" in denials
    assert f"{app.gun}:1" in denials
    assert "never signed" in denials
    assert "\N{MULTIPLICATION SIGN}3" in denials
    assert "/audit/?action=admission.denied&amp;target_id=prod/Pod/web" in denials
    assert 'id="root-key-status">Not exported' in response.text

    RootKeyExport.objects.create(actor=configured[0].created_by)

    assert 'id="root-key-status">Exported' in as_admin.get("/").text


def test_the_admin_dashboard_reads_a_bounded_number_of_queries(
    as_admin, admin, configured, django_assert_max_num_queries
):
    with django_assert_max_num_queries(24):
        as_admin.get("/")
    repositories_create_bulk(
        actor=admin,
        guns=[f"registry.example.com/ci/more{n}" for n in range(30)],
        signer_team_names=["ci"],
    )
    Repository.objects.update(drift={"missing": {}})
    for n in range(10):
        make_team(f"team{n}", members=(make_user(f"user{n}"),), actor=admin)
        audit_record(
            action="admission.denied",
            actor=None,
            target_type="workload",
            target_id=f"prod/Pod/web{n}",
            after={"message": "not signed"},
        )

    with django_assert_max_num_queries(24):
        response = as_admin.get("/")

    assert stat(response, "stat-drift")[0] == 33


# --- A signer ------------------------------------------------------------------------------


@pytest.fixture
def as_alice(client, admin, alice):
    """alice is in ci, which signs app and web; ops signs db."""
    make_team("ci", members=(alice,), actor=admin)
    make_team("ops", members=(make_user("bob"),), actor=admin)
    for gun, team in [("app", "ci"), ("web", "ci"), ("db", "ops")]:
        repository_create(
            actor=admin, gun=f"registry.example.com/{team}/{gun}", signer_team_names=[team]
        )
    client.force_login(alice)
    return client


def test_a_signer_sees_their_teams_keys_and_repositories(
    as_alice, alice, django_assert_max_num_queries
):
    response = as_alice.get("/")
    assert stat(response, "stat-signing-keys") == (0, "/profile/#keys")
    assert "You have no signing key yet" in response.text
    signing_key_of(alice)

    with django_assert_max_num_queries(10):
        response = as_alice.get("/")

    assert stat(response, "stat-my-teams") == (1, "/teams/")
    assert stat(response, "stat-signing-keys") == (1, "/profile/#keys")
    assert stat(response, "stat-my-repositories") == (2, "/repositories/")
    assert 'href="/teams/ci/"' in response.text
    assert "/teams/ops/" not in response.text
    mine = response.text.split('id="my-repositories"')[1].split("</section>")[0]
    assert "registry.example.com/ci/app" in mine
    assert "registry.example.com/ci/web" in mine
    assert "registry.example.com/ops/db" not in mine
    assert '<a href="/profile/#sign-guide">Sign images guide</a>' in response.text
    assert "You have no signing key yet" not in response.text
    for admin_only in ("getting-started", "stat-failed-jobs", "policy-summary", "denials"):
        assert f'id="{admin_only}"' not in response.text
    assert as_alice.get("/profile/").status_code == 200
