"""The rules editor in a real browser: an admin adds a rule, reads its preview, saves it and
finds it in the rules table. No Notary is needed: a preview judges recorded findings."""

import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from policy.selectors import policy_current, policy_get
from policy.services import policy_apply
from tests.browser import log_in
from tests.factories import make_team

pytestmark = pytest.mark.browser

# Written for a person to look at after a run; nothing compares them.
PREVIEW_SCREENSHOT = Path(tempfile.gettempdir()) / "gatehouse-rules-preview.png"
RULES_SCREENSHOT = Path(tempfile.gettempdir()) / "gatehouse-rules.png"


def test_admin_adds_a_rule_previews_it_and_saves_it(transactional_db, admin, browser_page):
    make_team("security", actor=admin)
    make_team("ci", actor=admin)
    policy_apply(
        actor=admin,
        document={
            "enabled": True,
            "default": {"mode": "enforced", "require": {"teams": [{"team": "ci"}]}},
            "rules": [],
        },
    )
    page = browser_page
    log_in(page)

    page.goto("/content-trust/")
    page.get_by_role("link", name="Add a rule").click()
    page.get_by_label("Rule name").fill("prod")
    page.get_by_label("Image patterns").fill("registry.example.com/prod/**")
    page.get_by_label("Namespaces").fill("prod")
    page.get_by_label("Permissive: evaluate and report, never deny").check()
    page.get_by_label("Requirement").fill("2 of security, 1 of ci")
    page.get_by_role("button", name="Preview").click()

    expect(page.get_by_role("heading", name="Preview the policy change")).to_be_visible()
    diff = page.locator("#diff table.diff")
    expect(diff.locator("tr", has_text="rules.prod.require")).to_contain_text(
        "2 of security and 1 of ci"
    )
    expect(diff.locator("tr", has_text="rules.prod.mode")).to_contain_text("permissive")
    expect(page.locator("#newly-denied")).to_have_text("0")
    assert policy_get().version == 1  # nothing saved yet
    page.screenshot(path=PREVIEW_SCREENSHOT, full_page=True)

    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("status")).to_have_text("Saved as version 2.")
    row = page.locator('#rules tr[data-rule="prod"]')
    expect(row).to_contain_text("registry.example.com/prod/**")
    expect(row).to_contain_text("Permissive")
    expect(row).to_contain_text("2 of security and 1 of ci")
    expect(page.locator("#rules tbody tr").last).to_contain_text("default")
    assert [rule.name for rule in policy_current().rules] == ["prod"]
    page.screenshot(path=RULES_SCREENSHOT, full_page=True)
