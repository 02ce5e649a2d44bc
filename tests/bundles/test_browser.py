"""Client bundles in a real browser: download one from My profile, then sign with its key."""

import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from bundles.models import PublicKey
from bundles.services import bundle_issue, public_key_revoke
from tests.bundles.helpers import open_bundle
from tests.bundles.test_joined_repositories import publish_desired
from tests.factories import PASSWORD, make_team, make_user
from tests.trust.helpers import run_jobs, runner_replace
from trust.models import Job, Repository

pytestmark = pytest.mark.browser

# Written for a person to look at after a run; nothing compares it.
PROFILE_SCREENSHOT = Path(tempfile.gettempdir()) / "gatehouse-profile.png"
SIGNING_SCREENSHOT = Path(tempfile.gettempdir()) / "gatehouse-profile-signing.png"


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
    bundle_form.get_by_label("Use as signing key").uncheck()  # ticked unless unticked
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
    # Alice signs for no team: the page says where the key joined, i.e. nowhere yet.
    expect(page.locator("#key-repositories")).to_contain_text(
        f"Key {key.id[:12]} joined no repository: no team of alice signs one yet."
    )
    page.screenshot(path=PROFILE_SCREENSHOT, full_page=True)


def test_a_signing_bundle_shows_its_repositories_join_and_the_guide(
    transactional_db, admin, browser_page, monkeypatch
):
    """The default download signs; the page lists the repositories the key joined as
    pending, and turns them to "In Notary" by itself once their syncs have run."""
    jenkins = make_user("jenkins")
    ci = make_team("ci", members=(jenkins,), actor=admin)
    Repository.objects.create(gun="registry.example.com/ci/web", state="ready").signer_teams.add(ci)
    page = browser_page
    page.goto("/profile/")
    page.get_by_label("Username").fill("jenkins")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    bundle_form = page.locator("form[data-download]")
    expect(bundle_form.get_by_label("Use as signing key")).to_be_checked()
    with page.expect_download():
        bundle_form.get_by_role("button", name="Download client bundle").click()

    key = PublicKey.objects.get(user=jenkins)
    joined = page.locator("#key-repositories")
    expect(joined).to_contain_text(f"Key {key.id[:12]} joined 1 repository:")
    expect(joined.locator("li")).to_have_text("registry.example.com/ci/web Pending")
    expect(page.locator("#sign-guide-role")).to_have_text("targets/jenkins")
    expect(page.locator("#sign-guide-key")).to_contain_text(
        "notary key import key.pem --role targets/jenkins"
    )

    runner_replace(monkeypatch, Job.Kind.SYNC, publish_desired)
    run_jobs()  # the worker's part; the page follows the job, then loads itself again
    expect(joined.locator("li")).to_have_text("registry.example.com/ci/web In Notary")
    page.screenshot(path=SIGNING_SCREENSHOT, full_page=True)
