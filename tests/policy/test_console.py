"""The content-trust console: the policy page and the image check, as a browser user meets
them. No Notary is needed: a disabled policy and exempt repositories are decided without
trust data, and an unreachable Notary is a closed port."""

import socket

import pytest

from policy import rules
from policy.models import PolicyVersion
from policy.selectors import policy_current, policy_get, policy_settings
from policy.services import policy_apply, policy_update
from tests.factories import make_team
from trust.trust_data import forget

pytestmark = pytest.mark.django_db

GUN = "registry.example.com/ci/app"


@pytest.fixture(autouse=True)
def fresh_trust_cache():
    forget()
    yield
    forget()


@pytest.fixture
def teams(admin, alice):
    return make_team("ci", members=(alice,), actor=admin), make_team("dev", actor=admin)


@pytest.fixture
def as_admin(client, admin, teams):
    client.force_login(admin)
    return client


@pytest.fixture
def as_alice(client, alice, teams):
    client.force_login(alice)
    return client


def enable(admin, **changes) -> None:
    settings = {"enabled": True, "mode": "enforced", "signing_team_names": ["ci"]}
    policy_update(actor=admin, **{**settings, "allow_repos": [], **changes})


def policy_form(**changes) -> dict:
    return {
        "enabled": "on",
        "signing_teams": ["ci"],
        "mode": "enforced",
        "allow_repos": "",
        **changes,
    }


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def form_errors(response, form: str = "form") -> dict[str, list[str]]:
    return {field: list(errors) for field, errors in response.context[form].errors.items()}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- Access ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/content-trust/", "/content-trust/check/"])
