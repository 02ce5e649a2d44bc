"""Gatehouse's memory of signed tags (``trust.signed_tags``): only what a signer provably
signed in their own role of a pinned GUN, never from a replayed file, and gone with the
repository. Role files are made here as the notary CLI makes them, so no Notary is needed."""

import base64
import json

import pytest
from cryptography import x509

from bundles.selectors import signing_role_of
from tests.factories import make_user
from tests.trust.helpers import signing_key_of
from trust import signed_tags
from trust.models import Repository, RoleFileSighting, SignedTag
from trust.notary.canonical import canonical_json
from trust.notary.keys import SigningKey, certificate_tuf_key
from trust.notary.metadata import SignedFile, parse_file
from trust.notary.private_keys import load_private_key_pem
from trust.services.repositories import repository_create

pytestmark = pytest.mark.django_db

GUN = "registry.example.com/ci/app"
A = "a1" * 32


def signing_key(user) -> SigningKey:
    key, pem = signing_key_of(user)
    certificate = x509.load_pem_x509_certificate(key.certificate.encode())
    return SigningKey(load_private_key_pem(pem), certificate_tuf_key(certificate))


def role_file(role: str, tags: dict[str, str], *by: SigningKey) -> tuple[str, SignedFile]:
    """A role file naming ``tags`` (tag -> sha256 hex), signed by ``by``."""
    signed = {
        "_type": "Targets",
        "version": 1,
        "expires": "2099-01-01T00:00:00Z",
        "targets": {
            tag: {"length": 1, "hashes": {"sha256": base64.b64encode(bytes.fromhex(d)).decode()}}
            for tag, d in tags.items()
        },
        "delegations": {"keys": {}, "roles": []},
    }
    signatures = [key.sign(canonical_json(signed)) for key in by]
    raw = json.dumps({"signed": signed, "signatures": signatures}).encode()
    return role, parse_file(raw, role=role)


@pytest.fixture
def pinned(admin):
    repository, _ = repository_create(actor=admin, gun=GUN, signer_team_names=[])
    Repository.objects.filter(pk=repository.pk).update(pinned_root_key_ids=["f" * 64])
    return repository


def test_a_published_file_signed_by_its_role_owner_is_remembered(pinned):
    jenkins, mallory = make_user("jenkins"), make_user("mallory")
    jenkins_key, mallory_key = signing_key(jenkins), signing_key(mallory)
    own = signing_role_of(jenkins).role

    written = signed_tags.tags_seen_published(
        gun=GUN,
        files=[
            role_file(own, {"1.0": A}, jenkins_key),
            role_file(own, {"2.0": A}, mallory_key),  # not his key: proves nothing
            role_file("targets/releases", {"3.0": A}, jenkins_key),  # anyone's listing
        ],
    )

    assert written == 1
    (row,) = signed_tags.remembered(gun=GUN)
    assert (row.tag, row.role, row.digest, row.signer) == ("1.0", own, f"sha256:{A}", jenkins)


def test_nothing_is_remembered_of_a_gun_whose_root_nothing_pins(db):
    jenkins = make_user("jenkins")
    key = signing_key(jenkins)
    files = [role_file(signing_role_of(jenkins).role, {"1.0": A}, key)]

    assert signed_tags.tags_seen_published(gun="registry.example.com/other/app", files=files) == 0
    assert not SignedTag.objects.exists()


def test_a_replayed_file_explains_nothing(pinned):
    jenkins = make_user("jenkins")
    key = signing_key(jenkins)
    role, file = role_file(signing_role_of(jenkins).role, {"1.0": A}, key)
    signed_tags.tags_seen_published(gun=GUN, files=[(role, file)])
    assert signed_tags.remembered(gun=GUN, tag="1.0").exists()

    RoleFileSighting.objects.create(fingerprint=file.fingerprint, gun=GUN, role=role, replayed=True)

    assert not signed_tags.remembered(gun=GUN, tag="1.0").exists()


def test_a_deleted_repository_forgets_its_signed_tags(pinned):
    jenkins = make_user("jenkins")
    key = signing_key(jenkins)
    files = [role_file(signing_role_of(jenkins).role, {"1.0": A}, key)]
    signed_tags.tags_seen_published(gun=GUN, files=files)

    signed_tags.forgotten(gun=GUN)

    assert not SignedTag.objects.filter(gun=GUN).exists()


@pytest.mark.parametrize("bad_tag", ["1.0\x00", "\x00"])
def test_a_tag_no_database_can_hold_is_not_remembered_and_breaks_nothing(pinned, bad_tag):
    """A NUL is valid JSON in a target name; storing it failed, and since the history walk's
    cursor only moves after the memory is written, every read of the GUN (evaluations,
    admission, drift checks) failed with it, for good."""
    jenkins = make_user("jenkins")
    key = signing_key(jenkins)
    own = signing_role_of(jenkins).role

    written = signed_tags.tags_seen_published(
        gun=GUN, files=[role_file(own, {bad_tag: A, "2.0": A}, key)]
    )

    assert written == 1
    assert [row.tag for row in signed_tags.remembered(gun=GUN)] == ["2.0"]
