"""Property-based fuzz of ``/api/v1/`` from its own OpenAPI schema (schemathesis, WSGI mode).

Every operation is called as an admin with a bearer token, with data generated from the
schema. No answer may be a 5xx, except a 503 that says Notary is unreachable (``NOTARY_URL``
points at a closed port); answers must match the schema's content types and bodies where it
documents them.
"""

import base64
import dataclasses
import html.parser
import json
import re
import socket
import urllib.parse
from collections.abc import Callable
from functools import partial

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signals
from django.db import close_old_connections, transaction
from django.http import HttpResponse
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from gatehouse.wsgi import application

ADMIN = "fuzzadmin"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def in_test_transaction():
    """Calls go straight to the WSGI application, which closes "old" connections at each
    request's start and end; inside the test's transaction that would close this test's
    connection. Django's test client turns that off the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def admin_token(db, settings, in_test_transaction):
    from accounts.services import api_token_create
    from tests.factories import make_user

    settings.NOTARY_URL = f"http://127.0.0.1:{closed_port()}"
    settings.NOTARY_TIMEOUT = 1.0
    raw_token, _ = api_token_create(user=make_user(ADMIN, is_admin=True))
    return raw_token


def not_a_server_error(ctx, response, case) -> None:
    """No 5xx; a 503 only when it says Notary (not configured or unreachable) is the cause."""
    if response.status_code < 500:
        return
    body = response.text
    if response.status_code == 503 and "notary" in body.lower():
        return
    raise AssertionError(
        f"{case.method} {case.formatted_path} answered {response.status_code}\n"
        f"query={case.query!r} body={case.body!r}\nresponse: {body[:2000]}"
    )


# Loaded at collection (pytest-django has set Django up): serving the schema reads no data.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application).exclude(
    # Revokes the token this test authenticates with.
    path="/api/v1/auth/logout/",
)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_without_server_errors(case, admin_token):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {admin_token}"},
        checks=[not_a_server_error, content_type_conformance, response_schema_conformance],
    )


# --- Bad input everywhere -------------------------------------------------------------------
#
# Every operation of the schema, ``/auth/token`` and every console form, fed NUL characters
# and lone surrogates in each path parameter, query parameter and text field, JSON nested
# 5,000 deep and bodies that are not objects. The answer may be any 4xx, never a 5xx (but the
# 503 that says Notary is unreachable). Hypothesis draws the bad strings, derandomized: the
# same few every run. Each request runs in a savepoint that is rolled back, so a deletion or a
# deactivation does not hide what the next request would reach.

FUZZ_TEAM, FUZZ_USER, FUZZ_GONE = "fuzzteam", "fuzzuser", "fuzzgone"
FUZZ_MAPPED = "fuzzmapped"  # a team a directory group is mapped to
FUZZ_GUN = "registry.example.com/fuzz/app"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
DEEP = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000
BAD_BODIES = [DEEP, DEEP_OBJECT, "1", "null", '"text"', "[]", "[{}]"]

bad_strings = st.tuples(
    st.text(max_size=6),
    st.sampled_from(["\x00", "\ud800", "\udfff", "\udc00\ud800"]),
    st.text(max_size=6),
).map("".join)


def fuzzed(test: Callable) -> Callable:
    """``test(…, bad)`` for NUL, a lone surrogate and two strings drawn around one of them."""
    test = settings(
        max_examples=2,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )(test)
    return given(bad=bad_strings)(example(bad="\x00")(example(bad="\ud800")(test)))


@dataclasses.dataclass
class FuzzWorld:
    """What the fuzzed requests name: one of each thing, so a lookup finds something."""

    token: str
    values: dict[str, str]  # path parameter -> a value that exists
    ids: dict[str, str]  # path before an ``{id}`` (or console namespace) -> a row's id


@pytest.fixture
def fuzz_world(db, settings) -> FuzzWorld:
    from accounts.services import api_token_create, user_deactivate
    from audit.models import AuditEntry
    from bundles.services import bundle_issue
    from directory.services import group_mapping_create
    from policy.services import policy_apply
    from tests.factories import make_team, make_user
    from trust.pins import root_key_pin_create
    from trust.services.repositories import repository_create

    settings.NOTARY_URL = f"http://127.0.0.1:{closed_port()}"
    settings.NOTARY_TIMEOUT = 1.0
    admin = make_user(ADMIN, is_admin=True)
    member = make_user(FUZZ_USER)
    user_deactivate(actor=admin, user=make_user(FUZZ_GONE))
    make_team(FUZZ_TEAM, members=(member,), actor=admin)
    mapping = group_mapping_create(
        actor=admin,
        source="ldap",
        group="cn=fuzz,ou=groups",
        team=make_team(FUZZ_MAPPED, actor=admin),
    )
    key = bundle_issue(user=admin, label="fuzz", signing=True).key
    repository, job = repository_create(actor=admin, gun=FUZZ_GUN, signer_team_names=[FUZZ_TEAM])
    pin = root_key_pin_create(
        actor=admin, pattern="registry.example.com/pinned/*", key_ids=["a" * 64]
    )
    # Two versions, so the history offers a revert; a rule named as the team is, so the rule
    # pages find one under the same ``name``.
    document = {
        "enabled": False,
        "default": {"mode": "permissive", "require": {"teams": []}},
        "rules": [],
    }
    policy_apply(actor=admin, document=document)
    rule = {"name": FUZZ_TEAM, "images": [FUZZ_GUN], "require": {"teams": [{"team": FUZZ_TEAM}]}}
    policy, _ = policy_apply(actor=admin, document={**document, "rules": [rule]})
    raw_token, _ = api_token_create(user=admin)
    return FuzzWorld(
        token=raw_token,
        values={
            "username": ADMIN,
            "name": FUZZ_TEAM,
            "key_id": key.pk,
            "number": str(policy.version),
        },
        ids={
            "/api/v1/audit/": str(AuditEntry.objects.latest("pk").pk),
            "/api/v1/directory/mappings/": str(mapping.pk),
            "/api/v1/jobs/": str(job.pk),
            "/api/v1/repositories/": str(repository.pk),
            "/api/v1/trust/pins/": str(pin.pk),
            "/api/v1/users/{username}/keys/": key.pk,
            "repositories:": str(repository.pk),
            "jobs:": str(job.pk),
            "directory:": str(mapping.pk),
            "trust:": str(pin.pk),
        },
    )


def rolled_back(send: Callable[[], HttpResponse]) -> HttpResponse:
    with transaction.atomic():
        response = send()
        transaction.set_rollback(True)
    return response


def assert_no_server_error(response: HttpResponse, what: str) -> None:
    status = response.status_code
    body = response.content.decode(errors="replace")
    if status < 500 or (status == 503 and "notary" in body.lower()):
        return
    raise AssertionError(f"{what} answered {status}\n{body[:2000]}")


def quoted(text: str) -> str:
    """``text`` as a client puts it in a URL or a form: a lone surrogate as the bytes
    ``%ED%A0%80``, what UTF-8 would make of it were it allowed."""
    return urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")


def form_encoded(data: list[tuple[str, str]]) -> str:
    return "&".join(f"{quoted(name)}={quoted(value)}" for name, value in data)


def basic(username: str, password: str) -> str:
    credentials = f"{username}:{password}".encode("utf-8", "surrogatepass")
    return "Basic " + base64.b64encode(credentials).decode()


# The API: the schema's operations, each with its parameters and its body's properties.
def _resolved(node: dict) -> dict:
    while "$ref" in node:
        node = schema.raw_schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _operations() -> list[tuple[str, str, list[dict], dict]]:
    found = []
    for path, operations in schema.raw_schema["paths"].items():
        for method, operation in operations.items():
            if method not in HTTP_METHODS or path == "/api/v1/auth/logout/":
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            properties = _resolved(body["schema"]).get("properties", {}) if body else {}
            found.append((method, path, operation.get("parameters", []), properties))
    return found


OPERATIONS = _operations()
WRITES = [(method, path) for method, path, _, _ in OPERATIONS if method != "get"]


def _plain(prop: dict) -> object:
    """A harmless value of the property's type, for the fields not being fuzzed."""
    prop = _resolved(prop.get("oneOf", [prop])[0])
    kind = prop.get("type")
    if kind == "boolean":
        return False
    if kind == "integer":
        return 1
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return prop.get("enum", ["fuzz"])[0]


