"""Root key pins: Notary's resolution, the services, the API, the console, and the
``daemon.json`` snippet agreeing with Gatehouse's own resolution on every GUN."""

import re

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit.models import AuditEntry
from policy.models import EvaluationInputs
from trust import pins, selectors, trust_data
from trust.models import Repository, RootKeyPin
from trust.notary.errors import InvalidMetadata
from trust.notary.verified import RootPin
from trust.services import repositories, root_key

K1, K2, K3, K4, K5, K6 = (f"{digit}" * 64 for digit in "123456")
MANAGED = "registry.example.com/ci/app"
ADOPTED = "registry.example.com/vendor/adopted"


def notary_reads(gun: str, root_keys: dict[str, list[str]]) -> list[str] | None:
    """How Docker and Notary's ``trustpinning`` read ``root-keys``, written out apart from
    ``trust.pins``: the GUN itself, else the longest key ending in ``*`` that the GUN starts
    with (without the ``*``), else nothing."""
    if gun in root_keys:
        return root_keys[gun]
    prefixes = [key for key in root_keys if key[-1:] == "*" and gun[: len(key) - 1] == key[:-1]]
    return root_keys[max(prefixes, key=len)] if prefixes else None


@pytest.fixture(autouse=True)
def _no_cached_trust_data():
    yield
    trust_data.forget()


# --- Resolution, without a database ---------------------------------------------------------


def test_an_exact_gun_beats_every_prefix():
    table = {"registry.example.com/*": [K1], "registry.example.com/ci/app": [K2]}
    assert pins.resolve_pin("registry.example.com/ci/app", table) == [K2]


def test_the_longest_prefix_wins_whatever_the_order():
    table = {
        "registry.example.com/ci/*": [K2],
        "registry.example.com/*": [K1],
        "registry.example.com/ci/ap*": [K3],
    }
    assert pins.resolve_pin("registry.example.com/ci/app", table) == [K3]
    assert pins.resolve_pin("registry.example.com/ci/db", table) == [K2]
    assert pins.resolve_pin("registry.example.com/ops/db", table) == [K1]


def test_no_match_is_none():
    table = {"registry.example.com/ci/*": [K1], "registry.example.com/ci/app": [K2]}
    assert pins.resolve_pin("registry.example.com/ops/db", table) is None
    assert pins.resolve_pin("registry.example.com/ci", table) is None  # not "ci/"
    assert pins.resolve_pin("anything", {}) is None


def test_a_prefix_is_a_plain_string_prefix_as_in_notary():
    table = {"registry.example.com/ci*": [K1]}
    assert pins.resolve_pin("registry.example.com/ci-tools/app", table) == [K1]


GUNS = st.text(alphabet="ab/", min_size=1, max_size=8)
PATTERNS = st.one_of(GUNS, GUNS.map(lambda gun: gun + "*"), st.just("*"))
TABLES = st.dictionaries(PATTERNS, st.lists(st.sampled_from([K1, K2, K3]), min_size=1), max_size=8)


@hypothesis_settings(max_examples=500, deadline=None)
@given(gun=GUNS, table=TABLES)
def test_resolution_is_notarys(gun, table):
    assert pins.resolve_pin(gun, table) == notary_reads(gun, table)


@hypothesis_settings(max_examples=500, deadline=None)
@given(gun=GUNS, table=TABLES)
def test_the_candidate_patterns_of_a_gun_resolve_as_the_whole_table(gun, table):
    """What ``root_pin_key_ids`` reads for one GUN resolves as the whole map would."""
    candidates = set(pins._candidate_patterns(gun))
    narrowed = {pattern: ids for pattern, ids in table.items() if pattern in candidates}
    assert pins.resolve_pin(gun, narrowed) == pins.resolve_pin(gun, table)


