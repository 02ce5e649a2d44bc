import io

import pytest
from django.core.management import call_command


def test_the_openapi_schema_builds_valid_with_no_warnings():
    out = io.StringIO()
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", stdout=out
    )
    assert '"/api/v1/teams/{name}/members/{username}/"' in out.getvalue()


@pytest.mark.django_db
def test_the_interactive_docs_are_served_without_internet(client, alice):
    client.force_login(alice)
    page = client.get("/api/v1/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()


@pytest.mark.django_db
def test_every_console_page_links_the_api_docs(client, alice):
    client.force_login(alice)
    page = client.get("/profile/").content.decode()
    assert '<a href="/api/v1/docs/">API docs</a>' in page
    assert client.get("/api/v1/docs/").status_code == 200
