"""The whole journey in a real browser, as two people in separate browser contexts, using only
what the pages show: an admin sets Gatehouse up; jenkins downloads a bundle and signs with the
real ``notary`` CLI, following the commands his profile gives him; the repository page
follows; jenkins leaves the team and the page says why his tag no longer passes; twenty
repositories are created at once and their counter reaches twenty without a reload.

Everything is real: notary-server and notary-signer whose token service is this Gatehouse, a
Celery worker process on the Redis broker running the jobs, Chromium, the notary CLI.
"""

import hashlib
import shutil
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.bundles.helpers import run_guide, unzip_bundle
from tests.conftest import require
from tests.factories import PASSWORD
from tests.trust.conftest import start_worker, stop_worker

pytestmark = [pytest.mark.browser, pytest.mark.notary, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(tempfile.gettempdir()) / "gatehouse-journey"  # for a person to look at
JENKINS_PASSWORD = "a-long-robot-passphrase"
TAG = "1.0"
MANIFEST = b'{"schemaVersion": 2, "config": "jenkins built this"}'
BULK = 20
LIVE = 60_000  # ms: jobs run in the worker process; the pages follow without a reload


@pytest.fixture
def worker(token_notary, settings, tmp_path):
    """A real Celery worker on the Redis broker, running jobs against the token-guarded
    notary-server; the console enqueues, the worker runs, nothing in-process."""
    from gatehouse.celery import app

    require(settings.CELERY_BROKER_URL.startswith("redis://"), "Redis as the broker")
    app.control.purge()
    log = tmp_path / "worker.log"
    process = start_worker(
        log,
        NOTARY_URL=token_notary.url,
        GATEHOUSE_PUBLIC_URL=settings.GATEHOUSE_PUBLIC_URL,
        GATEHOUSE_SYNC_DELAY_SECONDS="0",
        GATEHOUSE_JOB_BACKOFF_SECONDS="0.5",
        GATEHOUSE_JOB_BACKOFF_MAX_SECONDS="2",
        NOTARY_TIMEOUT_SECONDS="10",
    )
    yield process
    stop_worker(process)
    print(log.read_text()[-5000:])


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def person(
    browser: Browser, base_url: str, username: str, password: str, errors: list[str]
) -> Page:
    """A browser context of one person's own, signed in; uncaught script errors on any of
    its pages go to ``errors``."""
    context = browser.new_context(
        base_url=base_url, viewport={"width": 1280, "height": 800}, accept_downloads=True
    )
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(f"{username}: {error}"))
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    return page


def sign_as_the_guide_says(page: Page, bundle: Path, *, notary_url: str, gun: str) -> str:
    """Run the commands jenkins's profile shows him, with the blanks filled in; return what
    ``notary list`` printed for his role."""
    steps = {
        slug: page.locator(f"#sign-guide-{slug}").inner_text()
        for slug in ("token", "key", "notary", "notary-cli", "check")
    }
    script = "\n".join(steps[slug] for slug in ("token", "key", "notary", "notary-cli", "check"))
    assert notary_url in script  # the guide names this installation's Notary
    result = run_guide(
        script,
        blanks={
            "<registry>/<repository>": gun,
            "<tag>": TAG,
            "<size>": str(len(MANIFEST)),
            "<digest>": hashlib.sha256(MANIFEST).hexdigest(),
        },
        bundle=bundle,
        home=bundle.parent / "home",
        password=JENKINS_PASSWORD,
    )
    return result.stdout


