"""Bad input is a 4xx, never a 500: the strict JSON of every body (``gatehouse.jsonbody``),
the API's parser (``gatehouse.parsers``), NUL characters refused at the edge
(``gatehouse.middleware.NulCharacterMiddleware``) and in every console form
(``gatehouse.forms.ServiceForm``)."""

import base64
import json
import logging
import timeit

import pytest
from django import forms

from gatehouse import jsonbody
from gatehouse.forms import ServiceForm

DEEP = "[" * 5000 + "]" * 5000
LOGIN = "/api/v1/auth/login/"


def no_tracebacks(caplog) -> bool:
    return not [record for record in caplog.records if record.exc_info]


# --- gatehouse.jsonbody ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[" * 65 + "]" * 65,
        '{"a":' * 65 + "1" + "}" * 65,
        '[{"a": ' * 40 + "1" + "}]" * 40,
        DEEP,
        "[" * 100_000,  # not even JSON: still measured, not parsed
    ],
)
def test_nesting_deeper_than_the_limit_is_refused_before_parsing(text):
    with pytest.raises(jsonbody.JSONBodyError, match="JSON nested deeper than 64 levels"):
        jsonbody.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 64 + "]" * 64,
        '{"a":' * 64 + "1" + "}" * 64,
        # Brackets in strings, escaped quotes and backslashes do not nest anything.
        '["' + "[" * 100 + '"]',
        '["\\"' + "{" * 100 + '"]',
        '["\\\\", "' + "[" * 100 + '"]',
        '{"k[[[[": "' + "]" * 70 + '", "v": ' + "[" * 60 + "]" * 60 + "}",
    ],
)
def test_nesting_up_to_the_limit_is_parsed(text):
    assert jsonbody.loads(text) == json.loads(text)


def test_the_limit_is_a_parameter():
    assert jsonbody.loads("[[[]]]", max_depth=3) == [[[]]]
    with pytest.raises(jsonbody.JSONBodyError, match="deeper than 2 levels"):
        jsonbody.loads("[[[]]]", max_depth=2)


@pytest.mark.parametrize(
    "text",
    [
        '{"mode": "\\ud800"}',
        '{"\\udfff": 1}',
        '["a\\udc00\\ud800b"]',
        '[[{"deep": ["\\ud800"]}]]',
    ],
)
def test_lone_surrogates_are_refused_in_keys_and_values(text):
    with pytest.raises(jsonbody.JSONBodyError, match="lone surrogates"):
        jsonbody.loads(text)


def test_surrogate_pairs_and_escaped_backslashes_are_text_like_any_other():
    assert jsonbody.loads('{"smile": "\\ud83d\\ude00"}') == {"smile": "😀"}
    assert jsonbody.loads('{"text": "\\\\ud800"}') == {"text": "\\ud800"}


def test_a_surrogate_encoded_in_the_bytes_is_not_utf8():
    with pytest.raises(jsonbody.JSONBodyError, match="not UTF-8"):
        jsonbody.loads(b'{"mode": "\xed\xa0\x80"}')


def test_nul_is_refused_only_when_asked():
    assert jsonbody.loads('{"a": "x\\u0000"}') == {"a": "x\x00"}
    with pytest.raises(jsonbody.JSONBodyError, match="NUL"):
        jsonbody.loads('{"a": ["x\\u0000"]}', allow_nul=False)
    with pytest.raises(jsonbody.JSONBodyError, match="NUL"):
        jsonbody.loads('{"x\\u0000": 1}', allow_nul=False)
    assert jsonbody.loads('{"a": "\\\\u0000"}', allow_nul=False) == {"a": "\\u0000"}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("NaN", "NaN is not a JSON number"),
        ("[-Infinity]", "-Infinity is not a JSON number"),
        ("[1e999]", "1e999 is out of range"),
        ("1" * 5000, "JSON parse error"),  # more digits than Python converts
        ('{"a": ', "JSON parse error"),
        ('"\\' + "[" * 5000, "JSON parse error"),
    ],
)
def test_what_json_cannot_carry_is_a_parse_error(text, why):
    with pytest.raises(jsonbody.JSONBodyError, match=why):
        jsonbody.loads(text)


def test_the_checks_cost_ordinary_bodies_little():
    """An evaluation's body takes the fast paths: at most a few times ``json.loads``."""
    body = json.dumps({"image": "registry.example.com/ci/app:1.0"})
    plain = min(timeit.repeat(lambda: json.loads(body), number=2000, repeat=5))
    strict = min(timeit.repeat(lambda: jsonbody.loads(body), number=2000, repeat=5))
    assert strict < plain * 4 + 0.005


