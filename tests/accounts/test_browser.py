"""The identity console in a real browser: log in, create a user and a team, join them up."""

import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from accounts.models import Membership
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

# Written for a person to look at after a run; nothing compares it.
TEAM_PAGE_SCREENSHOT = Path(tempfile.gettempdir()) / "gatehouse-team.png"


def test_admin_creates_user_and_team_and_adds_the_member(transactional_db, admin, browser_page):
    page = browser_page
    page.goto("/")
    expect(page).to_have_url("/login/?next=/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Welcome, Root Admin")).to_be_visible()

    page.get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name="New user").click()
    page.get_by_label("Username").fill("jenkins")
    page.get_by_label("Full name").fill("Jenkins CI")
    page.get_by_label("Password", exact=True).fill("a-long-robot-passphrase")
    page.get_by_label("Password confirmation").fill("a-long-robot-passphrase")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_have_text("User jenkins created.")

    page.get_by_role("link", name="Teams", exact=True).click()
    page.get_by_role("link", name="New team").click()
    page.get_by_label("Name").fill("ci")
    page.get_by_label("Description").fill("Build pipelines that sign images")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("status")).to_have_text("Team ci created.")

    page.get_by_label("User").select_option("jenkins")
    page.get_by_role("button", name="Add member").click()

    expect(page.get_by_role("status")).to_have_text("jenkins added to ci.")
    members = page.get_by_role("table")
    expect(members.get_by_role("row", name="jenkins")).to_contain_text("Jenkins CI")
    assert Membership.objects.filter(team__name="ci", user__username="jenkins").exists()
    page.screenshot(path=TEAM_PAGE_SCREENSHOT, full_page=True)