@hypothesis_settings(max_examples=300, deadline=None)
@given(gun=GUNS, table=TABLES, ids=st.lists(st.sampled_from([K4, K5]), min_size=1))
def test_an_exact_entry_always_wins(gun, table, ids):
    assert pins.resolve_pin(gun, {**table, gun: ids}) == ids


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def root_key_id(db) -> str:
    return root_key.root_key_ensure()[0]


@pytest.fixture
def world(admin, root_key_id):
    """A repository Gatehouse made, one it adopted, and admins' pins around them."""
    repositories.repository_create(actor=admin, gun=MANAGED, signer_team_names=[])
    repositories.repository_create(
        actor=admin, gun="registry.example.com/vendor/made", signer_team_names=[]
    )
    Repository.objects.create(gun=ADOPTED, adopted=True, pinned_root_key_ids=[K5, K6])
    for pattern, key_ids in [
        ("registry.example.com/*", [K1]),
        ("registry.example.com/vendor/*", [K2]),
        ("registry.example.com/vendor/special", [K3]),
        ("other.example.com:5000/team/app", [K4]),
    ]:
        pins.root_key_pin_create(actor=admin, pattern=pattern, key_ids=key_ids)
    # Pinned by an admin first, then made by Gatehouse: Gatehouse's root wins.
    pins.root_key_pin_create(actor=admin, pattern="registry.example.com/later/app", key_ids=[K4])
    repositories.repository_create(
        actor=admin, gun="registry.example.com/later/app", signer_team_names=[]
    )
    return admin


def generation() -> int:
    return EvaluationInputs.objects.get(pk=1).generation


# --- What pins a GUN ----------------------------------------------------------------------------


def test_snippet_and_gatehouse_agree_on_every_gun(world, root_key_id):
    snippet = pins.trust_pinning_snippet()
    root_keys = snippet["content-trust"]["trust-pinning"]["root-keys"]
    assert snippet["content-trust"]["mode"] == "enforced"
    assert list(root_keys) == sorted(root_keys)
    expected = {
        MANAGED: [root_key_id],  # made: Gatehouse's root, not registry.example.com/*
        "registry.example.com/vendor/made": [root_key_id],  # made, inside an admin prefix
        "registry.example.com/later/app": [root_key_id],  # made after an admin's exact pin
        ADOPTED: [K5, K6],  # adopted, inside an admin prefix
        "registry.example.com/vendor/special": [K3],  # admin, exact
        "registry.example.com/vendor/other/app": [K2],  # admin, longest prefix
        "registry.example.com/ops/db": [K1],  # admin, shorter prefix
        "other.example.com:5000/team/app": [K4],  # admin, exact, with a port
        "other.example.com:5000/team/db": None,  # unpinned
        "registry.example.co/ci/app": None,  # not under registry.example.com/
        "docker.io/library/nginx": None,
    }
    for gun, key_ids in expected.items():
        assert notary_reads(gun, root_keys) == key_ids, gun
        assert pins.root_pin_key_ids(gun) == key_ids, gun
        assert pins.root_pin_key_ids(gun, root_keys) == key_ids, gun
        pin = trust_data.root_pin(gun)
        assert pin == (RootPin.keys(*key_ids) if key_ids else None), gun


def test_root_pins_take_two_queries_however_many_rows(
    world, admin, django_assert_num_queries, root_key_id
):
    for number in range(5):
        pins.root_key_pin_create(
            actor=admin, pattern=f"registry.example.com/n{number}/*", key_ids=[K1]
        )
        repositories.repository_create(
            actor=admin, gun=f"registry.example.com/m{number}/app", signer_team_names=[]
        )
    with django_assert_num_queries(2):
        table = pins.root_pins()
    assert table["registry.example.com/m4/app"] == [selectors.root_key_id()] == [root_key_id]
    with django_assert_num_queries(2):
        assert pins.root_pin_key_ids("registry.example.com/n3/x") == [K1]


@pytest.mark.django_db
def test_without_a_root_key_a_made_repository_falls_back_to_the_pins(admin):
    Repository.objects.create(gun=MANAGED)
    assert pins.root_pins() == {}
    pins.root_key_pin_create(actor=admin, pattern="registry.example.com/*", key_ids=[K1])
    assert pins.root_pin_key_ids(MANAGED) == [K1]


