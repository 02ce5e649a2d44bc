"""Inputs and races from the independent review: root key pins given bad input through the
API and the console, two first sightings of the same bytes at once, and a change feed that
does not move on."""

import json

import pytest

pytestmark = [pytest.mark.django_db]

K = "ab" * 32


BODIES = [
    {"pattern": "reg.example.com/x", "key_ids": ["\ud800"]},
    {"pattern": "reg.example.com/\ud800", "key_ids": [K]},
    {"pattern": "reg.example.com/x", "key_ids": {"a": 1}},
    {"pattern": "reg.example.com/x", "key_ids": [None]},
    {"pattern": "reg.example.com/x", "key_ids": [[K]]},
    {"pattern": "reg.example.com/x", "key_ids": [K] * 101},
    {"pattern": "reg.example.com/x", "key_ids": [K + "\u0660"]},
    {"pattern": ["a"], "key_ids": [K]},
    {"pattern": "reg.example.com/x\n", "key_ids": [K]},
    {"pattern": " reg.example.com/y ", "key_ids": [K]},
    {"pattern": "x" * 254 + "*", "key_ids": [K]},
    {"pattern": "a" * 300, "key_ids": [K]},
    {"pattern": "reg.example.com/z", "key_ids": ["AB" * 32, "ab" * 32]},
    {"pattern": "reg.example.com//z", "key_ids": [K]},
    {"pattern": "reg.example.com/z/", "key_ids": [K]},
    {"pattern": "/*", "key_ids": [K]},
    {"pattern": "reg.example.com/ü", "key_ids": [K]},
]


@pytest.mark.parametrize("body", BODIES)
def test_pin_create_bad_input(admin, api, body):
    client = api(admin)
    raw = json.dumps(body)
    answer = client.post("/api/v1/trust/pins/", raw, content_type="application/json")
    assert answer.status_code < 500


def test_pin_patch_and_misc(admin, api):
    client = api(admin)
    a = client.post(
        "/api/v1/trust/pins/", {"pattern": "reg.example.com/ok", "key_ids": [K]}, format="json"
    )
    assert a.status_code == 201, a.content
    pk = a.json()["id"]
    for body in (
        {"key_ids": ["\ud800"]},
        {"key_ids": []},
        {},
        {"pattern": None, "key_ids": [K]},
        {"pattern": "other", "key_ids": [K]},
        {"key_ids": "abc"},
    ):
        r = client.patch(
            f"/api/v1/trust/pins/{pk}/", json.dumps(body), content_type="application/json"
        )
        assert r.status_code < 500
    for url in (
        "/api/v1/trust/pins/abc/",
        "/api/v1/trust/pins/99999999999999999999999/",
        "/api/v1/trust/pins/?limit=abc",
        "/api/v1/trust/pins/?offset=-1",
        "/api/v1/trust/pins/-1/",
    ):
        r = client.get(url)
        assert r.status_code < 500
    r = client.put(f"/api/v1/trust/pins/{pk}/", {"key_ids": [K]}, format="json")


def test_console_pin_form(admin, client):
    client.force_login(admin)
    for data in (
        {"pattern": "reg.example.com/c", "key_ids": "\x00"},
        {"pattern": "reg.example.com/c\x00", "key_ids": K},
        {"pattern": "reg.example.com/c", "key_ids": ","},
        {"pattern": "reg.example.com/c", "key_ids": (K + " ") * 30},
        {"pattern": "a" * 10000, "key_ids": K},
        {"pattern": "reg.example.com/c"},
    ):
        r = client.post("/trust/root/pins/", data)
        assert r.status_code < 500
    for pk in ("99999999999999999999999",):
        r = client.post(f"/trust/root/pins/{pk}/delete/")
        assert r.status_code < 500


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_sightings_of_original_and_copy_find_the_replay_at_once(monkeypatch):
    """An evaluation of P records alice's file while another process records its copy in Q,
    asking after P's row is written but before it is committed. The fingerprint's lock makes
    Q's recording wait for P's commit, so Q sees the original and the copy is a replay at
    once, not only at some later read."""
    import threading
    import time

    from django.db import connection

    from policy.inputs import evaluation_context, evaluation_inputs_changed
    from trust.models import RoleFileSighting
    from trust.replays import role_files_seen

    manager = RoleFileSighting.objects
    original = manager.bulk_create
    written = threading.Event()

    def slow(*args, **kwargs):
        result = original(*args, **kwargs)
        if not written.is_set():
            written.set()
            time.sleep(0.5)  # the other process asks now, before this one commits
        return result

    monkeypatch.setattr(manager, "bulk_create", slow)
    fp = "f0" * 32
    seen = {}

    def see(gun):
        try:
            seen[gun] = role_files_seen(gun=gun, files=[("targets/alice", fp)])
        finally:
            connection.close()

    first = threading.Thread(target=see, args=("reg/p",))
    first.start()
    assert written.wait(10)
    second = threading.Thread(target=see, args=("reg/q",))
    second.start()
    first.join()
    second.join()

    assert seen["reg/p"].replays == 0
    assert seen["reg/q"].replays == 1
    evaluation_inputs_changed()
    assert fp in evaluation_context().identities.replays


def test_the_walk_stops_on_a_changefeed_that_does_not_advance():
    from trust.notary.client import NotaryClient
    from trust.notary.transport import Transport

    class Feed(Transport):
        calls = 0

        def _request(self, method, path, **kw):
            Feed.calls += 1
            if Feed.calls > 1000:
                raise RuntimeError("still walking after 1000 pages")
            records = [{"ID": "5", "SHA256": "0" * 64, "Category": "deletion"}] * 100
            return json.dumps({"records": records}).encode()

    history = NotaryClient(Feed()).walk_history("reg/x", after=5)
    assert Feed.calls == 1  # the page did not move the cursor on: the walk stops
    assert history.last_change == 5
