"""Shared fixtures: the real services the suite talks to.

Under ``CI=true`` a test whose service is missing fails; elsewhere it is skipped with the
reason, so a laptop without PostgreSQL or Chromium still runs the rest of the suite.
"""

import os
import warnings

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# The directory's real servers: a slapd and an OpenID provider, each started once if asked for.
pytest_plugins = ["tests.directory.slapd_fixtures", "tests.directory.oidc_fixtures"]


def require(available: bool, what: str) -> None:
    """Fail under CI, skip elsewhere, when a service the test needs is missing."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but is not available")
    pytest.skip(f"{what} is not available")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """Hashing strength is Django's concern, not ours; tests need speed."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin(db):
    from tests.factories import make_user

    return make_user("root", is_admin=True, full_name="Root Admin")


@pytest.fixture
def alice(db):
    from tests.factories import make_user

    return make_user("alice", full_name="Alice Liddell", email="alice@example.com")


@pytest.fixture
def api():
    """An API client that authenticates as a user with a real bearer token."""
    from rest_framework.test import APIClient

    from accounts.services import api_token_create

    def client_for(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            raw_token, _ = api_token_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
        return client

    return client_for


@pytest.fixture(scope="session")
def notary_postgres_url() -> str | None:
    """Where notary test stacks keep their databases.

    ``NOTARY_TEST_POSTGRES_URL``, else the local server; ``None`` (a private cluster in each
    stack's directory) when that does not answer (docs/notary-protocol.md,
    "notary-server's surprises").
    """
    import shutil

    from devtools.notary import LOCAL_POSTGRES_URL, postgres_answers, postgres_bin_dir

    require(shutil.which("notary-server") is not None, "notary-server (Debian package notary)")
    url = os.environ.get("NOTARY_TEST_POSTGRES_URL", LOCAL_POSTGRES_URL)
    if postgres_answers(url):
        return url
    require(postgres_bin_dir() is not None, f"PostgreSQL at {url}, or initdb")
    return None


@pytest.fixture(scope="session")
def notary_stack(notary_postgres_url):
    """A real notary-server + notary-signer on PostgreSQL for the session.

    Tests share it, so each uses its own GUN (``notary_gun``): both processes cache in
    memory, so data cannot be reset between tests.
    """
    from devtools.notary import NotaryStack

    stack = NotaryStack.ephemeral(notary_postgres_url)
    try:
        stack.start()
        yield stack
    finally:
        stack.discard()


@pytest.fixture
def notary_server(notary_stack):
    """The session's Notary, alive: ``.url`` is its URL.

    notary-server 0.7 keeps unlocked maps that can crash it under concurrent requests
    (docs/notary-protocol.md, "notary-server's surprises"). A crash is a fault of Notary, not of the
    test that sees it: it is reported with the log tail and the stack restarted, so one
    crash fails no other test.
    A test that stops the server (an outage test) starts it again itself.
    """
    if not notary_stack.alive():
        warnings.warn(
            f"notary died before this test; restarting it:\n{notary_stack.log_tail(40)}",
            stacklevel=1,
        )
        notary_stack.stop()
        notary_stack.start()
    return notary_stack


@pytest.fixture
def notary_gun() -> str:
    """A repository name of this test's own on the shared server."""
    import uuid

    return f"test.gatehouse/{uuid.uuid4().hex}"


@pytest.fixture
def notary_cli(notary_cli_in, tmp_path):
    """Run the real ``notary`` CLI: ``notary_cli("init", gun, "-p")`` returns the completed process.

    It uses this test's trust directory, or with ``fresh=True`` a new empty one: a client
    without cached metadata sees only what the server really has (docs/notary-protocol.md,
    "notary-server's surprises").
    ``server=`` points it at another stack. A non-zero exit fails the test with the output
    unless ``check=False``.
    """
    import uuid

    def run(*args: str, check: bool = True, fresh: bool = False, server: str | None = None):
        trust_dir = tmp_path / (f"trust-{uuid.uuid4().hex[:8]}" if fresh else "trust")
        return notary_cli_in(trust_dir, *args, check=check, server=server)

    return run


CHROMIUM = "/usr/bin/chromium"
# Playwright cannot download its own browsers here, so it drives Debian's Chromium.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium shared by the browser tests of one module.

    Playwright's sync API keeps an event loop running, and Django refuses database access
    from a thread with a running loop unless told it is safe; the tests touch the database
    from this thread only, so it is. Module scope ends the loop before the next module runs.
    """
    require(os.path.exists(CHROMIUM), "Chromium (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium, live_server):
    """A fresh browser tab (no cookies) whose relative URLs go to the live test server."""
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 800}
    )
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(autouse=True)
def fresh_client_ca() -> None:
    """Each test's database starts without a client CA; forget the one a process cached."""
    from bundles.services import client_ca_signer

    client_ca_signer.cache_clear()


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    """Each test starts with no password-check counts (the cache is per test process)."""
    from django.core.cache import cache

    cache.clear()


# --- Notary client integration (tests/trust/notary) -------------------------------------

NOTARY_CLI_PASSPHRASES = {
    "NOTARY_ROOT_PASSPHRASE": "root-passphrase",
    "NOTARY_TARGETS_PASSPHRASE": "targets-passphrase",
    "NOTARY_SNAPSHOT_PASSPHRASE": "snapshot-passphrase",
    "NOTARY_DELEGATION_PASSPHRASE": "delegation-passphrase",
}


@pytest.fixture
def notary_cli_in(notary_server):
    """Run the real ``notary`` CLI in a trust directory the test names, with the passphrases
    above: ``notary_cli_in(trust_dir, "addhash", …)``. Several delegates, each with its own
    trust directory that keeps its cached metadata from one command to the next."""
    import subprocess

    env = {**os.environ, **NOTARY_CLI_PASSPHRASES}

    def run(trust_dir, *args: str, check: bool = True, server: str | None = None):
        command = ["notary", "-d", str(trust_dir), "-s", server or notary_server.url, *args]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
        if check and result.returncode != 0:
            pytest.fail(
                f"{' '.join(command)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture(scope="session")
def notary_token_issuer(tmp_path_factory):
    """A token issuer (tests/trust/notary/tokens.py) for user ``alice``, password ``wonderland``."""
    from tests.trust.notary.tokens import TokenIssuer

    issuer = TokenIssuer(tmp_path_factory.mktemp("token-issuer"), {"alice": "wonderland"})
    issuer.start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="session")
def notary_token_server(notary_postgres_url, notary_token_issuer):
    """notary-server + notary-signer that demand tokens from ``notary_token_issuer``
    (docs/notary-protocol.md, "Token authentication")."""
    from devtools.notary import NotaryStack

    stack = NotaryStack.ephemeral(
        notary_postgres_url, server_config={"auth": notary_token_issuer.auth_config()}
    )
    try:
        stack.start()
        yield stack
        if not stack.alive():
            pytest.fail(f"a notary process died during the tests:\n{stack.log_tail(40)}")
    finally:
        stack.discard()


@pytest.fixture
def token_notary(live_server, settings, notary_postgres_url, tmp_path):
    """notary-server + signer configured by ``notary_server_config`` to trust Gatehouse's
    tokens, its realm at this test's live server. One per test: the token key lives in the
    test database, which is emptied after each test."""
    import io
    import json

    from django.core.management import call_command

    from devtools.notary import NotaryStack

    settings.GATEHOUSE_PUBLIC_URL = live_server.url
    settings.GATEHOUSE_SYNC_DELAY_SECONDS = 0
    out = io.StringIO()
    call_command("notary_server_config", "--cert-out", str(tmp_path / "token-ca.pem"), stdout=out)
    config = json.loads(out.getvalue())
    assert config["auth"]["options"]["realm"] == f"{live_server.url}/auth/token"
    stack = NotaryStack.ephemeral(notary_postgres_url, server_config=config)
    try:
        stack.start()
        settings.NOTARY_URL = stack.url
        yield stack
        assert stack.alive(), stack.log_tail(40)
    finally:
        stack.discard()
