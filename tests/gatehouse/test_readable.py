"""Every console list reads whole at 1280 px: filled with long, realistic content, no table
is wider than its card, no cell spills out of its column, and the page never scrolls
sideways."""

import datetime as dt
import tempfile
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts import services as accounts
from bundles import services as bundles
from policy import services as policy
from policy.models import AdmissionDecision
from tests.factories import PASSWORD, make_team, make_user
from trust import custody, pins
from trust.models import Job
from trust.services import repositories

pytestmark = pytest.mark.browser

WIDTH = 1280
# Written for a person to look at after a run; nothing compares them.
SCREENSHOTS = Path(tempfile.gettempdir()) / "gatehouse-readable"

REGISTRY = "registry.platform-engineering.example.com"
LONG_GUNS = [
    f"{REGISTRY}/payments/settlement-reconciliation-service-{number:02d}" for number in range(3)
] + [f"{REGISTRY}/" + "/".join(["data-platform-ingestion"] * 6)]
NOTARY_ERROR = (
    "notary-server answered 503 Service Unavailable for PUT https://notary.internal.example.com"
    ":4443/v2/" + LONG_GUNS[0] + "/_trust/tuf/ after 5 attempts: upstream connect error or "
    "disconnect/reset before headers. reset reason: connection termination; "
    "x-request-id=5f1d7c9a-8e6b-4b1e-9c7a-1f2e3d4c5b6a"
)


def table_problems(page: Page, path: str) -> list[str]:
    """What does not fit on ``path``: tables wider than their container, cells whose
    content spills out, a page wider than the window."""
    page.goto(path)
    expect(page.locator("main table").first).to_be_visible()
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{path.strip('/').replace('/', '-')}.png", full_page=True)
    return page.evaluate(
        """() => {
          const problems = [];
          const name = (table) => table.className || table.closest('section')?.id || 'table';
          for (const table of document.querySelectorAll('main table')) {
            const container = table.parentElement;
            if (table.getBoundingClientRect().width > container.clientWidth + 1
                || container.scrollWidth > container.clientWidth + 1) {
              problems.push(`${name(table)}: ${table.scrollWidth}px in ${container.clientWidth}px`);
            }
            for (const cell of table.querySelectorAll('th, td')) {
              if (cell.scrollWidth > cell.clientWidth + 1) {
                const text = cell.textContent.trim().slice(0, 60);
                problems.push(`${name(table)}: a cell spills out (${text})`);
              }
            }
          }
          const width = document.documentElement.scrollWidth;
          if (width > window.innerWidth) problems.push(`the page is ${width}px wide`);
          return problems;
        }"""
    )


