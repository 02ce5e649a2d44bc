"""The console's rules: the table in precedence terms, the editor whose every change is
previewed before it is saved, the "which rule applies" box, and the history with its diffs
and one-click revert. No Notary is needed: previews judge recorded findings only."""

import re

import pytest

from policy.models import AdmissionDecision, PolicyVersion
from policy.selectors import policy_current, policy_get
from policy.services import policy_apply
from tests.factories import make_team, make_user

pytestmark = pytest.mark.django_db

PROD = {
    "name": "prod",
    "images": ["registry.example.com/prod/**"],
    "namespaces": ["prod"],
    "mode": "enforced",
    "require": {"match": "all", "teams": [{"team": "security", "count": 2}, {"team": "ci"}]},
}
SANDBOX = {
    "name": "sandbox",
    "images": ["registry.example.com/sandbox/*"],
    "mode": "off",
}
DOCUMENT = {
    "enabled": True,
    "default": {"mode": "enforced", "require": {"teams": [{"team": "ci"}]}},
    "rules": [PROD, SANDBOX],
}
NEW_RULE = {
    "name": "web",
    "images": "registry.example.com/web/*\n",
    "namespaces": "",
    "mode": "permissive",
    "requirement": "2 of security, ci",
    "match": "any",
    "position": "1",
}


@pytest.fixture
def teams(admin, alice):
    security = [make_user(f"sec{n}") for n in range(2)]
    return (
        make_team("security", members=tuple(security), actor=admin),
        make_team("ci", members=(alice,), actor=admin),
    )


@pytest.fixture
def policy(admin, teams):
    """Version 1: the two rules above."""
    policy_apply(actor=admin, document=DOCUMENT)
    return policy_get()


@pytest.fixture
def as_admin(client, admin, policy):
    client.force_login(admin)
    return client


@pytest.fixture
def as_alice(client, alice, policy):
    client.force_login(alice)
    return client


def form_errors(response, form: str = "form") -> dict[str | None, list[str]]:
    return {
        field if field != "__all__" else None: list(errors)
        for field, errors in response.context[form].errors.items()
    }


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def saved(response) -> dict[str, str]:
    """The hidden draft and version of a preview page, as its Save button posts them."""
    return response.context["save_form"].initial


def rule_names() -> list[str]:
    return [rule.name for rule in policy_current().rules]


# --- The table ---------------------------------------------------------------------------


def test_the_rules_table_lists_the_rules_in_order_and_explains_precedence(as_alice):
    page = as_alice.get("/content-trust/")

    assert page.status_code == 200
    assert re.findall(r'data-rule="([^"]+)"', page.text) == ["prod", "sandbox", "default"]
    row = page.text.split('data-rule="prod"')[1].split("</tr>")[0]
    assert "registry.example.com/prod/**" in row
    assert ">prod</code>" in row
    assert "Enforced" in row
    assert "2 of security and 1 of ci" in row
    assert "none: nothing is checked" in page.text.split('data-rule="sandbox"')[1]
    assert "The most specific rule wins." in page.text
    assert (
        "a rule naming the exact namespace beats one matching it by a pattern, which beats a "
        "rule for all namespaces" in page.text
    )
    assert "a pattern with more literal characters beats one with fewer" in page.text
    assert "A tie goes to the rule listed first." in page.text


def test_an_enforced_image_rule_over_a_default_that_is_not_enforced_is_warned_about(
    as_alice, admin
):
    assert 'id="escapable"' not in as_alice.get("/content-trust/").text  # default enforced
    policy_apply(
        actor=admin,
        document={**DOCUMENT, "default": {"mode": "permissive", "require": {"teams": []}}},
    )
    page = as_alice.get("/content-trust/").text
    assert 'id="escapable"' in page
    assert "Keep the default rule enforced" in page


def test_a_user_sees_no_editor(as_alice):
    page = as_alice.get("/content-trust/")

    assert "Add a rule" not in page.text
    assert "Move up" not in page.text
    assert "/content-trust/rules/prod/edit/" not in page.text
    assert "Edit as YAML" not in page.text


