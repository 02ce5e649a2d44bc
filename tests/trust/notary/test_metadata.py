"""Metadata parsing, exact bytes and signatures, on real files the CLI and server made
(docs/notary-protocol.md)."""

import datetime as dt

import pytest

from trust.notary.errors import InvalidMetadata
from trust.notary.keys import TufKey, generate_ecdsa_key, plain_signing_key
from trust.notary.metadata import (
    BASE_ROLES,
    Delegation,
    Root,
    TargetFile,
    Targets,
    Timestamp,
    file_bytes,
    format_expires,
    parse_expires,
    parse_file,
    sign,
)

SERVER_TIMESTAMP = (
    b'{"signed":{"_type":"Timestamp","expires":"2026-12-06T13:53:02.052778153Z","meta":{"snap'
    b'shot":{"hashes":{"sha256":"z2Ew/f6EYs2oWYp+wYyI2zAR9UBXOyTRqzHBTAa71/k=","sha512":"4vJIxQ'
    b'jjRjby+FBMFhucUdlzlIq0D833g2oFwB/KKA/E7m5rVTmJkwSG0cTOgAerY132ct/LstiMzc47E+jXmw=="},"le'
    b'ngth":683}},"version":1},"signatures":[{"keyid":"6ab31b60be3ae9b0cd3a68a7814728c62ebc791e'
    b'a3d96f90966d9ef0d9816e55","method":"eddsa","sig":"tf9Pwn6TLSZ8g4URetaoflic0+mJ+UFLWtY0uQ'
    b'argjXmWI21oh26LIBQ/dqmQ9O03RCHH/BYux/crvHCP8DxDA=="}]}'
)
CLI_TARGETS = (
    b'{"signed":{"_type":"Targets","delegations":{"keys":{},"roles":[]},"expires":"2029-11-21T'
    b'13:53:02.047919868Z","targets":{},"version":2},"signatures":[{"keyid":"8905d5c6c45ddc1c43'
    b'beb016d54d1e1383e2f7eec1826390b5ac1cd95e1ce3eb","method":"ecdsa","sig":"dC14bASd8zkKajbKf'
    b'gh1s8VQ9zpraJ6MZLVA+VjXeyjtld0chtdq98EWO3NjpPF+cVnH/6P1GCHG32x4UmfMng=="}]}'
)
ED25519 = TufKey("ed25519", "BKdzC7LldYTn96tuu2EXoE0A/bU59seSHl64Zsa3tj4=")
ECDSA = TufKey(
    "ecdsa",
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEmal6z7VZZMe9DS8nKxekoE5UsGJhd3zhxWa+S7bL5Eue6rw4OL5Ntw"
    "NktI2x/11uAFwUCjeU6VjoAdOGF7/UMQ==",
)


def test_real_server_and_cli_files_verify_with_their_keys():
    timestamp = parse_file(SERVER_TIMESTAMP, role="timestamp")
    assert timestamp.signed_by({ED25519.key_id: ED25519}, [ED25519.key_id]) == {ED25519.key_id}
    targets = parse_file(CLI_TARGETS, role="targets")
    assert targets.signed_by({ECDSA.key_id: ECDSA}, [ECDSA.key_id]) == {ECDSA.key_id}
    assert Timestamp.from_signed(timestamp.signed).snapshot.length == 683


def test_a_signature_does_not_count_for_another_key_or_altered_content():
    targets = parse_file(CLI_TARGETS, role="targets")
    assert targets.signed_by({ED25519.key_id: ED25519}, [ED25519.key_id]) == set()
    assert targets.signed_by({ECDSA.key_id: ECDSA}, []) == set()
    tampered = parse_file(CLI_TARGETS.replace(b'"version":2', b'"version":3'), role="targets")
    assert tampered.signed_by({ECDSA.key_id: ECDSA}, [ECDSA.key_id]) == set()
    mislabelled = {ECDSA.key_id: ED25519}
    assert targets.signed_by(mislabelled, [ECDSA.key_id]) == set()


def test_file_bytes_reproduce_go_output_exactly():
    for raw in (SERVER_TIMESTAMP, CLI_TARGETS):
        parsed = parse_file(raw, role="x")
        signatures = [s.__dict__ for s in parsed.signatures]
        assert file_bytes(parsed.signed, signatures) == raw


def test_file_bytes_html_escape_only_on_the_wire():
    signed = {"_type": "Targets", "targets": {"after<rotation>&": 1}, "version": 1}
    assert b'"after\\u003crotation\\u003e\\u0026"' in file_bytes(signed, [])


def test_writers_emit_go_field_sets():
    expires = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    targets = Targets(
        expires=expires,
        version=3,
        targets={"v1": TargetFile(length=12, hashes={"sha256": "AAAA"})},
        delegation_keys={ECDSA.key_id: ECDSA},
        delegations=(Delegation("targets/releases", (ECDSA.key_id,)), Delegation("targets/x", ())),
    )
    signed = targets.to_signed()
    assert signed["expires"] == "2030-01-01T00:00:00Z"
    assert signed["targets"]["v1"] == {"hashes": {"sha256": "AAAA"}, "length": 12}
    assert signed["delegations"]["roles"][0]["paths"] == [""]
    assert signed["delegations"]["roles"][0]["keyids"] == [ECDSA.key_id]
    assert signed["delegations"]["keys"][ECDSA.key_id]["keyval"] == {
        "private": None,
        "public": ECDSA.public,
    }
    assert Targets.from_signed(signed) == targets