def test_anonymous_visitor_is_sent_to_log_in(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response.url == f"/login/?next={path}"


def test_the_content_trust_page_is_built(as_admin):
    response = as_admin.get("/content-trust/")

    assert response.status_code == 200
    assert response.templates[0].name == "policy/content_trust.html"


def test_a_user_reads_the_policy_but_cannot_change_it(as_alice, admin):
    enable(admin, allow_repos=["registry.example.com/sandbox/*"])

    page = as_alice.get("/content-trust/")
    assert page.status_code == 200
    assert "policy_form" not in page.context
    assert '<form method="post" action="/content-trust/"' not in page.text
    assert "Only admins change the policy." in page.text
    assert "registry.example.com/sandbox/*" in page.text
    assert "Enforced: deny what fails" in page.text

    refused = as_alice.post("/content-trust/", policy_form(enabled=""))
    assert refused.status_code == 403
    assert policy_get().enabled is True


def test_the_sidebar_offers_the_check_to_everyone(as_alice):
    page = as_alice.get("/content-trust/check/")

    assert '<a href="/content-trust/check/" aria-current="page">Check an image</a>' in page.text


# --- The policy page ---------------------------------------------------------------------


def test_the_form_shows_the_policy_as_it_is(as_admin, admin):
    enable(admin, mode="permissive", allow_repos=["a.example/*", "b.example/x"])

    form = as_admin.get("/content-trust/").context["policy_form"]

    assert form.initial == {
        "version": 1,
        "enabled": True,
        "mode": "permissive",
        "signing_teams": ["ci"],
        "allow_repos": "a.example/*\nb.example/x",
    }
    assert [choice[0] for choice in form.fields["signing_teams"].choices] == ["ci", "dev"]


def test_admin_saves_the_policy_and_is_told_what_changed(as_admin, admin):
    response = as_admin.post("/content-trust/", policy_form(), follow=True)

    assert response.redirect_chain == [("/content-trust/", 302)]
    assert messages_of(response) == ["Saved: enabled, signing teams."]
    assert policy_settings(policy_get()) == {
        "enabled": True,
        "mode": "enforced",
        "signing_teams": ["ci"],
        "allow_repos": [],
        "exempt_namespaces": ["kube-system"],
    }
    (version,) = PolicyVersion.objects.all()
    assert (version.number, version.actor, version.changed) == (
        1,
        admin,
        ["enabled", "default.require"],
    )

    again = as_admin.post("/content-trust/", policy_form(), follow=True)
    assert messages_of(again) == ["Nothing changed."]
    assert PolicyVersion.objects.count() == 1


def test_several_teams_patterns_and_the_mode_are_saved(as_admin):
    response = as_admin.post(
        "/content-trust/",
        policy_form(
            signing_teams=["dev", "ci"],
            mode="permissive",
            allow_repos="  registry.example.com/sandbox/*\n\nnginx\r\nnginx\n",
        ),
        follow=True,
    )

    assert messages_of(response) == [
        "Saved: enabled, default rule's mode, signing teams, exemptions."
    ]
    # The version names what changed in the rules: the exemptions are a new rule.
    assert response.context["history"][0]["changed"] == (
        "enabled, default rule's mode, default rule's signers, rule exempt-repositories"
    )
    assert policy_settings(policy_get()) == {
        "enabled": True,
        "mode": "permissive",
        "signing_teams": ["ci", "dev"],
        "allow_repos": ["registry.example.com/sandbox/*", "docker.io/library/nginx"],
        "exempt_namespaces": ["kube-system"],
    }


def test_turning_it_off_keeps_the_rest(as_admin, admin):
    enable(admin)

    response = as_admin.post("/content-trust/", policy_form(enabled=""), follow=True)

    assert messages_of(response) == ["Saved: enabled."]
    assert policy_get().enabled is False
    assert policy_settings(policy_get()) == {
        "enabled": False,
        "mode": "enforced",
        "signing_teams": ["ci"],
        "allow_repos": [],
        "exempt_namespaces": ["kube-system"],
    }


def test_a_save_keeps_the_rules_the_form_does_not_show(as_admin, admin):
    """The form holds UCP's settings only: a scoped rule and its team count stay as they
    are, and the history names the rule a change added."""
    policy_apply(
        actor=admin,
        document={
            "enabled": True,
            "default": {"mode": "enforced", "require": {"teams": [{"team": "ci"}]}},
            "rules": [
                {
                    "name": "prod",
                    "images": ["registry.example.com/prod/*"],
                    "mode": "enforced",
                    "require": {"teams": [{"team": "dev", "count": 2}]},
                }
            ],
        },
    )

    response = as_admin.post("/content-trust/", policy_form(mode="permissive"), follow=True)

    assert messages_of(response) == ["Saved: default rule's mode."]  # the form's label
    policy = policy_current()
    assert policy.default.mode == rules.PERMISSIVE
    assert policy.rules == (
        rules.Rule(
            "prod",
            rules.ENFORCED,
            rules.Requirement((rules.TeamQuota("dev", 2),)),
            images=("registry.example.com/prod/*",),
        ),
    )
    history = [row["changed"] for row in response.context["history"]]
    assert history == [
        "default rule's mode",
        "enabled, default rule's signers, rule exempt-namespaces, rule prod",
    ]


@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        ({"signing_teams": ["ci", "ghost"]}, "signing_teams", "Unknown team: ghost."),
        (
            {"allow_repos": "ok.example/*\nUpper/Case"},
            "allow_repos",
            "'Upper/Case': registry host 'Upper' must be lowercase",
        ),
        ({"allow_repos": "x/*\n" * 201}, "allow_repos", "At most 200 patterns."),
        ({"mode": "lenient"}, "mode", "Select a valid choice."),
        ({"mode": ""}, "mode", "This field is required."),
    ],
)
def test_bad_input_shows_on_the_form_and_changes_nothing(as_admin, change, field, error):
    response = as_admin.post("/content-trust/", policy_form(**change))

    assert response.status_code == 200
    errors = form_errors(response, "policy_form")
    assert list(errors) == [field]
    assert errors[field][0].startswith(error)
    assert error in response.text.replace("&#x27;", "'")
    assert policy_get().version == 0
    assert not PolicyVersion.objects.exists()


def test_the_history_lists_the_ten_latest_versions(as_admin, admin, alice):
    for number in range(12):
        enable(admin if number % 2 else alice, allow_repos=[f"r{number}.example/*"])

    page = as_admin.get("/content-trust/")

    rows = page.context["history"]
    assert [row["version"].number for row in rows] == list(range(12, 2, -1))
    assert rows[0]["changed"] == "rule exempt-repositories's images"
    assert rows[-1]["changed"] == "rule exempt-repositories's images"
    assert rows[0]["version"].actor == admin
    table = page.text.split('<table class="table history">')[1].split("</table>")[0]
    assert table.count("<tr>") == 10 + 1  # the heading row


def test_without_history_the_page_says_so(as_admin):
    assert "The policy has never been changed" in as_admin.get("/content-trust/").text


# --- The image check ---------------------------------------------------------------------


def test_the_empty_check_page_shows_only_the_form(as_alice):
    page = as_alice.get("/content-trust/check/")

    assert page.status_code == 200
    assert page.context["evaluation"] is None
    assert not page.context["form"].is_bound


def test_with_content_trust_off_nothing_is_denied(as_alice):
    page = as_alice.get("/content-trust/check/", {"image": "nginx"})

    evaluation = page.context["evaluation"]
    assert evaluation.decision == "not_enforced"
    assert evaluation.image == "docker.io/library/nginx:latest"
    assert 'data-decision="not_enforced">Not enforced</span>' in page.text
    assert "Content trust is disabled" in page.text
    assert "Content trust is off: nothing is denied." in page.text


