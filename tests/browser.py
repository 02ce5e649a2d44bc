"""What browser tests share: signing in through the login page, as a person would."""

from playwright.sync_api import Page, expect

from tests.factories import PASSWORD


def log_in(page: Page, username: str = "root") -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
