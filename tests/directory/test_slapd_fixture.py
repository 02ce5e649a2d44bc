"""The test directory behaves like a real deployment: TLS that verifies, binds that work and
fail, locked accounts, the size limit and paging."""

import datetime as dt
import ssl
from pathlib import Path

import ldap3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ldap3.core.exceptions import LDAPSocketOpenError

from devtools.slapd import Slapd


def connection(
    url: str, ca_file: Path, user: str | None = None, password: str | None = None
) -> ldap3.Connection:
    tls = ldap3.Tls(ca_certs_file=str(ca_file), validate=ssl.CERT_REQUIRED)
    return ldap3.Connection(ldap3.Server(url, tls=tls), user, password)


def as_person(directory: Slapd, uid: str, password: str | None = None) -> ldap3.Connection:
    """Over ldaps, with ``<uid>-pass`` (the fixtures' passwords) unless told otherwise."""
    dn = directory.person_dn(uid)
    return connection(directory.ldaps_url, directory.ca_file, dn, password or f"{uid}-pass")


def as_service(directory: Slapd) -> ldap3.Connection:
    service = connection(
        directory.ldaps_url, directory.ca_file, directory.service_dn, directory.service_password
    )
    assert service.bind(), service.result
    return service


def unrelated_ca(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone else's CA")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def test_ldaps_verifies_against_the_directory_ca(slapd: Slapd):
    service = as_service(slapd)

    assert service.extend.standard.who_am_i() == f"dn:{slapd.service_dn}"


def test_ldaps_is_refused_when_the_ca_does_not_match(slapd: Slapd, tmp_path: Path):
    wrong_ca = unrelated_ca(tmp_path / "ca.crt")
    service = connection(slapd.ldaps_url, wrong_ca, slapd.service_dn, slapd.service_password)

    with pytest.raises(LDAPSocketOpenError):
        service.bind()


def test_starttls_on_the_plain_port(slapd: Slapd):
    alice = connection(slapd.ldap_url, slapd.ca_file, slapd.person_dn("alice"), "alice-pass")
    alice.open()

    assert alice.start_tls()
    assert alice.bind()
    assert alice.extend.standard.who_am_i() == f"dn:{slapd.person_dn('alice')}"


def test_alice_binds_and_reads_her_entry(slapd: Slapd):
    alice = as_person(slapd, "alice")

    assert alice.bind()
    alice.search(slapd.person_dn("alice"), "(objectClass=*)", attributes=["cn", "mail"])
    assert alice.entries[0].cn.value == "Alice Archer"
    assert alice.entries[0].mail.value == "alice@example.org"


def test_a_wrong_password_is_refused(slapd: Slapd):
    alice = as_person(slapd, "alice", "bob-pass")

    assert not alice.bind()
    assert alice.result["description"] == "invalidCredentials"


def test_anonymous_clients_see_no_entries(slapd: Slapd):
    anonymous = connection(slapd.ldaps_url, slapd.ca_file)
    anonymous.bind()

    anonymous.search(slapd.suffix, "(objectClass=*)")
    assert anonymous.entries == []


def test_the_service_reads_groups_but_not_password_hashes(slapd: Slapd):
    service = as_service(slapd)

    service.search(slapd.groups_base, f"(member={slapd.person_dn('carol')})", attributes=["cn"])
    assert sorted(entry.cn.value for entry in service.entries) == ["everyone", "security"]
    service.search(slapd.people_base, "(uid=alice)", attributes=["*"])
    assert "userPassword" not in service.entries[0].entry_attributes


def test_a_disabled_user_cannot_bind_and_the_disabled_filter_finds_them(slapd_people: Slapd):
    slapd_people.disable("bob")

    assert not as_person(slapd_people, "bob").bind()
    service = as_service(slapd_people)
    service.search(slapd_people.people_base, slapd_people.disabled_filter, attributes=["uid"])
    assert [entry.uid.value for entry in service.entries] == ["bob"]

    slapd_people.enable("bob")
    assert as_person(slapd_people, "bob").bind()


def test_a_group_left_empty_lists_only_itself(slapd_people: Slapd):
    slapd_people.remove_from_group("carol", "security")

    service = as_service(slapd_people)
    service.search(slapd_people.group_dn("security"), "(objectClass=*)", attributes=["member"])
    assert service.entries[0].member.values == [slapd_people.group_dn("security")]


def test_a_stopped_directory_comes_back_on_the_same_address(slapd_people: Slapd):
    slapd_people.stop()

    with pytest.raises(LDAPSocketOpenError):
        as_person(slapd_people, "alice").bind()
    slapd_people.start()
    # A new ldap3 Server: one that failed to connect skips the address for five minutes.
    assert as_person(slapd_people, "alice").bind()


def test_reset_restores_deleted_and_locked_people(slapd_people: Slapd):
    slapd_people.delete_person("dave")
    slapd_people.disable("alice")

    slapd_people.reset()

    assert as_person(slapd_people, "dave").bind()
    assert as_person(slapd_people, "alice").bind()
    service = as_service(slapd_people)
    service.search(slapd_people.group_dn("everyone"), "(objectClass=*)", attributes=["member"])
    assert slapd_people.person_dn("dave") in service.entries[0].member.values


def test_the_service_pages_past_the_size_limit(slapd_thousand_users: Slapd):
    service = as_service(slapd_thousand_users)
    people = slapd_thousand_users.people_base

    service.search(people, "(objectClass=inetOrgPerson)", attributes=["uid"])
    assert len(service.entries) == 500
    assert service.result["description"] == "sizeLimitExceeded"

    pages = service.extend.standard.paged_search(
        people, "(objectClass=inetOrgPerson)", attributes=["uid"], paged_size=500, generator=True
    )
    assert len({entry["attributes"]["uid"][0] for entry in pages}) == 1000