# --- Services -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("", "Give a GUN"),
        ("*", "A bare * would pin every repository"),
        ("registry.example.com/*/app", "* may only end a pattern"),
        ("registry.example.com/ci/**", "* may only end a pattern"),
        ("*.example.com/app", "* may only end a pattern"),
        ("Registry.example.com/ci/app", "A pattern is a GUN"),
        ("registry.example.com//app", "A pattern is a GUN"),
        ("registry.example.com/ci/", "A pattern is a GUN"),
        ("/registry.example.com/*", "A pattern is a GUN"),
        ("registry.example.com/c i/*", "A pattern is a GUN"),
        ("registry.example.com/" + "a" * 300, "too long"),
    ],
)
def test_bad_patterns_are_refused_naming_the_field(admin, pattern, words):
    with pytest.raises(ValidationError) as error:
        pins.root_key_pin_create(actor=admin, pattern=pattern, key_ids=[K1])
    (message,) = error.value.message_dict["pattern"]
    assert words in message
    assert "a" * 50 not in message  # a long input is not echoed back
    assert list(error.value.message_dict) == ["pattern"]
    assert not RootKeyPin.objects.exists()


@pytest.mark.parametrize(
    ("key_ids", "words"),
    [
        ([], "at least one"),
        (["abc"], "Not a key ID: 'abc'"),
        (["g" * 64], "Not a key ID"),
        ([K1 + "0"], "Not a key ID"),
        (["x" * 5000], "Not a key ID: 'xxxxxxxxxxxxxxxxxxxx…'"),
        ([f"{n:064x}" for n in range(21)], "at most 20"),
        (K1, "a list"),
        ([None], "Not a key ID"),
    ],
)
def test_bad_key_ids_are_refused_naming_the_field(admin, key_ids, words):
    with pytest.raises(ValidationError) as error:
        pins.root_key_pin_create(actor=admin, pattern="registry.example.com/*", key_ids=key_ids)
    assert list(error.value.message_dict) == ["key_ids"]
    assert words in " ".join(error.value.message_dict["key_ids"])
    assert not RootKeyPin.objects.exists()


def test_both_fields_are_named_at_once(admin):
    with pytest.raises(ValidationError) as error:
        pins.root_key_pin_create(actor=admin, pattern="*", key_ids=["nope"])
    assert sorted(error.value.message_dict) == ["key_ids", "pattern"]


def test_key_ids_are_lowercased_trimmed_and_kept_once(admin):
    pin = pins.root_key_pin_create(
        actor=admin,
        pattern="  registry.example.com/vendor/*  ",
        key_ids=[K2.upper(), f" {K1} ", K2],
    )
    pin.refresh_from_db()
    assert (pin.pattern, pin.key_ids, pin.created_by) == (
        "registry.example.com/vendor/*",
        [K2, K1],
        admin,
    )
    assert pins.resolve_pin("registry.example.com/vendor/x", pins.root_pins()) == [K2, K1]


def test_twenty_key_ids_and_a_255_character_pattern_fit(admin):
    pattern = "registry.example.com/" + "a" * 233 + "*"
    assert len(pattern) == 255
    key_ids = [f"{n:064x}" for n in range(20)]
    pin = pins.root_key_pin_create(actor=admin, pattern=pattern, key_ids=key_ids + key_ids)
    assert pin.key_ids == key_ids


