"""Client bundles in a real browser: download one from My profile, then sign with its key."""

import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from bundles.models import PublicKey
from bundles.services import bundle_issue, public_key_revoke
from tests.bundles.helpers import open_bundle
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

# Written for a person to look at after a run; nothing compares it.
PROFILE_SCREENSHOT = Path(tempfile.gettempdir()) / "gatehouse-profile.png"


def test_user_downloads_a_bundle_and_makes_its_key_a_signing_key(
    transactional_db, alice, browser_page
):
    # An older key, revoked: it stays listed, greyed, next to the new one.
    public_key_revoke(actor=alice, key=bundle_issue(user=alice, label="old laptop").key)
    page = browser_page
    page.goto("/profile/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Client bundle")).to_be_visible()

    bundle_form = page.locator("form[data-download]")
    bundle_form.get_by_label("Label").fill("laptop")
    with page.expect_download() as download_info:
        bundle_form.get_by_role("button", name="Download client bundle").click()
    download = download_info.value

    assert download.failure() is None
    assert download.suggested_filename == "gatehouse-bundle-alice.zip"
    files = open_bundle(Path(download.path()).read_bytes())
    assert "PRIVATE KEY" in files["key.pem"].decode()
    key = PublicKey.objects.get(user=alice, label="laptop")
    assert files["cert.pem"].decode() == key.certificate
    # The page loads again by itself and lists the new key.
    row = page.get_by_role("row").filter(has=page.locator(f'code[title="{key.id}"]'))
    expect(row).to_contain_text("Not signing")
    expect(row.get_by_role("textbox")).to_have_value("laptop")
    expect(page.get_by_role("status")).to_contain_text(f"with the new key {key.id[:12]}")

    switch = row.get_by_role("switch")
    expect(switch).to_have_attribute("aria-checked", "false")
    switch.click()

    expect(page.get_by_role("status")).to_have_text(f"Key {key.id[:12]} is now a signing key.")
    expect(row.get_by_role("switch")).to_have_attribute("aria-checked", "true")
    expect(row.locator(".badge")).to_have_text("Signing")
    key.refresh_from_db()
    assert key.is_signing_key
    page.screenshot(path=PROFILE_SCREENSHOT, full_page=True)