def test_an_admin_gets_the_editor_for_every_rule(as_admin):
    page = as_admin.get("/content-trust/")

    assert 'href="/content-trust/rules/new/"' in page.text
    assert 'href="/content-trust/rules/prod/edit/"' in page.text
    assert 'href="/content-trust/yaml/"' in page.text
    prod = page.text.split('data-rule="prod"')[1].split("</tr>")[0]
    sandbox = page.text.split('data-rule="sandbox"')[1].split("</tr>")[0]
    assert "Move down" in prod
    assert "Move up" not in prod
    assert "Move up" in sandbox
    assert "Move down" not in sandbox
    assert "Delete" in prod
    assert "Delete" in sandbox


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/content-trust/rules/new/", NEW_RULE),
        ("/content-trust/rules/prod/edit/", {**NEW_RULE, "name": "prod"}),
        ("/content-trust/rules/prod/delete/", {}),
        ("/content-trust/rules/prod/move/", {"direction": "down"}),
        ("/content-trust/yaml/", {"document": "enabled: false\n", "version": "1"}),
        ("/content-trust/save/", {"draft": '{"enabled": false}', "version": "1"}),
        ("/content-trust/history/1/revert/", {"version": "1"}),
    ],
)
def test_a_user_may_not_edit_the_rules(as_alice, path, data):
    assert as_alice.post(path, data).status_code == 403
    assert policy_get().version == 1


@pytest.mark.parametrize(
    "path", ["/content-trust/rules/new/", "/content-trust/rules/prod/edit/", "/content-trust/yaml/"]
)
def test_a_user_may_not_open_the_editor(as_alice, path):
    assert as_alice.get(path).status_code == 403


# --- The editor and its preview ---------------------------------------------------------


def test_adding_a_rule_shows_its_preview_and_saves_nothing(as_admin):
    form = as_admin.get("/content-trust/rules/new/").context["form"]
    assert form.initial == {"mode": "enforced", "match": "all", "position": 3}

    response = as_admin.post("/content-trust/rules/new/", NEW_RULE)

    assert response.status_code == 200
    assert response.templates[0].name == "policy/preview.html"
    changes = {
        change.field: (change.before, change.after) for change in response.context["changes"]
    }
    assert changes["rules.web.require"] == (None, "2 of security or 1 of ci")
    assert changes["rules.web.mode"] == (None, "permissive")
    assert changes["rules.prod.position"] == ("1", "2")
    assert "Not saved yet." in response.text
    assert re.findall(r'data-rule="([^"]+)"', response.text) == [
        "web",
        "prod",
        "sandbox",
        "default",
    ]
    assert policy_get().version == 1
    assert rule_names() == ["prod", "sandbox"]


def test_saving_the_preview_makes_a_new_version(as_admin, admin):
    preview = as_admin.post("/content-trust/rules/new/", NEW_RULE)

    response = as_admin.post("/content-trust/save/", saved(preview), follow=True)

    assert response.redirect_chain == [("/content-trust/", 302)]
    assert policy_get().version == 2
    assert messages_of(response) == ["Saved as version 2."]
    assert rule_names() == ["web", "prod", "sandbox"]
    web = policy_current().rules[0]
    assert web.requirement.describe() == "2 of security or 1 of ci"
    assert web.images == ("registry.example.com/web/*",)
    assert PolicyVersion.objects.get(number=2).actor == admin
    assert re.findall(r'data-rule="([^"]+)"', response.text)[:1] == ["web"]


def test_a_save_after_someone_elses_is_refused_with_a_fresh_preview(as_admin, admin):
    preview = as_admin.post("/content-trust/rules/new/", NEW_RULE)
    policy_apply(actor=admin, document={**DOCUMENT, "enabled": False})  # version 2, meanwhile

    response = as_admin.post("/content-trust/save/", saved(preview))

    assert response.status_code == 409
    assert "Not saved: the policy changed while you worked." in response.text
    assert "Someone saved version 2 after your draft was made from version 1." in response.text
    assert policy_get().version == 2
    assert rule_names() == ["prod", "sandbox"]
    # The fresh preview compares the draft with version 2, and saves over it if confirmed.
    changes = {
        change.field: (change.before, change.after) for change in response.context["changes"]
    }
    assert changes["enabled"] == ("false", "true")
    assert saved(response)["version"] == 2

    again = as_admin.post("/content-trust/save/", saved(response), follow=True)
    assert policy_get().version == 3
    assert rule_names() == ["web", "prod", "sandbox"]
    assert messages_of(again) == ["Saved as version 3."]


def test_the_preview_counts_and_lists_the_images_a_draft_changes(as_admin):
    for number in range(3):
        AdmissionDecision.objects.create(
            uid=f"u-{number}",
            webhook="validate",
            namespace="web",
            kind="Pod",
            name="web",
            operation="CREATE",
            allowed=False,
            images=[{"image": "registry.example.com/web/app:1", "examined": False}],
        )

    response = as_admin.post("/content-trust/rules/new/", {**NEW_RULE, "mode": "off"})

    preview = response.context["preview"]
    assert (preview.newly_allowed, preview.newly_denied) == (3, 0)
    listed = response.text.split("Newly allowed")[1]
    assert "registry.example.com/web/app:1" in listed
    assert ">unread</span>" in listed
    assert ">Denied</span>" in listed
    assert ">Not_enforced</span>" not in listed
    assert 'by rule</span> <span class="mono">default</span>' in listed
    assert 'by rule</span> <span class="mono">web</span>' in listed