def test_measuring_a_huge_body_stays_linear():
    """A body of unterminated strings cannot make the scan quadratic."""
    text = '"\\"' * 500_000 + "[" * 100
    elapsed = min(timeit.repeat(lambda: jsonbody.nesting_exceeds(text, 64), number=1, repeat=3))
    assert elapsed < 1.0


# --- The API's parser -----------------------------------------------------------------------


@pytest.mark.django_db
def test_json_nested_5000_deep_is_a_400_to_anyone_and_logs_no_traceback(client, caplog):
    with caplog.at_level(logging.INFO):
        response = client.post(LOGIN, DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "JSON nested deeper than 64 levels."}
    assert no_tracebacks(caplog)


@pytest.mark.django_db
def test_a_lone_surrogate_is_a_400_naming_it(client):
    body = '{"username": "\\ud800", "password": "x"}'
    response = client.post(LOGIN, body, content_type="application/json")
    assert response.status_code == 400
    assert "lone surrogates" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "kind"),
    [("1", "int"), ("null", "NoneType"), ('"admin"', "str"), ('[{"username": "a"}]', "list")],
)
def test_a_body_that_is_not_an_object_is_the_serializers_400(client, body, kind):
    response = client.post(LOGIN, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]
    }


@pytest.mark.django_db
def test_a_body_larger_than_the_upload_limit_is_a_413(client, settings, caplog):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"username": "a" * 2000, "password": "x"})
    response = client.post(LOGIN, body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"detail": "The body is larger than 1000 bytes."}
    assert no_tracebacks(caplog)


@pytest.mark.django_db
def test_a_body_in_a_charset_that_is_not_text_is_a_400(client):
    body = json.dumps({"username": "a", "password": "x"}).encode()
    response = client.generic(
        "POST", LOGIN, body, content_type="application/json; charset=bz2_codec"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "The body is not bz2_codec text."}


# --- NUL at the edge ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/users/%00/", "/api/v1/teams/a%00b/members/"])
def test_a_nul_in_an_api_path_is_a_json_404(api, admin, path):
    response = api(admin).get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.django_db
def test_a_nul_in_a_console_path_is_the_404_page(client, admin):
    client.force_login(admin)
    response = client.get("/users/%00/")
    assert response.status_code == 404
    assert b"Page not found" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ({"QUERY_STRING": "search=%00"}, "query string"),
        ({"QUERY_STRING": "search=a\x00"}, "query string"),
        ({"HTTP_X_FORWARDED_FOR": "10.0.0.1\x00"}, "X-Forwarded-For header"),
        ({"HTTP_COOKIE": "sessionid=abcdefgh\x00ijklmnop"}, "Cookie header"),
        (
            {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"ad\x00min:pw").decode()},
            "credentials",
        ),
    ],
)
def test_a_nul_in_the_query_a_header_or_basic_credentials_is_a_400(client, extra, where):
    response = client.get("/api/v1/users/", **extra)
    assert response.status_code == 400
    assert response.json() == {"detail": f"Null characters are not allowed in the {where}."}


@pytest.mark.django_db
def test_a_nul_in_a_console_query_is_the_400_page_without_reading_the_session(client, admin):
    client.force_login(admin)
    response = client.get("/users/?q=%00", HTTP_COOKIE="sessionid=abcdefgh\x00ijklmnop")
    assert response.status_code == 400
    assert b"Null characters are not allowed" in response.content
    assert response["Content-Security-Policy"]


@pytest.mark.django_db
def test_a_percent_escaped_percent_is_no_nul(api, admin):
    response = api(admin).get("/api/v1/users/?search=%2500")
    assert response.status_code == 200


# --- Console forms --------------------------------------------------------------------------


class NamesForm(ServiceForm):
    name = forms.CharField(required=False)
    names = forms.MultipleChoiceField(required=False, choices=[("a\x00", "a"), ("b", "b")])


def test_a_service_form_refuses_a_nul_in_any_field_with_a_message_on_it():
    form = NamesForm(data={"name": "x\x00", "names": ["a\x00"]})
    assert not form.is_valid()
    assert form.errors == {
        "name": ["Null characters are not allowed."],
        "names": ["Null characters are not allowed."],
    }
    assert NamesForm(data={"name": "x", "names": ["b"]}).is_valid()