def test_admin_and_jenkins_from_a_new_user_to_a_signed_admitted_image_and_back(
    token_notary, worker, live_server, chromium, admin, notary_gun, tmp_path, settings
):
    # The pages show what Notary holds at once: the key-state polling while jenkins waits
    # reads the repository's trust data, which would otherwise be kept for a few seconds
    # and hide his signature if he signs within them.
    settings.GATEHOUSE_TRUST_REVALIDATE_SECONDS = 0
    require(shutil.which("notary") is not None, "the notary CLI (Debian package notary)")
    require(shutil.which("docker") is not None, "Docker's CLI")
    script_errors: list[str] = []
    root = person(chromium, live_server.url, "root", PASSWORD, script_errors)

    # 1. The admin creates jenkins and the team ci, with jenkins in it.
    root.get_by_role("link", name="Users", exact=True).click()
    root.get_by_role("link", name="New user").click()
    root.get_by_label("Username").fill("jenkins")
    root.get_by_label("Full name").fill("Jenkins CI")
    root.get_by_label("Password", exact=True).fill(JENKINS_PASSWORD)
    root.get_by_label("Password confirmation").fill(JENKINS_PASSWORD)
    root.get_by_role("button", name="Create user").click()
    root.get_by_role("link", name="Teams", exact=True).click()
    root.get_by_role("link", name="New team").click()
    root.get_by_label("Name").fill("ci")
    root.get_by_role("button", name="Create team").click()
    root.get_by_label("User").select_option("jenkins")
    root.get_by_role("button", name="Add member").click()
    expect(root.get_by_role("status")).to_have_text("jenkins added to ci.")
    shot(root, "1-team")

    # 2. The admin enforces the policy with ci as its signing team.
    root.get_by_role("link", name="Content Trust", exact=True).click()
    policy = root.locator("form", has=root.get_by_role("button", name="Save policy"))
    policy.get_by_label("Run only signed images").check()
    policy.get_by_label("ci", exact=True).check()
    expect(policy.get_by_label("Enforced: deny what fails")).to_be_checked()
    policy.get_by_role("button", name="Save policy").click()
    expect(root.get_by_role("status")).to_contain_text("Saved")
    shot(root, "2-policy")

    # 3. The admin creates the repository, signed by ci; the worker initialises it.
    root.get_by_role("link", name="Repositories", exact=True).click()
    create = root.locator("#new")
    create.get_by_label("GUN", exact=True).fill(notary_gun)
    create.get_by_label("Signer teams").select_option(["ci"])
    create.get_by_role("button", name="Create repository").click()
    expect(root.locator("h1 [data-repository-state]")).to_have_text("Ready", timeout=LIVE)
    repository_page = root.url
    shot(root, "3-repository")

    # 4. jenkins downloads a signing bundle (ticked by default), waits until his key is in
    # Notary, and signs with the commands his profile shows.
    jenkins = person(chromium, live_server.url, "jenkins", JENKINS_PASSWORD, script_errors)
    jenkins.get_by_role("link", name="My profile").click()
    download_form = jenkins.locator("form[data-download]")
    expect(download_form.get_by_label("Use as signing key")).to_be_checked()
    with jenkins.expect_download() as download_info:
        download_form.get_by_role("button", name="Download client bundle").click()
    bundle = tmp_path / "bundle"
    unzip_bundle(Path(download_info.value.path()).read_bytes(), bundle)
    # The page loads itself again after the download, then follows his key's sync.
    expect(jenkins.locator("#key-repositories")).to_contain_text("joined 1 repository")
    expect(jenkins.locator("#key-repositories [data-key-state]")).to_have_attribute(
        "data-key-state", "in-notary", timeout=LIVE
    )
    expect(jenkins.locator("#sign-guide-role")).to_have_text("targets/jenkins")
    shot(jenkins, "4-profile")
    shutil.copy(token_notary.state_dir / "certs" / "ca.crt", bundle / "notary-ca.pem")
    listed = sign_as_the_guide_says(jenkins, bundle, notary_url=token_notary.url, gun=notary_gun)
    rows = [line.split() for line in listed.splitlines()]
    digest = hashlib.sha256(MANIFEST).hexdigest()
    assert [TAG, digest, str(len(MANIFEST)), "targets/jenkins"] in rows, listed

    # 5. The repository page shows the tag, signed by jenkins in his own role, passing.
    jenkins.get_by_role("link", name="Repositories", exact=True).click()
    jenkins.get_by_role("link", name=notary_gun).click()
    tags = jenkins.locator("#signed-tags")
    row = tags.get_by_role("row").filter(has_text=TAG)
    expect(row).to_contain_text("jenkins")
    expect(row).to_contain_text("targets/jenkins")
    expect(row).to_contain_text("Passes")
    shot(jenkins, "5-signed")

    # 6. jenkins leaves ci; the page says why his tag no longer passes.
    root.get_by_role("link", name="Teams", exact=True).click()
    root.get_by_role("link", name="ci", exact=True).click()
    root.once("dialog", lambda dialog: dialog.accept())  # "Remove jenkins from ci?"
    root.get_by_role("button", name="Remove jenkins").click()
    expect(root.get_by_role("status")).to_have_text("jenkins removed from ci.")
    root.goto(repository_page)
    row = root.locator("#signed-tags").get_by_role("row").filter(has_text=TAG)
    expect(row).to_contain_text("jenkins is no longer in ci", timeout=LIVE)
    shot(root, "6-left")

    # 7. Twenty repositories at once; the counter reaches twenty without a reload.
    root.get_by_role("navigation").get_by_role("link", name="Repositories").click()
    bulk = root.locator("#bulk")
    bulk.get_by_label("GUNs").fill(
        "\n".join(f"{notary_gun}-bulk-{n:02}" for n in range(1, BULK + 1))
    )
    bulk.get_by_label("Signer teams").select_option(["ci"])
    bulk.get_by_role("button", name="Create repositories").click()
    counter = root.locator("#batch-counter")
    expect(counter).to_have_text(f"{BULK} of {BULK} ready, 0 failed", timeout=120_000)
    created = root.locator("table.repositories tr").filter(has_text=f"{notary_gun}-bulk-")
    expect(created.locator("[data-repository-state=ready]")).to_have_count(BULK)
    shot(root, "7-bulk")
    assert script_errors == []
