"""The root a read trusts (``trust.notary.root_chain``; docs/notary-protocol.md, "Reading",
"Trust pinning", "Key IDs") against repositories built in memory (``simulator.py``)."""

import base64

import pytest
from cryptography import x509

from tests.trust.notary.simulator import GUN, PAST, Simulator, read, refused
from trust.notary.keys import canonical_key_id, generate_ecdsa_key, root_signing_key
from trust.notary.verified import RootPin

# -- pinning -------------------------------------------------------------------------------


def test_without_a_pin_the_result_says_trust_on_first_use(sim):
    result = read(sim.publish())

    assert result.root_pinned is False
    certificate_key = sim.root_keys[0]
    assert result.root_key_ids == {certificate_key.key_id}


def test_a_root_pinned_by_either_kind_of_key_id_or_by_certificate(sim):
    files = sim.publish()
    root_key = sim.root_keys[0]
    pem = base64.b64decode(root_key.public.public)
    canonical = canonical_key_id(x509.load_pem_x509_certificate(pem))

    for pin in (RootPin.keys(root_key.key_id), RootPin.keys(canonical), RootPin.certificate(pem)):
        result = read(files, pinned_root=pin)
        assert result.root_pinned is True
        assert result.root_canonical_key_ids == {canonical}


def test_a_pin_mismatch_is_refused(sim):
    stranger = root_signing_key(generate_ecdsa_key(), GUN)
    pem = base64.b64decode(stranger.public.public).decode()

    refused(sim.publish(), "root", "pin mismatch", pinned_root=RootPin.keys(stranger.key_id))
    refused(sim.publish(), "root", "pin mismatch", pinned_root=RootPin.certificate(pem))


def test_a_pin_needs_something_to_pin():
    with pytest.raises(ValueError, match="at least one"):
        RootPin()


# -- root rotation -------------------------------------------------------------------------


def test_a_new_root_not_signed_by_the_old_root_key_is_refused(sim):
    old_key = sim.root_keys[0]
    new_key = root_signing_key(generate_ecdsa_key(), GUN)
    sim.root_keys = [new_key]
    sim.sign_root(signers=[new_key])

    refused(
        sim.publish(),
        "root",
        "version 2 is not signed by a threshold of the root keys of version 1",
        pinned_root=RootPin.keys(old_key.key_id),
    )


# -- certificates and expiry ---------------------------------------------------------------


def test_a_root_for_another_gun_is_refused():
    other = Simulator(root_key=root_signing_key(generate_ecdsa_key(), "registry.example.com/x"))

    refused(other.publish(), "root", "CN 'registry.example.com/x', not this GUN")


def test_a_wildcard_root_certificate_covers_its_prefix():
    wildcard = Simulator(root_key=root_signing_key(generate_ecdsa_key(), "registry.example.com/*"))

    assert read(wildcard.publish()).root_pinned is False


def test_an_expired_root_is_refused(sim):
    sim.expires["root"] = PAST
    sim.roots.clear()
    sim.sign_root()

    refused(sim.publish(), "root", "expired")
