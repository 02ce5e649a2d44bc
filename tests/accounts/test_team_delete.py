"""A team a content-trust policy rule or a repository names cannot be deleted.

Deleting it would silently drop a repository's signer team, with no audit entry, and leave
a rule requiring a team that no longer exists, with no policy version.
"""

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from accounts import services
from accounts.models import Membership, Team
from audit.models import AuditEntry
from policy.selectors import policy_current
from policy.services import policy_apply, policy_update
from tests.factories import make_team, make_user
from trust.services.repositories import repository_create

pytestmark = pytest.mark.django_db

GUN = "registry.example.com/ci/app"
POLICY_USE = "the content-trust policy (a rule requires it)"


@pytest.fixture
def ci(admin, alice):
    return make_team("ci", members=(alice,), actor=admin)


def require_ci_signatures(admin) -> None:
    policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )


def assert_kept(team: Team) -> None:
    assert Team.objects.filter(pk=team.pk).exists()
    assert Membership.objects.filter(team=team).count() == 1
    assert not AuditEntry.objects.filter(action="team.deleted").exists()


def test_a_team_the_policy_names_is_a_409_and_stays(api, admin, ci):
    require_ci_signatures(admin)

    response = api(admin).delete("/api/v1/teams/ci/")

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Team ci is in use by {POLICY_USE}; remove it there first.",
        "used_by": [POLICY_USE],
    }
    assert_kept(ci)
    assert [quota.team for quota in policy_current().default.requirement.teams] == ["ci"]


def test_a_team_only_a_scoped_rule_requires_is_a_409_too(api, admin, ci):
    policy_apply(
        actor=admin,
        document={
            "enabled": True,
            "default": {"require": {"teams": []}},
            "rules": [
                {"name": "prod", "namespaces": ["prod"], "require": {"teams": [{"team": "ci"}]}}
            ],
        },
    )

    response = api(admin).delete("/api/v1/teams/ci/")

    assert response.status_code == 409
    assert response.json()["used_by"] == [POLICY_USE]
    assert_kept(ci)


def test_a_team_a_repository_names_is_a_409_naming_the_gun(api, admin, ci):
    repository, _ = repository_create(actor=admin, gun=GUN, signer_team_names=["ci"])

    response = api(admin).delete("/api/v1/teams/ci/")

    assert response.status_code == 409
    assert response.json()["used_by"] == [f"repository {GUN}"]
    assert GUN in response.json()["detail"]
    assert_kept(ci)
    assert list(repository.signer_teams.values_list("name", flat=True)) == ["ci"]


def test_every_user_is_named(admin, ci):
    require_ci_signatures(admin)
    repository_create(actor=admin, gun=GUN, signer_team_names=["ci"])

    with pytest.raises(services.TeamInUse) as refusal:
        services.team_delete(actor=admin, team=ci)

    used_by = refusal.value.used_by  # in the order the apps are installed
    assert sorted(used_by) == [f"repository {GUN}", POLICY_USE]
    assert isinstance(refusal.value, ValidationError)
    assert refusal.value.message_dict == {
        "name": [f"Team ci is in use by {', '.join(used_by)}; remove it there first."]
    }
    assert_kept(ci)


def test_ten_repositories_are_named_and_the_rest_counted(admin, ci):
    guns = [f"registry.example.com/ci/app{n:02}" for n in range(13)]
    for gun in guns:
        repository_create(actor=admin, gun=gun, signer_team_names=["ci"])

    with pytest.raises(services.TeamInUse) as refusal:
        services.team_delete(actor=admin, team=ci)

    assert refusal.value.used_by == [f"repository {gun}" for gun in guns[:10]] + [
        "and 3 more repositories"
    ]


def test_an_unused_team_is_deleted(api, admin, ci):
    make_team("ops", actor=admin)
    policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ops"], allow_repos=[]
    )
    repository_create(actor=admin, gun=GUN, signer_team_names=["ops"])

    response = api(admin).delete("/api/v1/teams/ci/")

    assert response.status_code == 204
    assert not Team.objects.filter(name="ci").exists()
    assert AuditEntry.objects.filter(action="team.deleted", target_id="ci").exists()


def test_a_team_no_longer_named_can_be_deleted(api, admin, ci):
    require_ci_signatures(admin)
    policy_update(actor=admin, enabled=True, mode="enforced", signing_team_names=[], allow_repos=[])

    assert api(admin).delete("/api/v1/teams/ci/").status_code == 204
    assert not Team.objects.filter(name="ci").exists()


def test_the_console_shows_the_refusal_and_keeps_the_team(client, admin, ci):
    repository_create(actor=admin, gun=GUN, signer_team_names=["ci"])
    client.force_login(admin)

    response = client.post("/teams/ci/delete/", follow=True)

    assert response.redirect_chain == [("/teams/ci/", 302)]
    messages = list(response.context["messages"])
    assert [(message.level_tag, str(message)) for message in messages] == [
        ("error", f"Team ci is in use by repository {GUN}; remove it there first.")
    ]
    assert_kept(ci)


def test_the_schema_documents_the_409():
    out = io.StringIO()
    call_command("spectacular", "--format", "openapi-json", stdout=out)
    responses = json.loads(out.getvalue())["paths"]["/api/v1/teams/{name}/"]["delete"]["responses"]
    assert set(responses) == {"204", "409"}
    body = responses["409"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/TeamInUse"}


def test_a_non_admin_still_gets_a_403(api, admin, ci):
    require_ci_signatures(admin)
    assert api(make_user("bob")).delete("/api/v1/teams/ci/").status_code == 403
    assert_kept(ci)
