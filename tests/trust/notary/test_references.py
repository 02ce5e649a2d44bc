"""The one grammar of names: Docker's repository names, image references, exemption patterns
and root key pin prefixes (``trust.notary.references``)."""

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.trust.notary.names import COMPONENT, FULL_NAMES
from trust.notary import references
from trust.notary.references import (
    InvalidName,
    InvalidReference,
    notary_addressable,
    parse_name,
    parse_reference,
)

# --- Names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "gun"),
    [
        ("registry.example.com/ci/app", "registry.example.com/ci/app"),
        # A port in the registry host, as Docker allows.
        ("registry.example.com:5000/ci/web", "registry.example.com:5000/ci/web"),
        ("localhost:5000/ci/web", "localhost:5000/ci/web"),
        ("localhost/ci/web", "localhost/ci/web"),
        ("[::1]:5000/ci/web", "[::1]:5000/ci/web"),
        ("[fe80::1]/app", "[fe80::1]/app"),
        # Short names are Docker Hub's, as Docker normalises them.
        ("app", "docker.io/library/app"),
        ("ci/app", "docker.io/ci/app"),
        ("docker.io/app", "docker.io/library/app"),
        ("index.docker.io/ci/app", "docker.io/ci/app"),
        ("ns/a.b-c__d/e--f.g_h", "docker.io/ns/a.b-c__d/e--f.g_h"),
        ("r.io/" + "a" * 250, "r.io/" + "a" * 250),
    ],
)
def test_names_are_normalised_as_docker_does(name: str, gun: str):
    assert parse_name(name) == gun
    assert parse_name(gun) == gun
    assert references.is_gun(gun)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "missing"),
        ("../../etc/passwd", "is not a valid host[:port]"),
        ("registry.example.com/../etc", "path component '..'"),
        ("registry.example.com/./app", "path component '.'"),
        ("registry.example.com//app", "empty component"),
        ("registry.example.com/app/", "empty component"),
        ("/app", "empty component"),
        ("registry.example.com/-app", "path component '-app'"),
        ("registry.example.com/a_-b", "path component 'a_-b'"),
        ("registry.example.com/a..b", "path component 'a..b'"),
        ("registry.example.com/ci/App", "must be lowercase"),
        ("Registry.example.com/ci/app", "registry host 'Registry.example.com' must be lowercase"),
        ("registry.example.com:port/app", "not a valid host[:port]"),
        ("-registry.example.com/app", "not a valid host[:port]"),
        ("[::1:5000/app", "not a valid host[:port]"),
        ("registry.example.com/ci/app:1.0", "drop the tag ':1.0'"),
        ("registry.example.com/ci/app@sha256:" + "a" * 64, "drop the digest"),
        ("https://registry.example.com/app", "drop the scheme"),
        ("registry.example.com/c i", "whitespace"),
        (" registry.example.com/ci", "whitespace"),
        ("a" * 64, "image ID"),
        ("r.io/" + "a" * 251, "longer than 255"),
        ("a" * 240, "longer than 255"),  # docker.io/library/ makes it too long
    ],
)
def test_bad_names_are_refused_saying_why(name: str, why: str):
    with pytest.raises(InvalidName) as raised:
        parse_name(name)
    assert why in str(raised.value)
    assert not references.is_gun(name)


def test_a_message_never_repeats_a_long_input_whole():
    component = "x" * 100 + "-"
    with pytest.raises(InvalidName) as raised:
        parse_name(f"registry.example.com/{component}")
    assert component not in str(raised.value)
    assert "x" * 40 + "…" in str(raised.value)


def test_a_short_name_is_not_a_gun_until_normalised():
    assert not references.is_gun("app")
    assert not references.is_gun("ci/app")
    assert references.is_gun("docker.io/library/app")


@hypothesis_settings(max_examples=300, deadline=None)
@given(gun=FULL_NAMES)
def test_every_full_name_is_its_own_gun_and_addressable(gun):
    assert parse_name(gun) == gun
    assert notary_addressable(gun)
    # The reference parser reads the same name the same way.
    assert parse_reference(f"{gun}:1.0").gun == gun


@hypothesis_settings(max_examples=300, deadline=None)
@given(path=st.lists(COMPONENT, min_size=1, max_size=3))
def test_short_names_are_docker_hubs(path):
    name = "/".join(path)
    if "." in path[0] and len(path) > 1:
        return  # a first component with a dot is a registry host
    expected = f"docker.io/library/{name}" if len(path) == 1 else f"docker.io/{name}"
    assert parse_name(name) == expected
    assert parse_name(expected) == expected


@pytest.mark.parametrize(
    ("gun", "addressable"),
    [
        ("registry.example.com/ci/app", True),
        ("app", True),  # a short name an earlier version stored: Notary has it as it is
        ("a..b/c", True),
        ("../../etc/passwd", False),
        ("registry.example.com/../x", False),
        ("registry.example.com/./x", False),
        ("registry.example.com//x", False),
        ("registry.example.com/x?y", False),
        ("registry.example.com/x y", False),
        ("", False),
    ],
)
def test_only_names_a_request_can_address_reach_notary(gun: str, addressable: bool):
    assert notary_addressable(gun) is addressable


# --- References ---------------------------------------------------------------------------


def test_whitespace_around_an_image_is_dropped_inside_it_refused():
    assert parse_reference(" \tnginx:1.25\n") == parse_reference("nginx:1.25")
    assert references.image_text("  r.io/app  ") == "r.io/app"
    with pytest.raises(InvalidReference, match="it is empty"):
        parse_reference(" \n ")
    with pytest.raises(InvalidReference, match="whitespace"):
        parse_reference("ngi nx")


def test_references_accept_a_port_and_ipv6_in_the_registry():
    assert parse_reference("localhost:5000/ci/web:1") == references.Reference(
        "localhost:5000/ci/web", "1", None
    )
    assert parse_reference("[::1]:5000/app").gun == "[::1]:5000/app"
