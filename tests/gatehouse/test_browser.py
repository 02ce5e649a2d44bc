"""Sessions in a real browser: after logging out, Back shows no page of the session."""

import os
import re

import pytest
from playwright.sync_api import expect

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, require
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromiums():
    """Chromium as the other browser tests run it, and as people run it: with its
    back/forward cache, which Playwright turns off by default and which keeps a page in
    memory for Back. One Playwright for both (a second one cannot start in this thread)."""
    require(os.path.exists(CHROMIUM), "Chromium (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browsers = {
            "playwright's": playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS
            ),
            "with back/forward cache": playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGS,
                ignore_default_args=["--disable-back-forward-cache"],
            ),
        }
        yield browsers
        for browser in browsers.values():
            browser.close()


@pytest.fixture(params=["playwright's", "with back/forward cache"])
def tab(request, chromiums, live_server):
    context = chromiums[request.param].new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 800}
    )
    yield context.new_page()
    context.close()


def test_back_after_logging_out_shows_no_admin_page(transactional_db, admin, alice, tab):
    page = tab
    page.goto("/users/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    expect(page.get_by_role("cell", name="alice@example.com")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    expect(page.get_by_label("Username")).to_be_visible()

    # Back: a page the browser kept (in its HTTP cache, or whole in its back/forward cache,
    # which fires no load event) would show the user list again. With Cache-Control:
    # no-store it is asked for again, and the server sends the visitor to log in.
    page.go_back(wait_until="commit")

    expect(page).to_have_url(re.compile(r"/login/\?next=/users/$"))
    expect(page.get_by_label("Username")).to_be_visible()
    expect(page.get_by_role("cell", name="alice@example.com")).to_have_count(0)
    expect(page.get_by_role("heading", name="Users")).to_have_count(0)