def test_editing_a_rule_starts_from_it_and_previews_the_change(as_admin):
    form = as_admin.get("/content-trust/rules/prod/edit/").context["form"]
    assert form.initial == {
        "name": "prod",
        "images": "registry.example.com/prod/**",
        "namespaces": "prod",
        "mode": "enforced",
        "requirement": "2 of security, 1 of ci",
        "match": "all",
        "position": 1,
    }

    response = as_admin.post(
        "/content-trust/rules/prod/edit/",
        {**form.initial, "requirement": "1 of security", "position": "2"},
    )

    changes = {
        change.field: (change.before, change.after) for change in response.context["changes"]
    }
    assert changes == {
        "rules.prod.position": ("1", "2"),
        "rules.prod.require": ("2 of security and 1 of ci", "1 of security"),
        "rules.sandbox.position": ("2", "1"),
    }
    assert policy_get().version == 1


def test_deleting_and_moving_a_rule_are_previewed_first(as_admin):
    deleted = as_admin.post("/content-trust/rules/sandbox/delete/")
    assert deleted.templates[0].name == "policy/preview.html"
    assert {c.field: c.kind for c in deleted.context["changes"]}["rules.sandbox.mode"] == "removed"

    moved = as_admin.post("/content-trust/rules/prod/move/", {"direction": "down"})
    assert [(c.field, c.before, c.after) for c in moved.context["changes"]] == [
        ("rules.prod.position", "1", "2"),
        ("rules.sandbox.position", "2", "1"),
    ]
    assert rule_names() == ["prod", "sandbox"]

    as_admin.post("/content-trust/save/", saved(moved))
    assert rule_names() == ["sandbox", "prod"]


def test_an_unknown_rule_is_not_found(as_admin):
    assert as_admin.get("/content-trust/rules/nope/edit/").status_code == 404
    assert as_admin.post("/content-trust/rules/nope/delete/").status_code == 404


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"requirement": "two of security"}, "requirement", "'two of security' is not a team"),
        ({"requirement": "0 of ci"}, "requirement", "the count is 1 to 100"),
        ({"requirement": "1 of nobody"}, "requirement", "Unknown team: nobody."),
        ({"name": "prod"}, "name", "A rule named prod exists already"),
        ({"name": "Web"}, "name", "must be at most 63 lowercase letters"),
        ({"images": "", "namespaces": ""}, "images", "a rule scopes images, namespaces or both"),
        ({"images": "a b"}, "images", "a b"),
        ({"namespaces": "Prod"}, "namespaces", "is not a namespace name or pattern"),
        ({"position": "4"}, "position", "The position is 1 to 3."),
    ],
)
def test_the_editor_names_the_field_that_is_wrong(as_admin, changes, field, message):
    response = as_admin.post("/content-trust/rules/new/", {**NEW_RULE, **changes})

    assert response.status_code == 400
    errors = form_errors(response)
    assert field in errors, errors
    assert any(message in error for error in errors[field]), errors
    assert policy_get().version == 1


# --- YAML -------------------------------------------------------------------------------


def test_the_yaml_editor_holds_the_whole_policy_and_previews_it(as_admin):
    form = as_admin.get("/content-trust/yaml/").context["form"]
    text = form.initial["document"]
    assert form.initial["version"] == 1
    assert text.startswith("enabled: true\ndefault:\n  mode: enforced\n")
    assert "- name: prod\n" in text
    assert "mode: 'off'" in text

    response = as_admin.post(
        "/content-trust/yaml/",
        {"document": text.replace("count: 2", "count: 1"), "version": "1"},
    )

    assert response.templates[0].name == "policy/preview.html"
    assert [(c.field, c.before, c.after) for c in response.context["changes"]] == [
        ("rules.prod.require", "2 of security and 1 of ci", "1 of security and 1 of ci")
    ]
    assert policy_get().version == 1


def test_a_yaml_edit_with_a_bad_field_names_its_path(as_admin):
    text = as_admin.get("/content-trust/yaml/").context["form"].initial["document"]
    bad = text.replace("- name: prod\n", "- name: prod\n  scope: everything\n").replace(
        "count: 2", "count: 0"
    )

    response = as_admin.post("/content-trust/yaml/", {"document": bad, "version": "1"})

    assert response.status_code == 400
    errors = form_errors(response)["document"]
    assert "rules[0].scope: is not a field of this object." in errors
    assert "rules[0].require.teams[0].count: must be a whole number from 1 to 100." in errors
    assert "rules[0].scope" in response.text
    assert policy_get().version == 1


