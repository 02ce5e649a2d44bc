"""The content-trust console in a real browser, on a real notary-server: a repository is
created from the console, its job runs, and the page follows the job live."""

import datetime as dt
import re
import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import expect

from tests.browser import log_in
from tests.factories import make_team, make_user
from tests.trust.helpers import run_jobs, signing_key_of
from trust import custody
from trust.models import CustodyKey, Job, Repository, RootKeyExport
from trust.services.jobs import jobs_requeue_stale

pytestmark = pytest.mark.browser

# Written for a person to look at after a run; nothing compares them.
REPOSITORY_SCREENSHOT = Path(tempfile.gettempdir()) / "gatehouse-repository.png"
ROOT_SCREENSHOT = Path(tempfile.gettempdir()) / "gatehouse-root.png"
BULK_SCREENSHOT = Path(tempfile.gettempdir()) / "gatehouse-bulk.png"
JOB_SCREENSHOT = Path(tempfile.gettempdir()) / "gatehouse-job.png"
PASSPHRASE = "a-long-export-passphrase"


@pytest.mark.notary
def test_admin_creates_a_repository_and_watches_its_job_finish(
    transactional_db, settings, notary_server, notary_gun, admin, browser_page
):
    settings.NOTARY_URL = notary_server.url
    settings.GATEHOUSE_SYNC_DELAY_SECONDS = 0
    jenkins = make_user("jenkins", full_name="Jenkins CI")
    signing_key_of(jenkins)
    make_team("ci", members=(jenkins,), actor=admin)
    page = browser_page
    log_in(page)

    page.get_by_role("link", name="Repositories", exact=True).click()
    create = page.locator("#new")
    create.get_by_label("GUN", exact=True).fill(notary_gun)
    create.get_by_label("Signer teams").select_option(["ci"])
    create.get_by_role("button", name="Create repository").click()

    expect(page.get_by_role("status")).to_have_text(
        f"Repository {notary_gun} created; its initialisation is queued."
    )
    repository = Repository.objects.get(gun=notary_gun)
    expect(page).to_have_url(f"/repositories/{repository.pk}/")
    job_badge = page.locator("[data-live-jobs] [data-job-field=status]")
    state = page.locator("h1 [data-repository-state]")
    expect(job_badge).to_have_text("Queued")
    expect(state).to_have_text("Pending")

    (job,) = run_jobs()  # as the worker would; the page is not touched from here on
    assert job.status == Job.Status.SUCCEEDED

    expect(job_badge).to_have_text("Succeeded", timeout=15_000)
    expect(state).to_have_text("Ready", timeout=15_000)
    expect(page.locator("[data-live-jobs] [data-job-field=finished_at]")).not_to_have_text("—")
    delegations = page.locator("table.delegations")
    expect(delegations.get_by_role("rowgroup").filter(has_text="targets/jenkins")).to_contain_text(
        "jenkins"
    )
    expect(delegations).to_contain_text("targets/releases")
    expect(page.get_by_text("Never", exact=True)).to_have_count(0)
    page.screenshot(path=REPOSITORY_SCREENSHOT, full_page=True)


def test_admin_exports_the_root_key_and_the_warning_goes(transactional_db, admin, browser_page):
    custody.root_key()  # as `make run` makes it: the page only shows it
    page = browser_page
    log_in(page)
    banner = page.locator(".banner").filter(has_text="Back up the root key.")
    expect(banner).to_be_visible()

    banner.get_by_role("link", name="Export it on the Trust root page").click()
    expect(page.get_by_role("heading", name="Trust root", exact=True)).to_be_visible()
    expect(page.locator("#root-key-id")).to_have_text(CustodyKey.objects.get(kind="root").key_id)
    page.screenshot(path=ROOT_SCREENSHOT, full_page=True)

    page.get_by_label("Passphrase", exact=True).fill("too-short")
    page.get_by_label("Passphrase confirmation").fill("too-short")
    page.get_by_role("button", name="Download encrypted root key").click()
    expect(page.get_by_text("Use at least 12 characters.")).to_be_visible()
    assert not RootKeyExport.objects.exists()

    page.get_by_label("Passphrase", exact=True).fill(PASSPHRASE)
    page.get_by_label("Passphrase confirmation").fill(PASSPHRASE)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download encrypted root key").click()

    assert download.value.suggested_filename == "gatehouse-root-key.pem"
    pem = Path(download.value.path()).read_bytes()
    serialization.load_pem_private_key(pem, PASSPHRASE.encode())
    expect(page.get_by_role("status")).to_contain_text("Root key exported")
    expect(banner).to_have_count(0)
    expect(page.locator(".facts .badge")).to_have_text("Exported")


@pytest.mark.notary
def test_admin_bulk_creates_repositories_and_watches_them_become_ready(
    request, transactional_db, admin, notary_gun, browser_page
):
    """The counter and the rows follow the real worker's jobs on a real Notary; the page is
    loaded once."""
    custody.root_key()
    guns = [f"{notary_gun}-{n}" for n in range(4)]
    page = browser_page
    log_in(page)
    page.get_by_role("link", name="Repositories", exact=True).click()
    bulk = page.locator("#bulk")
    bulk.get_by_label("GUNs").fill("\n".join(guns))
    bulk.get_by_role("button", name="Create repositories").click()

    expect(page.get_by_role("status")).to_have_text("4 repositories created.")
    counter = page.locator("#batch-counter")
    expect(counter).to_have_text("0 of 4 ready, 0 failed")  # no worker runs yet
    expect(page.locator("#batch-pending")).to_have_text("· 4 pending")
    page.evaluate("window.loadedOnce = true")

    # The worker starts now, purging its queue first: send the jobs again, as the beat would.
    request.getfixturevalue("celery_worker")
    assert jobs_requeue_stale(older_than=dt.timedelta(0)) == 4

    expect(counter).to_have_text("4 of 4 ready, 0 failed", timeout=30_000)
    expect(page.locator("#batch-pending")).to_be_hidden()
    expect(page.locator("#batch-failures")).to_be_hidden()
    rows = page.locator("table.repositories [data-repository-state]")
    expect(rows).to_have_text(["Ready"] * 4)
    assert page.evaluate("window.loadedOnce === true")  # never reloaded
    assert set(Repository.objects.values_list("state", flat=True)) == {"ready"}
    page.screenshot(path=BULK_SCREENSHOT, full_page=True)
    page.get_by_role("link", name="Jobs", exact=True).click()
    expect(page.locator("table.jobs [data-job-field=status]")).to_have_text(["Succeeded"] * 4)
    page.locator("table.jobs").get_by_role("link", name="initialize").first.click()
    expect(page.get_by_role("heading", name=re.compile(r"^Job \d+: initialize"))).to_be_visible()
    expect(page.locator("#job-history")).to_contain_text("Succeeded")
    page.screenshot(path=JOB_SCREENSHOT, full_page=True)
