"""Which address a request came from: only trusted proxies may name the client."""

import ipaddress

import pytest
from django.test import RequestFactory

from gatehouse.addresses import address_group, client_address


def request_from(remote: str, forwarded: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote, **extra)


@pytest.fixture
def trusted(settings):
    def trust(*networks: str) -> None:
        settings.GATEHOUSE_TRUSTED_PROXIES = [ipaddress.ip_network(n) for n in networks]

    return trust


def test_without_trusted_proxies_the_header_is_ignored(trusted):
    trusted()
    assert client_address(request_from("203.0.113.7", "192.0.2.1")) == "203.0.113.7"


def test_a_header_from_a_peer_that_is_not_a_trusted_proxy_is_ignored(trusted):
    trusted("127.0.0.1/32")
    assert client_address(request_from("203.0.113.7", "192.0.2.1")) == "203.0.113.7"


def test_a_trusted_proxy_names_the_client_and_earlier_entries_are_not_believed(trusted):
    trusted("127.0.0.1/32")
    assert client_address(request_from("127.0.0.1", "198.51.100.9, 192.0.2.1")) == "192.0.2.1"
    assert client_address(request_from("127.0.0.1")) == "127.0.0.1"


def test_a_chain_of_trusted_proxies_is_walked_back_to_the_client(trusted):
    trusted("127.0.0.1/32", "10.0.0.0/8")
    chain = "198.51.100.9, 192.0.2.1, 10.1.2.3"
    assert client_address(request_from("127.0.0.1", chain)) == "192.0.2.1"


def test_garbage_in_the_header_stops_the_walk_at_the_last_trustworthy_hop(trusted):
    trusted("127.0.0.1/32", "10.0.0.0/8")
    assert client_address(request_from("127.0.0.1", "192.0.2.1, nonsense, 10.1.2.3")) == (
        "10.1.2.3"
    )


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        ("192.0.2.1:5678", "192.0.2.1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("fe80::1%eth0", "127.0.0.1"),
        ("fe80::1%" + "x" * 40, "127.0.0.1"),
    ],
)
def test_addresses_are_normalised_so_one_client_cannot_pass_for_many(trusted, forwarded, client):
    trusted("127.0.0.1/32")
    assert client_address(request_from("127.0.0.1", forwarded)) == client


def test_an_ipv6_client_is_counted_by_its_64():
    assert address_group("2001:db8:1:2::a") == address_group("2001:db8:1:2:ffff::1")
    assert address_group("2001:db8:1:2::a") == "2001:db8:1:2::/64"
    assert address_group("2001:db8:1:3::a") != address_group("2001:db8:1:2::a")
    assert address_group("192.0.2.1") == "192.0.2.1"
    assert address_group("") == ""