def _holds_text(prop: dict) -> bool:
    prop = _resolved(prop)
    return any(
        option.get("type") == "string"
        or "enum" in option
        or (option.get("type") == "array" and _holds_text(option.get("items", {})))
        for option in map(_resolved, prop.get("oneOf", [prop]))
    )


def _api_url(world: FuzzWorld, path: str, bad: tuple[str, str] | None = None) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if bad is not None and bad[0] == name:
            return quoted(bad[1])
        if name == "id":
            return quoted(world.ids[match.string[: match.start()]])
        return quoted(world.values[name])

    return re.sub(r"\{(\w+)\}", value, path)


def _api_call(client, world: FuzzWorld, method: str, url: str, body: str | None) -> HttpResponse:
    kwargs = {"HTTP_AUTHORIZATION": f"Bearer {world.token}"}
    if body is not None:
        kwargs.update(data=body, content_type="application/json")
    return rolled_back(lambda: getattr(client, method)(url, **kwargs))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "parameters", "properties"),
    OPERATIONS,
    ids=[f"{method.upper()} {path}" for method, path, _, _ in OPERATIONS],
)
@fuzzed
def test_api_refuses_bad_strings_without_server_errors(
    method, path, parameters, properties, bad, fuzz_world, client
):
    client.raise_request_exception = False
    plain = {name: _plain(prop) for name, prop in properties.items()}
    plain_body = json.dumps(plain) if properties else None
    attempts = []  # (url, body)
    for parameter in parameters:
        if parameter["in"] == "path":
            attempts.append((_api_url(fuzz_world, path, (parameter["name"], bad)), plain_body))
        elif parameter["in"] == "query":
            query = f"?{quoted(parameter['name'])}={quoted(bad)}"
            attempts.append((_api_url(fuzz_world, path) + query, plain_body))
    for name, prop in properties.items():
        if _holds_text(prop):
            value = [bad] if _resolved(prop).get("type") == "array" else bad
            attempts.append((_api_url(fuzz_world, path), json.dumps({**plain, name: value})))
    if properties:
        attempts.append((_api_url(fuzz_world, path), json.dumps({**plain, bad: "fuzz"})))
    for url, body in attempts:
        response = _api_call(client, fuzz_world, method, url, body)
        assert_no_server_error(response, f"{method.upper()} {url} with {body}")


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), WRITES, ids=[f"{m.upper()} {p}" for m, p in WRITES])
def test_api_refuses_deep_and_non_object_bodies_without_server_errors(
    method, path, fuzz_world, client, caplog
):
    client.raise_request_exception = False
    url = _api_url(fuzz_world, path)
    for body in BAD_BODIES:
        response = _api_call(client, fuzz_world, method, url, body)
        assert_no_server_error(response, f"{method.upper()} {url} with {body[:20]}…")
    assert not [record for record in caplog.records if record.exc_info]