def test_a_duplicate_pattern_and_a_managed_gun_are_refused(admin, root_key_id):
    pins.root_key_pin_create(actor=admin, pattern="registry.example.com/*", key_ids=[K1])
    repositories.repository_create(actor=admin, gun=MANAGED, signer_team_names=[])

    with pytest.raises(ValidationError) as duplicate:
        pins.root_key_pin_create(actor=admin, pattern="registry.example.com/*", key_ids=[K2])
    with pytest.raises(ValidationError) as managed:
        pins.root_key_pin_create(actor=admin, pattern=MANAGED, key_ids=[K2])

    assert "pinned already" in duplicate.value.message_dict["pattern"][0]
    assert "Gatehouse manages this repository" in managed.value.message_dict["pattern"][0]
    assert list(RootKeyPin.objects.values_list("pattern", "key_ids")) == [
        ("registry.example.com/*", [K1])
    ]


def test_each_change_is_audited_and_counts_at_the_next_evaluation(
    admin, root_key_id, django_capture_on_commit_callbacks
):
    gun = "registry.example.com/vendor/app"
    assert trust_data.root_pin(gun) is None
    EvaluationInputs.objects.get_or_create(pk=1)
    start = generation()

    trust_data._cache[gun] = "stale"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        pin = pins.root_key_pin_create(
            actor=admin, pattern="registry.example.com/vendor/*", key_ids=[K1]
        )
    assert gun not in trust_data._cache
    assert trust_data.forget in callbacks
    assert generation() == start + 1
    assert trust_data.root_pin(gun) == RootPin.keys(K1)

    trust_data._cache[gun] = "stale"
    pins.root_key_pin_update(actor=admin, pin=pin, key_ids=[K2, K3])
    assert gun not in trust_data._cache
    assert generation() == start + 2
    assert trust_data.root_pin(gun) == RootPin.keys(K2, K3)

    trust_data._cache[gun] = "stale"
    pins.root_key_pin_delete(actor=admin, pin=pin)
    assert gun not in trust_data._cache
    assert generation() == start + 3
    assert trust_data.root_pin(gun) is None

    entries = AuditEntry.objects.filter(target_type="root_pin").order_by("pk")
    assert [(e.action, e.actor, e.target_id, e.before, e.after) for e in entries] == [
        ("root_pin.created", admin, "registry.example.com/vendor/*", None, {"key_ids": [K1]}),
        (
            "root_pin.updated",
            admin,
            "registry.example.com/vendor/*",
            {"key_ids": [K1]},
            {"key_ids": [K2, K3]},
        ),
        ("root_pin.deleted", admin, "registry.example.com/vendor/*", {"key_ids": [K2, K3]}, None),
    ]


def test_a_refused_update_changes_nothing(admin):
    pin = pins.root_key_pin_create(actor=admin, pattern="registry.example.com/*", key_ids=[K1])
    with pytest.raises(ValidationError) as error:
        pins.root_key_pin_update(actor=admin, pin=pin, key_ids=[])
    assert "key_ids" in error.value.message_dict
    pin.refresh_from_db()
    assert pin.key_ids == [K1]
    assert not AuditEntry.objects.filter(action="root_pin.updated").exists()


# --- API ---------------------------------------------------------------------------------------


