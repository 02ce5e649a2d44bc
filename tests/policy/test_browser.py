"""The content-trust console in a real browser: an admin turns the policy on, then checks an
image. The image's repository is exempt, so no Notary is needed."""

import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from policy.models import PolicyVersion
from tests.browser import log_in
from tests.factories import make_team
from trust.trust_data import forget

pytestmark = pytest.mark.browser

# Written for a person to look at after a run; nothing compares them.
POLICY_SCREENSHOT = Path(tempfile.gettempdir()) / "gatehouse-policy.png"
CHECK_SCREENSHOT = Path(tempfile.gettempdir()) / "gatehouse-check.png"


def test_admin_enables_content_trust_then_checks_an_exempt_image(
    transactional_db, admin, browser_page
):
    forget()
    make_team("ci", actor=admin)
    make_team("dev", actor=admin)
    page = browser_page
    log_in(page)

    page.get_by_role("link", name="Content Trust", exact=True).click()
    expect(page.get_by_role("heading", name="Content Trust")).to_contain_text("Off")
    policy = page.locator("#policy")
    policy.get_by_label("Run only signed images").check()
    policy.get_by_label("ci", exact=True).check()
    expect(policy.get_by_label("Enforced: deny what fails")).to_be_checked()
    policy.get_by_label("Exemptions").fill("registry.example.com/sandbox/*\n")
    policy.get_by_role("button", name="Save policy").click()

    expect(page.get_by_role("status")).to_have_text("Saved: enabled, signing teams, exemptions.")
    expect(page.get_by_role("heading", name="Content Trust")).to_contain_text("Enforced")
    expect(policy.get_by_label("Run only signed images")).to_be_checked()
    expect(policy.get_by_label("ci", exact=True)).to_be_checked()
    expect(policy.get_by_label("dev", exact=True)).not_to_be_checked()
    history = page.locator("table.history tbody tr")
    expect(history).to_have_count(1)
    expect(history).to_contain_text("enabled, default rule's signers, rule exempt-repositories")
    expect(history).to_contain_text("root")
    no_teams = {"match": "all", "teams": []}
    assert PolicyVersion.objects.get().policy == {
        "enabled": True,
        "default": {
            "mode": "enforced",
            "require": {"match": "all", "teams": [{"team": "ci", "count": 1}]},
        },
        "rules": [
            {
                "name": "exempt-namespaces",
                "images": [],
                "namespaces": ["kube-system"],
                "mode": "off",
                "require": no_teams,
            },
            {
                "name": "exempt-repositories",
                "images": ["registry.example.com/sandbox/*"],
                "namespaces": [],
                "mode": "off",
                "require": no_teams,
            },
        ],
    }
    page.screenshot(path=POLICY_SCREENSHOT, full_page=True)

    page.get_by_role("link", name="Check an image").first.click()
    page.get_by_label("Image").fill("registry.example.com/sandbox/app:1.0")
    page.get_by_role("button", name="Check image").click()

    result = page.locator("section.evaluation")
    expect(result.locator("[data-decision]").first).to_have_text("Allowed")
    expect(result).to_contain_text("registry.example.com/sandbox/app:1.0")
    expect(result.locator(".reasons")).to_contain_text(
        "Exempt: rule exempt-repositories matches by image pattern "
        "registry.example.com/sandbox/*, and its mode is off"
    )
    expect(page).to_have_url(  # a GET: the answer has an address to share
        "/content-trust/check/?image=registry.example.com%2Fsandbox%2Fapp%3A1.0&namespace="
    )
    page.screenshot(path=CHECK_SCREENSHOT, full_page=True)
