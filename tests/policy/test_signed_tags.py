"""A repository's signed tags, and what Check an image says after a signer leaves, against
the real notary-server with the real ``notary`` CLI signing as ``docker push`` does.

jenkins, the one member of ci, signs 1.0; the repository's page shows it passing. He leaves
ci, the sync removes his role and rebuilds ``targets/releases`` without his tag, and both
the page and Check an image say why: he is no longer in ci.
"""

import re
from urllib.parse import quote

import pytest
from django.test import Client

from accounts.models import Team
from accounts.services import team_member_remove
from policy.evaluation import NOT_IN_TEAM
from trust.models import Repository, SignedTag

pytestmark = [pytest.mark.django_db, pytest.mark.notary]

A = "a1" * 32  # 1.0, looked at while jenkins is in ci
B = "b2" * 32  # 2.0, never looked at before he leaves: only the history walk sees it
GONE = (
    "jenkins signed it in targets/jenkins; jenkins is no longer in ci, "
    "so Gatehouse removed that role"
)


def console(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def tag_row(html: str, tag: str) -> str:
    """The signed-tags table row of ``tag``."""
    table = html.split('id="signed-tags-table"', 1)[1].split("</table>", 1)[0]
    match = re.search(rf'<tr data-tag="{re.escape(tag)}".*?</tr>', table, re.S)
    assert match, table
    return match.group(0)


def test_a_signed_tag_passes_then_says_its_signer_left_the_team(world, admin):
    jenkins = world.person("jenkins", "ci").user
    gun = world.repository("ci")
    world.policy("ci")
    repository = Repository.objects.get(gun=gun)
    page = f"/repositories/{repository.pk}/"
    world.sign("jenkins", gun, "1.0", A)

    row = tag_row(console(jenkins).get(page).text, "1.0")
    assert 'data-passes="true"' in row
    assert "Passes" in row
    assert f"sha256:{A}"[:19] in row
    assert '<span class="mono">jenkins</span> in <code>targets/jenkins</code>' in row

    world.sign("jenkins", gun, "2.0", B)
    team_member_remove(actor=admin, team=Team.objects.get(name="ci"), user=jenkins)

    # Before the sync his role is still there: the evaluation says he is not in ci.
    before = world.evaluate(f"{gun}:1.0")
    assert before["decision"] == "denied"
    (step,) = before["next_steps"]
    assert step["reason"] == NOT_IN_TEAM
    assert step["why"] == (
        "jenkins signed it in targets/jenkins; jenkins is no longer in ci, "
        "so the next sync removes that role"
    )
    assert "ask an admin to add jenkins to ci" in step["step"]
    before_page = tag_row(console(admin).get(page).text, "1.0")
    assert 'data-passes="false"' in before_page
    assert "jenkins is no longer in ci" in before_page

    world.sync()  # his role goes, and targets/releases is rebuilt without his tags

    html = console(admin).get(page).text
    for tag in ("1.0", "2.0"):
        row = tag_row(html, tag)
        assert 'data-passes="false"' in row
        assert "No longer signed" in row
        assert GONE in row
        assert "jenkins then signs it again" in row
    assert set(SignedTag.objects.filter(gun=gun).values_list("tag", "role", "signer")) == {
        ("1.0", "targets/jenkins", jenkins.pk),
        ("2.0", "targets/jenkins", jenkins.pk),
    }

    check = console(admin).get(f"/content-trust/check/?image={quote(f'{gun}:1.0')}")
    assert check.status_code == 200
    assert GONE in check.text
    assert 'data-reason="not_in_team"' in check.text
    assert 'data-reason="unknown_tag"' not in check.text

    after = world.evaluate(f"{gun}:1.0")
    assert after["digest"] is None
    assert [step["reason"] for step in after["next_steps"]] == [NOT_IN_TEAM]
    assert after["next_steps"][0]["why"] == GONE


def test_a_tag_nobody_signed_is_unknown_and_says_how_to_sign(world, admin):
    world.person("jenkins", "ci")
    gun = world.repository("ci")
    world.policy("ci")
    world.sign("jenkins", gun, "1.0", A)

    result = world.evaluate(f"{gun}:9.9")

    assert [step["reason"] for step in result["next_steps"]] == ["unknown_tag"]
    assert "DOCKER_CONTENT_TRUST=1" in result["next_steps"][0]["step"]
    missing = world.evaluate("test.gatehouse/never-created:1.0")
    assert [step["reason"] for step in missing["next_steps"]] == ["no_trust_data"]
