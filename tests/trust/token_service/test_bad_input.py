"""``GET /auth/token`` with NUL characters in its parameters or its Basic credentials is a
400 that says so, never a 500 (PostgreSQL stores no NUL, so no lookup may get one)."""

import base64

import pytest

from tests.factories import PASSWORD, make_team
from trust.models import Repository

pytestmark = pytest.mark.django_db

GUN = "registry.example.com/ci/app"
NUL_IN_QUERY = "Null characters are not allowed in the query string."
NUL_IN_CREDENTIALS = "Null characters are not allowed in the credentials."


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def repository(admin):
    repository = Repository.objects.create(gun=GUN)
    repository.signer_teams.set([make_team("ci", actor=admin)])
    return repository


def ask(client, query: str, credentials: tuple[str, str] | None = None):
    headers = {"HTTP_AUTHORIZATION": basic(*credentials)} if credentials else {}
    return client.get(f"/auth/token?{query}", **headers)


@pytest.mark.parametrize(
    "query",
    [
        f"service=notary-server&scope=repository:{GUN}%00:pull",
        f"service=notary-server&scope=repository:{GUN}:pull%00",
        f"service=notary%00-server&scope=repository:{GUN}:pull",
        f"service=notary-server&scope=repository:{GUN}:pull&account=root%00",
    ],
)
def test_a_nul_in_a_parameter_is_a_400(client, admin, repository, query):
    response = ask(client, query, ("root", PASSWORD))
    assert response.status_code == 400
    assert response.json() == {"detail": NUL_IN_QUERY}


def test_a_nul_in_an_anonymous_scope_is_a_400(client, repository, settings):
    settings.GATEHOUSE_NOTARY_ANONYMOUS_PULL = True
    response = ask(client, f"service=notary-server&scope=repository:{GUN}%00:pull")
    assert response.status_code == 400
    assert response.json() == {"detail": NUL_IN_QUERY}


@pytest.mark.parametrize(
    "credentials", [("ro\x00ot", PASSWORD), ("\x00", "x"), ("root", "pass\x00word")]
)
def test_a_nul_in_the_basic_credentials_is_a_400(client, admin, repository, credentials):
    response = ask(client, f"service=notary-server&scope=repository:{GUN}:pull", credentials)
    assert response.status_code == 400
    assert response.json() == {"detail": NUL_IN_CREDENTIALS}


def test_the_same_request_without_the_nul_is_granted(client, admin, repository):
    response = ask(client, f"service=notary-server&scope=repository:{GUN}:pull", ("root", PASSWORD))
    assert response.status_code == 200
    assert response.json()["token"]