def test_signing_round_trips_through_parse_and_verify():
    key = plain_signing_key(generate_ecdsa_key())
    expires = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    raw = sign(Targets(expires=expires, version=1).to_signed(), [key])
    parsed = parse_file(raw, role="targets")
    assert parsed.signed_by({key.key_id: key.public}, [key.key_id]) == {key.key_id}
    assert raw.count(b"\n") == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-06T13:53:02.052778153Z", dt.datetime(2026, 12, 6, 13, 53, 2, 52778, dt.UTC)),
        ("2030-01-01T05:30:00+05:30", dt.datetime(2030, 1, 1, tzinfo=dt.UTC)),
        ("2030-01-01T00:00:00Z", dt.datetime(2030, 1, 1, tzinfo=dt.UTC)),
    ],
)
def test_expiry_is_read_in_any_go_form_and_written_in_one(text, expected):
    assert parse_expires(text) == expected
    assert format_expires(parse_expires(text)) == format_expires(expected)


def test_tolerant_parsing_of_null_roles_and_refusal_of_garbage():
    signed = {
        "_type": "Targets",
        "delegations": {"keys": {}, "roles": None},
        "expires": "2030-01-01T00:00:00Z",
        "targets": {},
        "version": 4,
    }
    assert Targets.from_signed(signed).delegations == ()
    with pytest.raises(InvalidMetadata):
        parse_file(b"not json", role="targets")
    with pytest.raises(InvalidMetadata):
        Root.from_signed({"_type": "Root", "version": 1, "expires": "2030-01-01T00:00:00Z"})
    with pytest.raises(InvalidMetadata):
        Targets.from_signed({**signed, "_type": "Root"})
    with pytest.raises(InvalidMetadata):
        parse_expires("tomorrow")


# --- hardening (review findings) ---------------------------------------------------------

VALID_ROOT_ROLES = {name: {"keyids": ["a"], "threshold": 1} for name in BASE_ROLES}


def test_deeply_nested_json_is_invalid_metadata_not_a_recursion_error():
    deep = b'{"signed":' + b"[" * 100_000 + b"]" * 100_000 + b',"signatures":[]}'

    with pytest.raises(InvalidMetadata, match="nested too deeply"):
        parse_file(deep, role="targets", gun="example.com/app")


@pytest.mark.parametrize("threshold", [0, -1])
def test_a_root_role_threshold_below_one_is_refused(threshold):
    signed = {
        "_type": "Root",
        "expires": "2030-01-01T00:00:00Z",
        "keys": {},
        "roles": {**VALID_ROOT_ROLES, "timestamp": {"keyids": [], "threshold": threshold}},
        "version": 1,
    }
    assert Root.from_signed({**signed, "roles": VALID_ROOT_ROLES}).version == 1

    with pytest.raises(InvalidMetadata, match=f"role timestamp has threshold {threshold}"):
        Root.from_signed(signed)


@pytest.mark.parametrize("threshold", [0, -1])
def test_a_delegation_threshold_below_one_is_refused(threshold):
    signed = {
        "_type": "Targets",
        "delegations": {
            "keys": {},
            "roles": [{"keyids": [], "name": "targets/releases", "threshold": threshold}],
        },
        "expires": "2030-01-01T00:00:00Z",
        "targets": {},
        "version": 2,
    }

    with pytest.raises(InvalidMetadata, match=f"targets/releases has threshold {threshold}"):
        Targets.from_signed(signed, role="targets")


def test_a_missing_expiry_is_invalid_metadata_not_a_key_error():
    parsed = parse_file(b'{"signed":{"_type":"Targets","version":1},"signatures":[]}', role="x")

    with pytest.raises(InvalidMetadata, match="without an expiry"):
        _ = parsed.expires


def test_content_with_a_float_verifies_for_no_key():
    key = plain_signing_key(generate_ecdsa_key())
    expires = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    raw = sign(Targets(expires=expires, version=1).to_signed(), [key])
    floating = parse_file(raw.replace(b'"targets":{}', b'"targets":{"x":{"length":1.5}}'), role="t")

    assert floating.signed_by({key.key_id: key.public}, [key.key_id]) == set()


def test_sign_gives_the_same_bytes_as_file_bytes():
    key = plain_signing_key(generate_ecdsa_key())
    signed = Targets(expires=dt.datetime(2030, 1, 1, tzinfo=dt.UTC), version=1).to_signed()
    raw = sign(signed, [key])
    signatures = [s.__dict__ for s in parse_file(raw, role="targets").signatures]

    assert file_bytes(signed, signatures) == raw
