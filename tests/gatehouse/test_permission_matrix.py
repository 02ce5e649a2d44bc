"""Who may do what, over every URL of the API and the console.

``TABLE`` maps each URL pattern (its namespaced name, or its route when it has none) to the
requests that exercise it and the status each caller must get. ``test_every_url_is_in_the_
table`` walks the resolver, so a URL added without an entry here fails the suite.

The callers: ``anonymous``; ``bob``, an ordinary user in no team; ``alice``, a member of
``ci`` (which signs ``repo``) who owns ``key``; ``admin`` (user ``root``). The rules: nobody
reads or changes what is not theirs (what a non-admin may not see is a 404); admin-only
writes by non-admins are a 403; console pages send visitors to the login page (302).
"""

import json
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from audit.models import AuditEntry
from bundles.services import bundle_issue
from directory.services import group_mapping_create
from policy.services import policy_apply
from tests.bundles.helpers import certificate_pem, registration
from tests.factories import PASSWORD, make_team, make_user
from trust import custody
from trust.models import Job
from trust.pins import root_key_pin_create
from trust.services.repositories import repository_create

pytestmark = pytest.mark.django_db

CALLERS = ("anonymous", "bob", "alice", "admin")
NEW_PASSWORD = "another-long-passphrase"
EXPORT_PASSPHRASE = "correct horse battery"
GUN = "registry.example.com/ci/app"
POLICY = {"enabled": False, "mode": "permissive", "signing_teams": [], "allow_repos": []}
# The whole policy (/api/v1/policy/), written to version 1, which the world makes.
NO_TEAMS = {"teams": []}
DOCUMENT = {
    "version": 1,
    "enabled": False,
    "default": {"mode": "permissive", "require": NO_TEAMS},
    "rules": [],
}
# Version 1's one rule, and the console's rule editor's fields for another.
WEB_RULE = {
    "name": "web",
    "images": ["registry.example.com/web/*"],
    "mode": "permissive",
    "require": NO_TEAMS,
}
RULE_FORM = {
    "name": "api",
    "images": "registry.example.com/api/*",
    "mode": "enforced",
    "match": "all",
    "position": "1",
}
OTHER_GUN = "registry.example.com/ops/db"
ROOT_KEY_ID = "a" * 64

# URLs with tests of their own, and why they are not in the matrix.
ALLOWLIST = {
    "healthz": "public liveness probe (tests/gatehouse/test_health.py)",
    "readyz": "public readiness probe (tests/gatehouse/test_health.py)",
    "metrics": "admins or the metrics token (tests/gatehouse/test_metrics.py)",
    "api-schema": "public OpenAPI schema (tests/gatehouse/test_schema.py)",
    "api-docs": "public API documentation (tests/gatehouse/test_schema.py)",
    "notary-token": "Notary's token realm, Basic auth (tests/trust/token_service/test_tokens.py)",
    "oidc-login": "public OpenID Connect sign-in (tests/directory/test_oidc.py)",
    "oidc-callback": "public OpenID Connect sign-in (tests/directory/test_oidc.py)",
}
SKIPPED_PREFIXES = ("static/",)  # static files, when DEBUG serves them


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # formatted with the world's ids: {repo}, {other}, {job}, {key}, ...
    body: dict | None
    expected: dict[str, int]  # caller -> status
    console: bool = False

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def api(method, path, body, anonymous, bob, alice, admin) -> Case:
    expected = dict(zip(CALLERS, (anonymous, bob, alice, admin), strict=True))
    return Case(method, "/api/v1/" + path, body, expected)


def page(method, path, body, anonymous, bob, alice, admin) -> Case:
    expected = dict(zip(CALLERS, (anonymous, bob, alice, admin), strict=True))
    return Case(method, path, body, expected, console=True)


def cert(user) -> dict:
    """A registration by ``user``: a certificate and their proof that they hold its key."""
    if user is None:
        return {"certificate": certificate_pem(), "label": "registered"}
    return {**registration(user), "label": "registered"}