@pytest.fixture
def crowded(admin):
    """Every list filled with the longest things people really type."""
    teams = [
        make_team(name, actor=admin)
        for name in (
            "platform-engineering-release-managers-emea",
            "payments-settlement-reconciliation-oncall",
            "data-platform-ingestion-pipeline-owners",
        )
    ]
    for team in teams:
        accounts.team_update(
            actor=admin,
            team=team,
            description="Signs every release image that reaches production; ask in "
            "#release-engineering before adding a member or a signing key to this team.",
        )
    people = []
    for number in range(3):
        person = make_user(
            f"maximilian.oppenheimer-vandersteen{number}",
            full_name="Maximilian Alexander Oppenheimer-Vandersteen de la Cruz",
            email=f"maximilian.oppenheimer-vandersteen{number}@platform-engineering.example.com",
        )
        for team in teams:
            accounts.team_member_add(actor=admin, team=team, user=person)
        people.append(person)
    for number in range(4):
        bundles.bundle_issue(
            user=admin,
            label=f"build-agent-{number} release signing key for the nightly pipeline",
            signing=number % 2 == 0,
        )
    robot = make_user("releaseengineeringautomationserviceaccountemea", is_admin=True)
    created = [
        repositories.repository_create(
            actor=robot, gun=gun, signer_team_names=[team.name for team in teams]
        )[1]
        for gun in LONG_GUNS
    ]
    now = timezone.now()
    Job.objects.filter(pk__in=[job.pk for job in created[:2]]).update(
        status=Job.Status.FAILED,
        attempts=5,
        error=NOTARY_ERROR,
        started_at=now - dt.timedelta(minutes=3),
        finished_at=now,
        cause="signer teams changed: platform-engineering-release-managers-emea joined",
    )
    policy.policy_update(
        actor=admin,
        enabled=True,
        mode="enforced",
        signing_team_names=[team.name for team in teams],
        allow_repos=[f"{REGISTRY}/base-images/*", f"{REGISTRY}/third-party/mirrored/*"],
    )
    AdmissionDecision.objects.create(
        uid="8c0f2d4e-5b6a-4c7d-9e8f-0a1b2c3d4e5f",
        webhook="validate",
        namespace="payments-settlement-reconciliation-production",
        kind="Deployment",
        name="settlement-reconciliation-service-worker-canary",
        operation="CREATE",
        allowed=False,
        failing=[
            {
                "image": f"{LONG_GUNS[1]}:2024.11.28-rc.3-build.4711",
                "reasons": [
                    "no current member of platform-engineering-release-managers-emea "
                    "signed this digest in their own role",
                    "signed only in targets/releases",
                ],
            }
        ],
    )
    custody.root_key()
    pins.root_key_pin_create(
        actor=admin, pattern=f"{REGISTRY}/third-party/mirrored/*", key_ids=["a" * 64, "b" * 64]
    )
    accounts.user_update(
        actor=admin,
        user=people[0],
        full_name="Max Oppenheimer-Vandersteen",
        email="max@platform-engineering.example.com",
    )
    return people


PAGES = [
    "/users/",
    "/users/maximilian.oppenheimer-vandersteen0/",
    "/teams/",
    "/teams/platform-engineering-release-managers-emea/",
    "/repositories/",
    "/jobs/",
    "/audit/",
    "/content-trust/",
    "/content-trust/admission/",
    "/trust/root/",
    "/profile/",
]


def test_no_table_is_cut_off_at_1280_px(transactional_db, admin, crowded, browser_page):
    page = browser_page
    page.set_viewport_size({"width": WIDTH, "height": 800})
    page.goto("/login/")
    page.get_by_label("Username").fill("release-engineering-service-account-" + "x" * 100)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Please enter a correct username and password")).to_be_visible()
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()

    problems = {path: table_problems(page, path) for path in PAGES}

    assert {path: found for path, found in problems.items() if found} == {}

    page.goto("/content-trust/admission/")
    uneven = page.evaluate(
        """() => [...document.querySelectorAll('main .card:not(.card-flush)')].flatMap((card) => {
          const style = getComputedStyle(card);
          const below = card.getBoundingClientRect().bottom - parseFloat(style.borderBottomWidth)
            - card.lastElementChild.getBoundingClientRect().bottom;
          const even = Math.abs(below - parseFloat(style.paddingTop)) <= 1;
          return even ? [] : [card.textContent.trim().slice(0, 40)];
        })"""
    )
    assert uneven == []

    page.goto("/trust/root/")
    snippet = page.locator("#daemon-json")
    expect(snippet).to_contain_text(f'"{LONG_GUNS[-1]}": [')
    assert snippet.evaluate(
        "(pre) => [getComputedStyle(pre).whiteSpace, getComputedStyle(pre).overflowX,"
        " pre.scrollWidth > pre.clientWidth]"
    ) == ["pre", "auto", True]  # each line whole, scrolled sideways rather than wrapped
    expect(page.locator("#daemon-json-engines")).to_contain_text(
        "Only Mirantis Container Runtime (formerly Docker Engine - Enterprise) reads the "
        "content-trust section of daemon.json"
    )