def test_admin_creates_lists_reads_changes_and_deletes_pins(api, admin):
    client = api(admin)

    created = client.post(
        "/api/v1/trust/pins/",
        {"pattern": "registry.example.com/vendor/*", "key_ids": [K1.upper()]},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert set(body) == {"id", "pattern", "key_ids", "created_by", "created_at", "updated_at"}
    assert (body["pattern"], body["key_ids"], body["created_by"]) == (
        "registry.example.com/vendor/*",
        [K1],
        "root",
    )
    url = f"/api/v1/trust/pins/{body['id']}/"

    listed = client.get("/api/v1/trust/pins/").json()
    assert listed["count"] == 1
    assert listed["results"] == [body]
    assert client.get(url).json() == body

    changed = client.patch(url, {"key_ids": [K2, K3]}, format="json")
    assert changed.status_code == 200
    assert changed.json()["key_ids"] == [K2, K3]
    same = client.patch(url, {"key_ids": [K2], "pattern": body["pattern"]}, format="json")
    assert same.status_code == 200
    moved = client.patch(url, {"key_ids": [K2], "pattern": "registry.example.com/*"}, format="json")
    assert moved.status_code == 400
    assert "pattern" in moved.json()
    assert client.put(url, {"key_ids": [K2]}, format="json").status_code == 405

    root = client.get("/api/v1/trust/root/").json()
    root_keys = root["daemon_json"]["content-trust"]["trust-pinning"]["root-keys"]
    assert root_keys == {"registry.example.com/vendor/*": [K2]}

    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    assert client.get("/api/v1/trust/pins/").json()["count"] == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"pattern": "*", "key_ids": [K1]}, "pattern"),
        ({"pattern": "registry.example.com/*/app", "key_ids": [K1]}, "pattern"),
        ({"pattern": "registry.example.com/" + "a" * 300, "key_ids": [K1]}, "pattern"),
        ({"key_ids": [K1]}, "pattern"),
        ({"pattern": "registry.example.com/*", "key_ids": ["not-hex"]}, "key_ids"),
        ({"pattern": "registry.example.com/*", "key_ids": []}, "key_ids"),
        ({"pattern": "registry.example.com/*", "key_ids": K1}, "key_ids"),
        ({"pattern": "registry.example.com/*"}, "key_ids"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, admin, data, field):
    response = api(admin).post("/api/v1/trust/pins/", data, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert "a" * 50 not in response.text
    assert not RootKeyPin.objects.exists()


def test_a_duplicate_is_a_400_on_the_pattern(api, admin):
    client = api(admin)
    data = {"pattern": "registry.example.com/*", "key_ids": [K1]}
    assert client.post("/api/v1/trust/pins/", data, format="json").status_code == 201
    response = client.post("/api/v1/trust/pins/", data, format="json")
    assert response.status_code == 400
    assert "pattern" in response.json()


def test_pins_are_for_admins_only(api, admin, alice):
    pin = pins.root_key_pin_create(actor=admin, pattern="registry.example.com/*", key_ids=[K1])
    data = {"pattern": "registry.example.com/ci/*", "key_ids": [K2]}
    detail = f"/api/v1/trust/pins/{pin.pk}/"
    for caller, expected in [(None, 401), (alice, 403)]:
        client = api(caller)
        assert client.get("/api/v1/trust/pins/").status_code == expected
        assert client.post("/api/v1/trust/pins/", data, format="json").status_code == expected
        assert client.get(detail).status_code == expected
        assert client.patch(detail, {"key_ids": [K2]}, format="json").status_code == expected
        assert client.delete(detail).status_code == expected
    assert list(RootKeyPin.objects.values_list("pattern", "key_ids")) == [
        ("registry.example.com/*", [K1])
    ]


def test_an_unknown_pin_is_a_404(api, admin):
    client = api(admin)
    for url in ("/api/v1/trust/pins/999/", "/api/v1/trust/pins/nope/"):
        assert client.get(url).status_code == 404
        assert client.patch(url, {"key_ids": [K1]}, format="json").status_code == 404
        assert client.delete(url).status_code == 404


# --- Console -------------------------------------------------------------------------------------


@pytest.fixture
def as_admin(client, admin):
    client.force_login(admin)
    return client


def test_admin_adds_and_deletes_a_pin_on_the_trust_root_page(as_admin, admin):
    page = as_admin.get("/trust/root/")
    assert "Root key pins" in page.text
    assert "passes only when a pin covers it" in page.text
    assert 'action="/trust/root/pins/"' in page.text

    added = as_admin.post(
        "/trust/root/pins/",
        {"pattern": "registry.example.com/vendor/*", "key_ids": f"{K1}, {K2.upper()}\n{K1}"},
        follow=True,
    )

    assert added.redirect_chain[-1][0] == "/trust/root/"
    pin = RootKeyPin.objects.get()
    assert (pin.pattern, pin.key_ids, pin.created_by) == (
        "registry.example.com/vendor/*",
        [K1, K2],
        admin,
    )
    assert [str(m) for m in added.context["messages"]] == [
        "Root key pin registry.example.com/vendor/* added."
    ]
    assert f"/trust/root/pins/{pin.pk}/delete/" in added.text
    assert "&quot;registry.example.com/vendor/*&quot;: [" in added.text

    deleted = as_admin.post(f"/trust/root/pins/{pin.pk}/delete/", follow=True)

    assert deleted.redirect_chain[-1][0] == "/trust/root/"
    assert not RootKeyPin.objects.exists()
    assert "registry.example.com/vendor/*" not in deleted.context["daemon_json"]
    assert list(
        AuditEntry.objects.filter(target_type="root_pin")
        .order_by("pk")
        .values_list("action", flat=True)
    ) == ["root_pin.created", "root_pin.deleted"]


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"pattern": "*", "key_ids": K1}, "pattern", "A bare * would pin every repository"),
        ({"pattern": "registry.example.com/*", "key_ids": "abc"}, "key_ids", "Not a key ID"),
        ({"pattern": "registry.example.com/*", "key_ids": " , "}, "key_ids", "at least one"),
        ({"pattern": "", "key_ids": K1}, "pattern", "This field is required."),
    ],
)
def test_a_refused_pin_shows_the_error_on_the_form(as_admin, data, field, words):
    response = as_admin.post("/trust/root/pins/", data)

    assert response.status_code == 200
    errors = response.context["pin_form"].errors
    assert words in " ".join(errors[field])
    assert 'class="errorlist' in response.text
    assert not RootKeyPin.objects.exists()