@pytest.mark.django_db
@fuzzed
def test_notary_token_refuses_bad_strings_without_server_errors(bad, fuzz_world, client):
    client.raise_request_exception = False
    good = {
        "service": django_settings.GATEHOUSE_NOTARY_SERVICE,
        "scope": f"repository:{FUZZ_GUN}:pull",
        "account": ADMIN,
    }
    # (query, Basic credentials): each parameter bad, then the username, then the password.
    attempts = [({**good, name: bad}, (ADMIN, fuzz_world.token)) for name in good]
    attempts += [(good, (bad, fuzz_world.token)), (good, (ADMIN, bad))]
    for query, credentials in attempts:
        url = f"/auth/token?{form_encoded(list(query.items()))}"
        response = rolled_back(partial(client.get, url, HTTP_AUTHORIZATION=basic(*credentials)))
        assert_no_server_error(response, f"{url} as {credentials!r}")


# The console: every page gets bad values in each of its path parameters, and every form on
# the pages (as an admin sees them; the login page as anyone) in each of its fields.
def _console_routes() -> list[tuple[str, list[str]]]:
    """Every named console URL (not the API's, nor the token service's) and its parameters."""

    def walk(patterns, namespace: str, prefix: str):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                yield from walk(entry.url_patterns, inner, route)
            elif entry.name and not route.startswith(("api/", "auth/")):
                yield f"{namespace}{entry.name}", list(entry.pattern.converters)

    skipped = {"healthz", "readyz", "logout"}
    routes = walk(get_resolver().url_patterns, "", "")
    return [(name, parameters) for name, parameters in routes if name not in skipped]