def test_an_exempt_image_is_allowed_and_names_the_pattern(as_alice, admin):
    enable(admin, allow_repos=["registry.example.com/sandbox/*"])

    page = as_alice.get("/content-trust/check/", {"image": "registry.example.com/sandbox/app:2"})

    assert page.context["evaluation"].decision == "allowed"
    assert 'data-decision="allowed">Allowed</span>' in page.text
    assert (
        "Exempt: rule exempt-repositories matches by image pattern "
        "registry.example.com/sandbox/*, and its mode is off"
    ) in page.text
    assert "Not read: the policy does not apply here" in page.text


def test_a_malformed_reference_is_a_form_error(as_alice):
    page = as_alice.get("/content-trust/check/", {"image": "Not A Valid::ref"})

    assert page.status_code == 200
    assert page.context["evaluation"] is None
    (error,) = form_errors(page)["image"]
    assert "is not a valid image reference" in error


def test_an_empty_reference_is_a_form_error(as_alice):
    page = as_alice.get("/content-trust/check/", {"image": ""})

    assert form_errors(page) == {"image": ["This field is required."]}


def test_an_unreachable_notary_is_an_error_message_not_a_500(as_alice, admin, settings):
    enable(admin)
    settings.NOTARY_URL = f"http://127.0.0.1:{closed_port()}"

    page = as_alice.get("/content-trust/check/", {"image": f"{GUN}:1.0"})

    assert page.status_code == 503
    assert page.context["evaluation"] is None
    (message,) = messages_of(page)
    assert message.startswith("Notary cannot be reached, so nothing is verified: ")
    assert "Connection refused" in message
    assert 'class="message message-error"' in page.text
    assert 'data-reason="notary_unreachable"' in page.text
    assert "Try again in a minute." in page.text


def record_decision():
    from policy.models import AdmissionDecision

    return AdmissionDecision.objects.create(
        uid="u-1",
        webhook="validate",
        namespace="prod",
        kind="Deployment",
        name="web",
        operation="CREATE",
        allowed=False,
        failing=[{"image": "registry.example.com/ci/app:2.0", "reasons": ["team ci unsatisfied"]}],
    )


def test_the_admission_page_shows_the_webhook_and_the_decisions_to_admins(client, admin):
    record_decision()
    client.force_login(admin)
    page = client.get("/content-trust/admission/").content.decode()
    assert "/api/v1/admission/validate/" in page
    assert "admission_service_account" in page
    assert "prod/web" in page
    assert "registry.example.com/ci/app:2.0" in page
    assert "Denied" in page
    assert 'href="/content-trust/admission/"' in client.get("/content-trust/").content.decode()


def test_a_decision_without_failing_images_shows_its_reason(client, admin):
    """A fail-closed denial names no image: the log says why instead of a dash."""
    from policy.models import AdmissionDecision

    AdmissionDecision.objects.create(
        uid="u-2",
        webhook="validate",
        namespace="prod",
        kind="Workflow",
        name="build",
        operation="CREATE",
        allowed=False,
        message="a Workflow (argoproj.io) whose images cannot be found; failing closed",
    )
    client.force_login(admin)
    page = client.get("/content-trust/admission/").content.decode()
    assert "whose images cannot be found; failing closed" in page


def test_the_admission_decision_log_is_for_admins_only(client, alice, admin):
    """Not on the content-trust page everyone reads, not in a non-admin's sidebar, and a 403
    on its own page."""
    record_decision()
    client.force_login(alice)
    assert client.get("/content-trust/admission/").status_code == 403
    for path in ("/content-trust/", "/content-trust/check/", "/"):
        page = client.get(path).content.decode()
        assert "prod/web" not in page, path
        assert "/content-trust/admission/" not in page, path
    client.force_login(admin)
    sidebar = client.get("/").content.decode().split('<nav aria-label="Console">')[1]
    assert 'href="/content-trust/admission/"' in sidebar.split("</nav>")[0]


def test_a_form_opened_before_someone_else_saved_is_refused_not_saved_over(as_admin, admin):
    """The quick form carries the version it showed: a save over a newer version would
    silently undo another admin's change, so it is refused and says so."""
    shown = as_admin.get("/content-trust/")
    assert 'name="version" value="0"' in shown.text
    policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )

    response = as_admin.post("/content-trust/", {**policy_form(mode="permissive"), "version": 0})

    assert response.status_code == 200
    assert "The policy is at version 1, not 0" in response.text
    assert policy_current().default.mode == rules.ENFORCED
    assert policy_get().version == 1
