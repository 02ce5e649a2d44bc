"""``manage.py root_key``: the way to make the root key before the first repository."""

from io import StringIO

import pytest
from django.core.management import call_command

from audit.models import AuditEntry
from trust import custody
from trust.models import CustodyKey

pytestmark = pytest.mark.django_db


def run() -> str:
    out = StringIO()
    call_command("root_key", stdout=out)
    return out.getvalue()


def test_it_makes_the_root_key_once_and_then_changes_nothing():
    assert custody.root_key_if_exists() is None

    first = run()
    key = CustodyKey.objects.get(kind=CustodyKey.Kind.ROOT)
    assert first.startswith(f"Created root key {key.key_id}.")
    assert custody.root_key_if_exists() == key

    second = run()
    assert second == f"Root key {key.key_id} exists already; nothing changed.\n"
    assert list(CustodyKey.objects.filter(kind=CustodyKey.Kind.ROOT)) == [key]
    created = AuditEntry.objects.get(action="root_key.created")  # once, by the system
    assert (created.actor, created.target_id) == (None, key.key_id)


def test_a_root_key_made_otherwise_is_the_one_it_reports():
    key = custody.root_key()

    assert run() == f"Root key {key.key_id} exists already; nothing changed.\n"
    assert CustodyKey.objects.filter(kind=CustodyKey.Kind.ROOT).count() == 1


def test_exporting_is_no_way_to_make_the_root_key():
    with pytest.raises(custody.RootKeyMissing, match=r"manage\.py root_key"):
        custody.root_key_export("a long passphrase")

    assert custody.root_key_if_exists() is None