def test_pin_pages_are_for_admins(client, admin, alice):
    pin = pins.root_key_pin_create(actor=admin, pattern="registry.example.com/*", key_ids=[K1])
    data = {"pattern": "registry.example.com/ci/*", "key_ids": K2}

    assert client.post("/trust/root/pins/", data).status_code == 302  # to the login page
    client.force_login(alice)
    assert client.post("/trust/root/pins/", data).status_code == 403
    assert client.post(f"/trust/root/pins/{pin.pk}/delete/").status_code == 403
    assert list(RootKeyPin.objects.values_list("pattern", flat=True)) == ["registry.example.com/*"]
    client.force_login(admin)
    assert client.get(f"/trust/root/pins/{pin.pk}/delete/").status_code == 405
    assert client.post("/trust/root/pins/999/delete/").status_code == 404


# --- With a real Notary ---------------------------------------------------------------------------


def cli_root_key_id(notary_cli) -> str:
    """The root key ID as ``notary key list`` shows it: what an admin pins."""
    listing = notary_cli("key", "list").stdout
    (key_id,) = (
        word
        for line in listing.splitlines()
        if line.split()[:1] == ["root"]
        for word in line.split()
        if re.fullmatch(r"[0-9a-f]{64}", word)
    )
    return key_id


@pytest.mark.notary
def test_an_admins_pin_of_the_key_notary_lists_verifies_a_cli_repository(
    settings, notary_server, notary_cli, notary_gun, admin
):
    settings.NOTARY_URL = notary_server.url
    settings.GATEHOUSE_TRUST_REVALIDATE_SECONDS = 0
    notary_cli("init", notary_gun, "-p")
    key_id = cli_root_key_id(notary_cli)
    assert trust_data.verified_repository(notary_gun).root_pinned is False

    namespace = notary_gun.rsplit("/", 1)[0] + "/"
    pin = pins.root_key_pin_create(actor=admin, pattern=namespace + "*", key_ids=[key_id.upper()])
    assert trust_data.verified_repository(notary_gun).root_pinned is True

    pins.root_key_pin_update(actor=admin, pin=pin, key_ids=[K1])
    with pytest.raises(InvalidMetadata):
        trust_data.verified_repository(notary_gun)

    # The exact GUN beats the prefix, as in Docker.
    pins.root_key_pin_create(actor=admin, pattern=notary_gun, key_ids=[key_id])
    assert trust_data.verified_repository(notary_gun).root_pinned is True