CONSOLE_ROUTES = _console_routes()
CONSOLE_PATHS = [(name, parameters) for name, parameters in CONSOLE_ROUTES if parameters]


def _console_url(world: FuzzWorld, name: str, parameters: list[str], bad=None) -> str:
    kwargs = {}
    for parameter in parameters:
        if parameter == "pk":
            kwargs[parameter] = world.ids[name.split(":")[0] + ":"]
        elif parameter == "username":
            kwargs[parameter] = FUZZ_GONE if name == "users:reactivate" else FUZZ_USER
        else:
            kwargs[parameter] = world.values[parameter]
    if bad is None:
        return reverse(name, kwargs=kwargs)
    # Reversed with a stand-in (a number, for an <int:…>) then replaced: reverse() checks
    # the value against the converter, and the point is a value no converter accepts.
    parameter, value = bad
    stand_in = "987654321" if parameter in {"pk", "number"} else "fuzz-stand-in"
    return reverse(name, kwargs={**kwargs, parameter: stand_in}).replace(stand_in, quoted(value))


class _Forms(html.parser.HTMLParser):
    """The forms of a page: each one's method, action, the data it would send and its fields."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = {key: value or "" for key, value in attrs}
        name = attributes.get("name", "")
        if tag == "form":
            self._form = {
                "method": attributes.get("method", "get").lower(),
                "action": attributes.get("action", ""),
                "data": [],
                "fields": [],
            }
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        data, fields = self._form["data"], self._form["fields"]
        if tag == "input" and name:
            kind = attributes.get("type", "text").lower()
            if kind not in {"checkbox", "radio"} or "checked" in attributes:
                data.append((name, attributes.get("value", "")))
            if name != "csrfmiddlewaretoken" and name not in fields:
                fields.append(name)
        elif tag == "button" and name:
            data.append((name, attributes.get("value", "")))
        elif tag == "textarea" and name:
            self._textarea = name
            data.append((name, ""))
            fields.append(name)
        elif tag == "select" and name:
            self._select = name
            fields.append(name)
        elif tag == "option" and self._select is not None:
            chosen = any(field == self._select for field, _ in data)
            if "selected" in attributes or not chosen:
                data[:] = [pair for pair in data if pair[0] != self._select]
                data.append((self._select, attributes.get("value", "")))

    def handle_data(self, text: str) -> None:
        if self._form is not None and self._textarea is not None:
            name, value = self._form["data"][-1]
            self._form["data"][-1] = (name, value + text)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def forms_of(page: str) -> list[dict]:
    parser = _Forms()
    parser.feed(page)
    logout = reverse("logout")
    return [form for form in parser.forms if not form["action"].endswith(logout)]


@pytest.fixture
def console(fuzz_world, client):
    """The fuzz admin's browser. ``keep()`` puts its session cookie back after a request
    that replaced it (a password change) was rolled back."""
    from accounts.models import User

    client.raise_request_exception = False
    client.force_login(User.objects.get(username=ADMIN))
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value

    def keep() -> None:
        client.cookies[django_settings.SESSION_COOKIE_NAME] = session

    client.keep = keep
    return client


def _console_call(client, method: str, url: str, data: str = "") -> HttpResponse:
    def send() -> HttpResponse:
        if method == "get":
            return client.get(f"{url}?{data}" if data else url)
        return client.post(url, data.encode(), content_type="application/x-www-form-urlencoded")

    response = rolled_back(send)
    if hasattr(client, "keep"):
        client.keep()
    return response


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "parameters"), CONSOLE_PATHS, ids=[n for n, _ in CONSOLE_PATHS])
@fuzzed
def test_console_paths_refuse_bad_strings_without_server_errors(
    name, parameters, bad, fuzz_world, console
):
    for parameter in parameters:
        url = _console_url(fuzz_world, name, parameters, bad=(parameter, bad))
        for method in ("get", "post"):
            assert_no_server_error(_console_call(console, method, url), f"{method} {url}")


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "parameters"), CONSOLE_ROUTES, ids=[n for n, _ in CONSOLE_ROUTES])
@fuzzed
def test_console_forms_refuse_bad_strings_without_server_errors(
    name, parameters, bad, fuzz_world, console
):
    page_url = _console_url(fuzz_world, name, parameters)
    client = Client(raise_request_exception=False) if name == "login" else console
    page = _console_call(client, "get", page_url)
    assert_no_server_error(page, f"GET {page_url}")
    _submit_forms_with(client, page_url, page, bad)


def _submit_forms_with(client, page_url: str, page: HttpResponse, bad: str) -> None:
    """Each form of ``page`` sent with ``bad`` in each of its fields in turn."""
    for form in forms_of(page.content.decode()):
        action = urllib.parse.urljoin(page_url, form["action"])
        for field in form["fields"]:
            data = [(key, bad if key == field else value) for key, value in form["data"]]
            if field not in dict(data):
                data.append((field, bad))
            response = _console_call(client, form["method"], action, form_encoded(data))
            assert_no_server_error(response, f"{form['method']} {action} with {data!r}")


# A whole policy, as the YAML editor and a previewed draft's Save button send it: its strings
# can hold bad ones escaped ("\u0000" in JSON, "\0" in YAML), which no form field sees.
DRAFT = {
    "enabled": True,
    "default": {"mode": "enforced", "require": {"teams": [{"team": FUZZ_TEAM, "count": 1}]}},
    "rules": [
        {
            "name": "fuzz",
            "images": [FUZZ_GUN],
            "namespaces": ["prod"],
            "mode": "permissive",
            "require": {"match": "any", "teams": [{"team": FUZZ_TEAM}]},
        }
    ],
}


def _spoiled(value: object, bad: str) -> list[object]:
    """``value`` with ``bad`` in place of each of its strings in turn, and added as a key to
    each of its objects."""
    if isinstance(value, str):
        return [bad]
    if isinstance(value, list):
        return [
            [*value[:i], new, *value[i + 1 :]]
            for i, old in enumerate(value)
            for new in _spoiled(old, bad)
        ]
    if isinstance(value, dict):
        found: list[object] = [{**value, bad: "fuzz"}]
        for key, old in value.items():
            found += [{**value, key: new} for new in _spoiled(old, bad)]
        return found
    return []


@pytest.mark.django_db
@fuzzed
def test_console_policy_drafts_refuse_bad_strings_without_server_errors(bad, fuzz_world, console):
    # The preview a POST shows (here of a rule's deletion), with the Save button's form.
    preview_url = reverse("content_trust_rule_delete", kwargs={"name": FUZZ_TEAM})
    preview = _console_call(console, "post", preview_url)
    assert preview.status_code == 200, preview.content[:2000]
    _submit_forms_with(console, preview_url, preview, bad)
    version = str(fuzz_world.values["number"])
    for document in _spoiled(DRAFT, bad):
        text = json.dumps(document)  # JSON is YAML too
        for name, field in (("content_trust_save", "draft"), ("content_trust_yaml", "document")):
            url = reverse(name)
            data = form_encoded([(field, text), ("version", version)])
            assert_no_server_error(_console_call(console, "post", url, data), f"{url} {text}")