# pattern name -> cases; statuses are for (anonymous, bob, alice, admin).
TABLE: dict[str, list[Case]] = {
    # --- API: accounts -----------------------------------------------------------------
    "api-login": [
        api("post", "auth/login/", {"username": "alice", "password": PASSWORD}, 200, 200, 200, 200),
        api("post", "auth/login/", {"username": "alice", "password": "wrong"}, 401, 401, 401, 401),
    ],
    "api-logout": [api("post", "auth/logout/", None, 401, 204, 204, 204)],
    "user-list": [
        api("get", "users/", None, 401, 200, 200, 200),
        api(
            "post",
            "users/",
            {"username": "newcomer", "password": NEW_PASSWORD},
            401,
            403,
            403,
            201,
        ),
    ],
    "user-detail": [
        api("get", "users/alice/", None, 401, 404, 200, 200),
        api("get", "users/bob/", None, 401, 200, 404, 200),
        api("get", "users/bob.json", None, 401, 200, 404, 200),
        api("patch", "users/alice/", {"full_name": "A"}, 401, 404, 200, 200),
        api("patch", "users/alice/", {"is_admin": True}, 401, 404, 403, 200),
        api("delete", "users/alice/", None, 401, 403, 403, 204),
    ],
    "user-password": [
        api(
            "post",
            "users/alice/password/",
            {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
            401,
            404,
            204,
            204,
        ),
    ],
    "user-unlock": [api("post", "users/alice/unlock/", None, 401, 403, 403, 200)],
    "team-list": [
        api("get", "teams/", None, 401, 200, 200, 200),
        api("post", "teams/", {"name": "dev"}, 401, 403, 403, 201),
    ],
    "team-detail": [
        api("get", "teams/ci/", None, 401, 404, 200, 200),
        api("get", "teams/ops/", None, 401, 404, 404, 200),
        api("patch", "teams/ci/", {"description": "x"}, 401, 403, 403, 200),
        api("delete", "teams/qa/", None, 401, 403, 403, 204),  # ops, a signer, is a 409
    ],
    "team-members": [
        api("get", "teams/ci/members/", None, 401, 404, 200, 200),
        api("get", "teams/ops/members/", None, 401, 404, 404, 200),
    ],
    "api-team-member": [
        api("put", "teams/ci/members/bob/", None, 401, 403, 403, 201),
        api("put", "teams/ops/members/alice/", None, 401, 403, 403, 201),
        api("delete", "teams/ci/members/alice/", None, 401, 403, 403, 204),
    ],
    # --- API: bundles and keys ---------------------------------------------------------
    "api-bundles": [api("post", "bundles/", {"label": "laptop"}, 401, 200, 200, 200)],
    "api-client-ca": [api("get", "bundles/ca.pem", None, 401, 200, 200, 200)],
    "api-key-challenge": [api("post", "keys/challenge/", None, 401, 200, 200, 200)],
    "user-key-list": [
        api("get", "users/alice/keys/", None, 401, 404, 200, 200),
        api("get", "users/bob/keys/", None, 401, 200, 404, 200),
        api("post", "users/alice/keys/", "certificate", 401, 404, 201, 201),
        api("post", "users/bob/keys/", "certificate", 401, 201, 404, 201),
    ],
    "user-key-detail": [
        api("get", "users/alice/keys/{key}/", None, 401, 404, 200, 200),
        api("get", "users/bob/keys/{bob_key}/", None, 401, 200, 404, 200),
        # A key named under someone else's account is not found, whoever asks.
        api("get", "users/alice/keys/{bob_key}/", None, 401, 404, 404, 404),
        api("get", "users/bob/keys/{key}/", None, 401, 404, 404, 404),
        api("patch", "users/alice/keys/{key}/", {"label": "x"}, 401, 404, 200, 200),
        api("patch", "users/bob/keys/{bob_key}/", {"label": "x"}, 401, 200, 404, 200),
        api("delete", "users/alice/keys/{key}/", None, 401, 404, 204, 204),
        api("delete", "users/bob/keys/{bob_key}/", None, 401, 204, 404, 204),
    ],
    # --- API: trust ----------------------------------------------------------------------
    "repository-list": [
        api("get", "repositories/", None, 401, 200, 200, 200),
        api("post", "repositories/", {"gun": "registry.example.com/new/one"}, 401, 403, 403, 202),
    ],
    "repository-bulk": [
        api(
            "post", "repositories/bulk/", {"guns": ["registry.example.com/b/1"]}, 401, 403, 403, 202
        ),
    ],
    "repository-adopt": [
        # Bad input, so no Notary is needed: the admin gets the documented 400.
        api("post", "repositories/adopt/", {"gun": "x", "targets_key": "y"}, 401, 403, 403, 400),
    ],
    "repository-detail": [
        api("get", "repositories/{repo}/", None, 401, 404, 200, 200),
        api("get", "repositories/{other}/", None, 401, 404, 404, 200),
        api("get", "repositories/{other}.json", None, 401, 404, 404, 200),
        api("patch", "repositories/{repo}/", {"signer_teams": ["ops"]}, 401, 403, 403, 202),
        api("patch", "repositories/{other}/", {"signer_teams": ["ci"]}, 401, 403, 403, 202),
        api("delete", "repositories/{repo}/", None, 401, 403, 403, 202),
        api("delete", "repositories/{other}/", None, 401, 403, 403, 202),
    ],
    "repository-sync": [
        api("post", "repositories/{repo}/sync/", None, 401, 403, 403, 202),
        api("post", "repositories/{other}/sync/", None, 401, 403, 403, 202),
    ],
    "job-list": [api("get", "jobs/", None, 401, 200, 200, 200)],
    "job-detail": [
        api("get", "jobs/{job}/", None, 401, 404, 200, 200),
        api("get", "jobs/{other_job}/", None, 401, 404, 404, 200),
    ],
    "api-trust-root": [api("get", "trust/root/", None, 401, 403, 403, 200)],
    "api-trust-root-export": [
        api("post", "trust/root/export/", {"passphrase": EXPORT_PASSPHRASE}, 401, 403, 403, 200),
    ],
    "root-pin-list": [
        api("get", "trust/pins/", None, 401, 403, 403, 200),
        api(
            "post",
            "trust/pins/",
            {"pattern": "registry.example.com/new/*", "key_ids": [ROOT_KEY_ID]},
            401,
            403,
            403,
            201,
        ),
    ],
    "root-pin-detail": [
        api("get", "trust/pins/{pin}/", None, 401, 403, 403, 200),
        api("patch", "trust/pins/{pin}/", {"key_ids": [ROOT_KEY_ID]}, 401, 403, 403, 200),
        api("delete", "trust/pins/{pin}/", None, 401, 403, 403, 204),
    ],
    # --- API: policy and admission -------------------------------------------------------
    "api-policy": [
        api("get", "policy/content-trust/", None, 401, 200, 200, 200),
        api("put", "policy/content-trust/", POLICY, 401, 403, 403, 200),
    ],
    "api-policy-document": [
        api("get", "policy/", None, 401, 200, 200, 200),
        api("put", "policy/", DOCUMENT, 401, 403, 403, 200),
    ],
    "api-policy-preview": [api("post", "policy/preview/", DOCUMENT, 401, 403, 403, 200)],
    "api-policy-versions": [api("get", "policy/versions/", None, 401, 200, 200, 200)],
    "api-policy-version": [api("get", "policy/versions/1/", None, 401, 200, 200, 200)],
    "api-policy-revert": [
        api("post", "policy/versions/1/revert/", {"version": 1}, 401, 403, 403, 200)
    ],
    "api-evaluate": [
        # A malformed reference: answered without Notary.
        api("post", "policy/evaluate/", {"image": "Not//A Ref"}, 401, 400, 400, 400),
    ],
    "api-admission-validate": [
        api("post", "admission/validate/", {"kind": "nope"}, 401, 403, 403, 400),
    ],
    "api-admission-mutate": [
        api("post", "admission/mutate/", {"kind": "nope"}, 401, 403, 403, 400),
    ],
    "api-admission-decisions": [api("get", "admission/decisions/", None, 401, 403, 403, 200)],
    "api-admission-webhook-configuration": [
        api(
            "get",
            "admission/webhook-configuration/?mode=validate&url=https://gatehouse.example.com",
            None,
            401,
            403,
            403,
            200,
        ),
    ],
    # --- API: directory (none is configured, so a sync is the documented 400) ------------
    "api-directory": [api("get", "directory/", None, 401, 403, 403, 200)],
    "directory-mapping-list": [
        api("get", "directory/mappings/", None, 401, 403, 403, 200),
        api(
            "post",
            "directory/mappings/",
            {"source": "ldap", "group": "cn=qa,ou=groups", "team": "qa"},
            401,
            403,
            403,
            201,
        ),
    ],
    "directory-mapping-detail": [
        api("delete", "directory/mappings/{mapping}/", None, 401, 403, 403, 204),
    ],
    "api-directory-runs": [api("get", "directory/runs/", None, 401, 403, 403, 200)],
    "api-directory-sync": [api("post", "directory/sync/", {"dry_run": True}, 401, 403, 403, 400)],
    # --- API: audit ----------------------------------------------------------------------
    "audit-entry-list": [
        api("get", "audit/", None, 401, 403, 403, 200),
        api("post", "audit/", {"action": "forged"}, 401, 403, 403, 405),
    ],
    "audit-entry-detail": [
        api("get", "audit/{audit}/", None, 401, 403, 403, 200),
        api("delete", "audit/{audit}/", None, 401, 403, 403, 405),
    ],
    # --- Console -------------------------------------------------------------------------
    "dashboard": [page("get", "/", None, 302, 200, 200, 200)],
    "audit": [page("get", "/audit/", None, 302, 403, 403, 200)],
    # Signed-in users are sent on from the login page; logging out always redirects.
    "login": [page("get", "/login/", None, 200, 302, 302, 302)],
    "logout": [page("post", "/logout/", None, 302, 302, 302, 302)],
    "profile": [page("get", "/profile/", None, 302, 200, 200, 200)],
    "profile_token": [page("post", "/profile/token/", None, 302, 200, 200, 200)],
    "users:list": [page("get", "/users/", None, 302, 403, 403, 200)],
    "users:create": [
        page("get", "/users/new/", None, 302, 403, 403, 200),
        page(
            "post",
            "/users/new/",
            {"username": "newcomer", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
            302,
            403,
            403,
            302,
        ),
    ],
    "users:detail": [
        page("get", "/users/alice/", None, 302, 403, 403, 200),
        page("get", "/users/ghost/", None, 302, 403, 403, 404),
    ],
    "users:update": [
        page("post", "/users/alice/edit/", {"full_name": "A"}, 302, 403, 403, 302),
    ],
    "users:password": [
        page(
            "post",
            "/users/alice/password/",
            {"new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
            302,
            403,
            403,
            302,
        ),
    ],
    "users:deactivate": [page("post", "/users/bob/deactivate/", None, 302, 403, 403, 302)],
    "users:reactivate": [page("post", "/users/bob/reactivate/", None, 302, 403, 403, 302)],
    "users:unlock": [page("post", "/users/bob/unlock/", None, 302, 403, 403, 302)],
    "teams:list": [page("get", "/teams/", None, 302, 200, 200, 200)],
    "teams:create": [
        page("get", "/teams/new/", None, 302, 403, 403, 200),
        page("post", "/teams/new/", {"name": "dev"}, 302, 403, 403, 302),
    ],
    "teams:detail": [
        page("get", "/teams/ci/", None, 302, 404, 200, 200),
        page("get", "/teams/ops/", None, 302, 404, 404, 200),
    ],
    "teams:update": [
        page("post", "/teams/ci/edit/", {"description": "x"}, 302, 403, 403, 302),
    ],
    "teams:delete": [
        page("get", "/teams/qa/delete/", None, 302, 403, 403, 200),
        page("post", "/teams/qa/delete/", None, 302, 403, 403, 302),
    ],
    "teams:member_add": [
        page("post", "/teams/ci/members/", {"username": "bob"}, 302, 403, 403, 302),
    ],
    "teams:member_remove": [
        page("post", "/teams/ci/members/alice/remove/", None, 302, 403, 403, 302),
    ],
    "keys:bundle": [
        page("post", "/profile/bundle/", {"label": "laptop"}, 302, 200, 200, 200),
    ],
    "keys:register": [
        page("get", "/profile/keys/register/", None, 302, 200, 200, 200),
        page("post", "/profile/keys/register/", "certificate", 302, 302, 302, 302),
    ],
    "keys:register_for": [
        page("get", "/users/alice/keys/register/", None, 302, 404, 200, 200),
        page("get", "/users/bob/keys/register/", None, 302, 200, 404, 200),
        page("post", "/users/alice/keys/register/", "certificate", 302, 404, 302, 302),
    ],
    "keys:label": [
        page("post", "/keys/{key}/label/", {"label": "x"}, 302, 404, 302, 302),
        page("post", "/keys/{bob_key}/label/", {"label": "x"}, 302, 302, 404, 302),
    ],
    "keys:signing": [
        page("post", "/keys/{key}/signing/", {"is_signing_key": ""}, 302, 404, 302, 302),
    ],
    "keys:revoke": [
        page("post", "/keys/{key}/revoke/", None, 302, 404, 302, 302),
        page("post", "/keys/{bob_key}/revoke/", None, 302, 302, 404, 302),
    ],
    "repositories": [page("get", "/repositories/", None, 302, 200, 200, 200)],
    "repositories:create": [
        page(
            "post",
            "/repositories/new/",
            {"gun": "registry.example.com/new/one"},
            302,
            403,
            403,
            302,
        ),
    ],
    "repositories:bulk": [
        page(
            "post", "/repositories/bulk/", {"guns": "registry.example.com/b/1"}, 302, 403, 403, 302
        ),
    ],
    "repositories:detail": [
        page("get", "/repositories/{repo}/", None, 302, 404, 200, 200),
        page("get", "/repositories/{other}/", None, 302, 404, 404, 200),
    ],
    "repositories:progress": [
        page("get", "/repositories/progress/?batch={repo}&ids={other}", None, 302, 200, 200, 200),
    ],
    "repositories:signers": [
        page("post", "/repositories/{repo}/signers/", {"signer_teams": "ops"}, 302, 403, 403, 302),
    ],
    "repositories:sync": [
        page("post", "/repositories/{repo}/sync/", None, 302, 403, 403, 302),
    ],
    "repositories:delete": [
        page("get", "/repositories/{repo}/delete/", None, 302, 403, 403, 200),
        page("post", "/repositories/{other}/delete/", None, 302, 403, 403, 302),
    ],
    "jobs": [page("get", "/jobs/", None, 302, 403, 403, 200)],
    "jobs:detail": [
        page("get", "/jobs/{job}/", None, 302, 404, 200, 200),
        page("get", "/jobs/{other_job}/", None, 302, 404, 404, 200),
    ],
    "trust:root": [page("get", "/trust/root/", None, 302, 403, 403, 200)],
    "trust:root_export": [
        page(
            "post",
            "/trust/root/export/",
            {"passphrase": EXPORT_PASSPHRASE, "passphrase_confirm": EXPORT_PASSPHRASE},
            302,
            403,
            403,
            200,
        ),
    ],
    "trust:pin_create": [
        page(
            "post",
            "/trust/root/pins/",
            {"pattern": "registry.example.com/new/*", "key_ids": ROOT_KEY_ID},
            302,
            403,
            403,
            302,
        ),
    ],
    "trust:pin_delete": [page("post", "/trust/root/pins/{pin}/delete/", None, 302, 403, 403, 302)],
    "content_trust": [
        page("get", "/content-trust/", None, 302, 200, 200, 200),
        page("post", "/content-trust/", {"mode": "permissive"}, 302, 403, 403, 302),
    ],
    "content_trust_check": [page("get", "/content-trust/check/", None, 302, 200, 200, 200)],
    "admission_decisions": [page("get", "/content-trust/admission/", None, 302, 403, 403, 200)],
    # The editor's changes are drafts: a valid one is previewed (200); only a save redirects.
    "content_trust_rule_add": [
        page("get", "/content-trust/rules/new/", None, 302, 403, 403, 200),
        page("post", "/content-trust/rules/new/", RULE_FORM, 302, 403, 403, 200),
    ],
    "content_trust_rule_edit": [
        page("get", "/content-trust/rules/web/edit/", None, 302, 403, 403, 200),
        page("get", "/content-trust/rules/ghost/edit/", None, 302, 403, 403, 404),
        page("post", "/content-trust/rules/web/edit/", RULE_FORM, 302, 403, 403, 200),
    ],
    "content_trust_rule_delete": [
        page("post", "/content-trust/rules/web/delete/", None, 302, 403, 403, 200),
        page("post", "/content-trust/rules/ghost/delete/", None, 302, 403, 403, 404),
    ],
    "content_trust_rule_move": [
        page("post", "/content-trust/rules/web/move/", {"direction": "up"}, 302, 403, 403, 200),
    ],
    "content_trust_yaml": [
        page("get", "/content-trust/yaml/", None, 302, 403, 403, 200),
        page(
            "post",
            "/content-trust/yaml/",
            {
                "document": (
                    "enabled: true\ndefault: {mode: enforced, require: {teams: []}}\nrules: []\n"
                ),
                "version": "1",
            },
            302,
            403,
            403,
            200,
        ),
    ],
    "content_trust_save": [
        page(
            "post",
            "/content-trust/save/",
            {"draft": json.dumps({**DOCUMENT, "enabled": True}), "version": "1"},
            302,
            403,
            403,
            302,
        ),
    ],
    "content_trust_history": [page("get", "/content-trust/history/", None, 302, 200, 200, 200)],
    "directory:console": [page("get", "/directory/", None, 302, 403, 403, 200)],
    "directory:mapping_create": [
        page(
            "post",
            "/directory/mappings/",
            {"source": "ldap", "group": "cn=qa,ou=groups", "team": "qa"},
            302,
            403,
            403,
            302,
        ),
    ],
    "directory:mapping_delete": [
        page("post", "/directory/mappings/{mapping}/delete/", None, 302, 403, 403, 302),
    ],
    # Without a directory, a sync is refused with a message on the directory page.
    "directory:sync_preview": [page("post", "/directory/sync/preview/", None, 302, 403, 403, 302)],
    "directory:sync": [page("post", "/directory/sync/", None, 302, 403, 403, 302)],
    "content_trust_revert": [
        page("post", "/content-trust/history/1/revert/", {"version": "1"}, 302, 403, 403, 302),
    ],
}


def resolver_patterns(resolver=None, prefix: str = "", namespace: str | None = None):
    """Every URL pattern: (qualified name or route, route)."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = pattern.namespace
            if namespace and inner:
                inner = f"{namespace}:{inner}"
            yield from resolver_patterns(pattern, route, inner or namespace)
        elif isinstance(pattern, URLPattern):
            name = pattern.name and (f"{namespace}:{pattern.name}" if namespace else pattern.name)
            yield name or route, route


def test_every_url_is_in_the_table():
    found = {
        key
        for key, route in resolver_patterns()
        if not route.lstrip("^").startswith(SKIPPED_PREFIXES)
    }
    missing = found - TABLE.keys() - ALLOWLIST.keys()
    assert not missing, f"URLs without a permission-matrix entry: {sorted(missing)}"
    stale = (TABLE.keys() | ALLOWLIST.keys()) - found
    assert not stale, f"entries for URLs that no longer exist: {sorted(stale)}"
    assert not TABLE.keys() & ALLOWLIST.keys()
    assert all(TABLE.values())


@pytest.fixture
def world(admin, alice):
    """alice is in ci, which signs repo, and has a key; bob is in no team but has a key;
    ops signs other; qa has no members and nothing names it (so it may be deleted); every
    repository has its queued initialize job; the root key exists (so it can be exported); the
    policy is at version 1, with the one rule web; an LDAP group is mapped to mapped, which
    nothing else uses."""
    custody.root_key()
    policy_apply(actor=admin, document={**DOCUMENT, "rules": [WEB_RULE]})  # version 1
    bob = make_user("bob")
    make_team("ci", members=(alice,), actor=admin)
    make_team("ops", actor=admin)
    make_team("qa", actor=admin)
    mapping = group_mapping_create(
        actor=admin,
        source="ldap",
        group="cn=mapped,ou=groups",
        team=make_team("mapped", actor=admin),
    )
    repo, job = repository_create(actor=admin, gun=GUN, signer_team_names=["ci"])
    other, other_job = repository_create(actor=admin, gun=OTHER_GUN, signer_team_names=["ops"])
    assert {job.status, other_job.status} == {Job.Status.QUEUED}
    return {
        "users": {"anonymous": None, "bob": bob, "alice": alice, "admin": admin},
        "ids": {
            "repo": repo.pk,
            "other": other.pk,
            "job": job.pk,
            "other_job": other_job.pk,
            "key": bundle_issue(user=alice, signing=True).key.pk,
            "bob_key": bundle_issue(user=bob).key.pk,
            "audit": AuditEntry.objects.order_by("pk").first().pk,
            "mapping": mapping.pk,
            "pin": root_key_pin_create(
                actor=admin, pattern="registry.example.com/pinned/*", key_ids=[ROOT_KEY_ID]
            ).pk,
        },
    }


CASES = [
    pytest.param(name, case, caller, id=f"{caller}-{case}")
    for name, cases in TABLE.items()
    for case in cases
    for caller in CALLERS
]


@pytest.mark.parametrize(("name", "case", "caller"), CASES)
def test_permission(api, world, name, case, caller):
    path = case.path.format(**world["ids"])
    assert resolve(path.split("?")[0]).view_name == name, f"{path} is not {name}"
    user = world["users"][caller]
    body = cert(user) if case.body == "certificate" else case.body
    if case.console:
        client = Client()
        if user is not None:
            client.force_login(user)
        response = getattr(client, case.method)(path, body or {})
    else:
        response = getattr(api(user), case.method)(path, body, format="json")
    expected = case.expected[caller]
    assert response.status_code == expected, (
        f"{caller}: {case} answered {response.status_code}, expected {expected}: "
        f"{response.content[:300]!r}"
    )
    if case.console and caller == "anonymous" and name not in {"login", "logout"}:
        assert response["Location"].startswith(reverse("login") + "?next="), response["Location"]
