"""GUNs follow Docker's reference grammar wherever a repository or a root key pin is named:
a port in the registry host is fine, a path Docker refuses is a 400 naming the field, and a
short name is stored as Docker normalises it, so the repository is the one evaluation and
pins consult."""

import pytest
from django.core.exceptions import ValidationError

from policy.evaluation import parse_image_reference
from tests.factories import make_team
from trust import custody, pins
from trust.models import Job, Repository, RootKeyPin
from trust.services.repositories import repository_create

pytestmark = pytest.mark.django_db

K1 = "1" * 64


@pytest.fixture
def admin_api(api, admin):
    custody.root_key()
    make_team("ci", actor=admin)
    return api(admin)


@pytest.mark.parametrize(
    "gun",
    [
        "registry.example.com:5000/ci/web",
        "localhost:5000/ci/web",
        "localhost/ci/web",
        "[::1]:5000/ci/web",
    ],
)
def test_a_port_in_the_registry_host_is_accepted(admin_api, gun):
    response = admin_api.post("/api/v1/repositories/", {"gun": gun}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["gun"] == gun
    assert Repository.objects.get(gun=gun).state == "pending"


@pytest.mark.parametrize(
    ("gun", "words"),
    [
        ("../../etc/passwd", "not a valid host[:port]"),
        ("registry.example.com/../../etc/passwd", "path component '..'"),
        ("registry.example.com/ci/./app", "path component '.'"),
        ("registry.example.com/-app", "path component '-app'"),
        ("registry.example.com/a..b", "path component 'a..b'"),
        ("registry.example.com/ci/app:1.0", "drop the tag"),
        ("Registry.example.com/ci/app", "must be lowercase"),
        ("registry.example.com/" + "x" * 100 + "-", "path component 'xxxxxxxx"),
    ],
)
def test_a_name_docker_refuses_is_a_400_naming_gun(admin_api, gun, words):
    for path, body in [
        ("/api/v1/repositories/", {"gun": gun}),
        ("/api/v1/repositories/adopt/", {"gun": gun, "targets_key": "unused"}),
    ]:
        response = admin_api.post(path, body, format="json")
        assert response.status_code == 400, response.content
        (message,) = response.json()["gun"]
        assert words in message
        assert "x" * 41 not in message  # a long name is not repeated whole
    assert not Repository.objects.exists()
    assert not Job.objects.exists()


def test_bulk_refuses_every_bad_name_naming_guns(admin_api):
    response = admin_api.post(
        "/api/v1/repositories/bulk/",
        {"guns": ["registry.example.com/ok", "../../etc/passwd", "registry.example.com/a..b"]},
        format="json",
    )
    assert response.status_code == 400, response.content
    messages = response.json()["guns"]
    assert messages == [
        "'../../etc/passwd' is not a repository name Docker accepts: registry '..' is not a "
        "valid host[:port].",
        "'registry.example.com/a..b' is not a repository name Docker accepts: path component "
        "'a..b' must be lowercase letters and digits separated by '.', '_', '__' or dashes.",
    ]
    too_long = admin_api.post(
        "/api/v1/repositories/bulk/",
        {"guns": ["registry.example.com/" + "y" * 300]},
        format="json",
    )
    assert too_long.status_code == 400
    assert "255 characters" in str(too_long.json()["guns"])
    assert not Repository.objects.exists()


@pytest.mark.parametrize(
    ("name", "gun"),
    [
        ("app", "docker.io/library/app"),
        ("ci/app", "docker.io/ci/app"),
        ("index.docker.io/ci/app", "docker.io/ci/app"),
    ],
)
def test_a_short_name_is_stored_as_docker_normalises_it(admin_api, name, gun):
    response = admin_api.post("/api/v1/repositories/", {"gun": name}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["gun"] == gun
    assert Job.objects.get().gun == gun
    # The image Docker pulls by the short name is evaluated against this repository.
    assert parse_image_reference(f"{name}:1.0").gun == gun
    again = admin_api.post("/api/v1/repositories/", {"gun": gun}, format="json")
    assert again.status_code == 400
    assert again.json()["gun"] == ["Gatehouse manages this GUN already."]


def test_bulk_normalises_and_merges_short_names(admin_api):
    response = admin_api.post(
        "/api/v1/repositories/bulk/",
        {"guns": ["app", "docker.io/library/app", "localhost:5000/ci/web"]},
        format="json",
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert [r["gun"] for r in body["repositories"]] == [
        "docker.io/library/app",
        "localhost:5000/ci/web",
    ]
    assert body["summary"]["created"] == 2


def test_a_short_named_repository_is_pinned_where_evaluation_looks(admin):
    custody.root_key()
    repository, _ = repository_create(actor=admin, gun="app", signer_team_names=[])
    assert repository.gun == "docker.io/library/app"
    assert pins.root_pin_key_ids(parse_image_reference("app:1.0").gun) is not None
    assert "app" not in pins.root_pins()


def test_the_model_accepts_only_a_normalised_gun():
    with pytest.raises(ValidationError) as short:
        Repository(gun="app").full_clean(exclude=["signer_teams"])
    assert "docker.io/library/app" in str(short.value)
    with pytest.raises(ValidationError) as bad:
        Repository(gun="../../etc/passwd").full_clean(exclude=["signer_teams"])
    assert "not a repository name Docker accepts" in str(bad.value)
    Repository(gun="localhost:5000/ci/web").full_clean(exclude=["signer_teams"])


# --- Root key pins ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "stored", "pinned"),
    [
        ("app", "docker.io/library/app", "docker.io/library/app"),
        ("ci/*", "docker.io/ci/*", "docker.io/ci/web"),
        ("ci/app-*", "docker.io/ci/app-*", "docker.io/ci/app-web"),
        (
            "registry.example.com:5000/ci/app",
            "registry.example.com:5000/ci/app",
            "registry.example.com:5000/ci/app",
        ),
        ("localhost:5000/*", "localhost:5000/*", "localhost:5000/ci/web"),
        ("registry.example.com/ci/*", "registry.example.com/ci/*", "registry.example.com/ci/web"),
        ("registry.exa*", "registry.exa*", "registry.example.com/ci/web"),  # hosts' prefix
    ],
)
def test_pin_patterns_read_their_gun_as_docker_does(admin_api, pattern, stored, pinned):
    response = admin_api.post(
        "/api/v1/trust/pins/", {"pattern": pattern, "key_ids": [K1]}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["pattern"] == stored
    assert list(RootKeyPin.objects.values_list("pattern", flat=True)) == [stored]
    assert pins.root_pin_key_ids(pinned) == [K1]
    assert pins.trust_pinning_snippet()["content-trust"]["trust-pinning"]["root-keys"] == {
        stored: [K1]
    }


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("../*", "is not a valid host[:port]"),
        ("registry.example.com/../*", "path component '..'"),
        ("registry.example.com/ci/./app", "path component '.'"),
        ("-x*", "no registry host starts with"),
    ],
)
def test_a_pin_pattern_docker_refuses_is_a_400_naming_pattern(admin_api, pattern, words):
    response = admin_api.post(
        "/api/v1/trust/pins/", {"pattern": pattern, "key_ids": [K1]}, format="json"
    )
    assert response.status_code == 400, response.content
    (message,) = response.json()["pattern"]
    assert words in message
    assert not RootKeyPin.objects.exists()


def test_a_pin_of_a_short_name_gatehouse_manages_is_refused(admin_api, admin):
    repository_create(actor=admin, gun="registry.example.com/ci/app", signer_team_names=[])
    repository_create(actor=admin, gun="app", signer_team_names=[])
    response = admin_api.post(
        "/api/v1/trust/pins/", {"pattern": "app", "key_ids": [K1]}, format="json"
    )
    assert response.status_code == 400
    assert "Gatehouse manages this repository" in response.json()["pattern"][0]