def test_yaml_that_does_not_parse_says_where(as_admin):
    response = as_admin.post(
        "/content-trust/yaml/", {"document": "enabled: true\nrules: [\n", "version": "1"}
    )

    assert response.status_code == 400
    (error,) = form_errors(response)["document"]
    assert error.startswith("This is not YAML at line 3")


def test_a_yaml_edit_made_from_an_old_version_is_refused_at_save(as_admin, admin):
    text = as_admin.get("/content-trust/yaml/").context["form"].initial["document"]
    policy_apply(actor=admin, document={**DOCUMENT, "rules": [PROD]})  # version 2

    preview = as_admin.post("/content-trust/yaml/", {"document": text, "version": "1"})
    assert next((c.field, c.kind) for c in preview.context["changes"]) == (
        "rules.sandbox.position",
        "added",
    )
    response = as_admin.post("/content-trust/save/", saved(preview))

    assert response.status_code == 409
    assert rule_names() == ["prod"]


# --- Which rule applies ----------------------------------------------------------------


def test_the_which_rule_box_names_the_rule_and_why(as_alice):
    page = as_alice.get(
        "/content-trust/",
        {"which-image": "registry.example.com/prod/app:1.0", "which-namespace": "prod"},
    )

    applied = page.context["applied"]
    assert applied.rule.name == "prod"
    answer = page.text.split('class="facts which-rule-answer"')[1].split("</dl>")[0]
    assert ">prod</span>" in answer
    assert "Enforced" in answer
    assert "2 of security and 1 of ci" in answer
    assert (
        "Rule prod matches by namespace name prod and image pattern registry.example.com/prod/**."
        in answer
    )


def test_without_a_namespace_the_default_rule_applies(as_alice):
    page = as_alice.get("/content-trust/", {"which-image": "registry.example.com/prod/app"})

    assert page.context["applied"].rule.name == "default"
    assert "No rule&#x27;s scope matches, so the default rule applies." in page.text


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"which-image": "Not An Image"}, "image"),
        ({"which-image": ""}, "image"),
        ({"which-image": "nginx", "which-namespace": "Prod_1"}, "namespace"),
    ],
)
def test_the_which_rule_box_refuses_bad_input(as_alice, query, field):
    page = as_alice.get("/content-trust/", query)

    assert page.context["applied"] is None
    assert field in form_errors(page, "which_form")


# --- History ---------------------------------------------------------------------------


def test_the_history_shows_each_version_with_its_diff(as_alice, admin):
    document = {**DOCUMENT, "rules": [{**PROD, "require": {"teams": [{"team": "security"}]}}]}
    policy_apply(actor=admin, document=document)

    page = as_alice.get("/content-trust/history/")

    assert page.status_code == 200
    versions = re.findall(r'<tbody data-version="(\d+)">', page.text)
    assert versions == ["2", "1"]
    second = page.text.split('data-version="2"')[1].split('data-version="1"')[0]
    assert "rules.prod.require" in second
    assert "<del>2 of security and 1 of ci</del>" in second
    assert "<ins>1 of security</ins>" in second
    assert "rules.sandbox.mode" in second
    assert "removed" in second
    assert "root" in second
    assert "Revert to this version" not in page.text  # not an admin


def test_a_revert_is_one_click_and_makes_a_new_version(as_admin, admin):
    policy_apply(actor=admin, document={**DOCUMENT, "rules": []})  # version 2
    page = as_admin.get("/content-trust/history/")
    assert page.text.count("Revert to this version") == 1  # not to the current one

    response = as_admin.post("/content-trust/history/1/revert/", {"version": "2"}, follow=True)

    assert response.redirect_chain == [("/content-trust/history/", 302)]
    assert messages_of(response) == ["Reverted to version 1: saved as version 3."]
    assert policy_get().version == 3
    assert rule_names() == ["prod", "sandbox"]
    assert re.findall(r'<tbody data-version="(\d+)">', response.text) == ["3", "2", "1"]


def test_a_revert_from_a_stale_history_is_refused(as_admin, admin):
    policy_apply(actor=admin, document={**DOCUMENT, "rules": []})  # version 2

    response = as_admin.post("/content-trust/history/1/revert/", {"version": "1"}, follow=True)

    assert messages_of(response)[0].startswith("Not reverted: The policy is at version 2, not 1")
    assert policy_get().version == 2
