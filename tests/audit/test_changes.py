"""An entry's before and after read as a field-by-field diff, on the Audit page too."""

import pytest

from accounts import services as accounts
from audit.selectors import FieldChange, audit_changes
from tests.factories import PASSWORD, make_user


def rows(before, after) -> list[tuple[str, str | None, str | None, str]]:
    return [
        (change.field, change.before, change.after, change.kind)
        for change in audit_changes(before, after)
    ]


def test_an_update_shows_only_the_fields_that_changed():
    before = {"full_name": "Bob", "email": "b@example.com", "is_admin": False}
    after = {"full_name": "Robert", "email": "b@example.com", "is_admin": True}
    assert rows(before, after) == [
        ("full_name", "Bob", "Robert", "changed"),
        ("is_admin", "false", "true", "changed"),
    ]


def test_added_and_removed_fields_are_marked():
    assert rows({"label": "laptop", "role": "targets/bob"}, {"label": "ci", "key": "ab12"}) == [
        ("label", "laptop", "ci", "changed"),
        ("role", "targets/bob", None, "removed"),
        ("key", None, "ab12", "added"),
    ]


def test_a_creation_adds_every_field_and_a_deletion_removes_them():
    assert rows(None, {"signer_teams": ["ci", "ops"], "job": 7}) == [
        ("signer_teams", None, '["ci", "ops"]', "added"),
        ("job", None, "7", "added"),
    ]
    assert rows({"members": 2}, None) == [("members", "2", None, "removed")]
    assert rows(None, None) == []
    assert rows({}, {}) == []


def test_nested_objects_compare_field_by_field():
    before = {"policy": {"mode": "permissive", "enabled": True}}
    after = {"policy": {"mode": "enforced", "enabled": True}, "overflow": {}}
    assert rows(before, after) == [
        ("policy.mode", "permissive", "enforced", "changed"),
        ("overflow", None, "{}", "added"),
    ]


def test_values_keep_their_type_when_compared():
    """``null`` the value and the text "null" differ; so do a missing field and a null one."""
    assert rows({"email": None}, {"email": "null"}) == [("email", "null", "null", "changed")]
    assert rows({}, {"email": None}) == [("email", None, "null", "added")]
    assert rows({"email": None}, {"email": None}) == []


def test_a_value_that_is_not_an_object_is_one_row():
    assert rows(["a"], ["a", "b"]) == [("value", '["a"]', '["a", "b"]', "changed")]
    assert rows(None, "text") == [("value", None, "text", "added")]
    assert audit_changes(None, "é") == [FieldChange(field="value", before=None, after="é")]


@pytest.mark.django_db
def test_the_audit_page_shows_a_diff_not_a_dict(client, admin):
    user = make_user("bob", full_name="Bob", email="b@example.com")
    accounts.user_update(actor=admin, user=user, full_name="Robert <script>")
    client.force_login(admin)
    page = client.get("/audit/").content.decode()

    assert "{&#x27;full_name&#x27;" not in page
    assert '<span class="mono">full_name</span>' in page
    assert "<del>Bob</del>" in page
    assert "<ins>Robert &lt;script&gt;</ins>" in page
    assert PASSWORD not in page
