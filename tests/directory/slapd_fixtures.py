"""A real OpenLDAP directory for tests: one slapd per session, reset after tests that change it.

``tests/conftest.py`` loads these fixtures for the whole suite. ``slapd`` holds four
people and three groups; a test that changes them takes ``slapd_people`` instead, which
puts them back (and restarts slapd if the test stopped it). ``slapd_thousand_users`` is a
second directory of 1,000 people in 200 groups, for paging; tests must not change it.
"""

from collections.abc import Iterator

import pytest

from devtools.slapd import Group, Person, Slapd, generated, installed
from tests.conftest import require

PEOPLE = [
    Person("alice", "alice-pass", "Alice Archer", "alice@example.org"),
    Person("bob", "bob-pass", "Bob Baker", "bob@example.org"),
    Person("carol", "carol-pass", "Carol Carter", "carol@example.org"),
    Person("dave", "dave-pass", "Dave Dawson", "dave@example.org"),
]
GROUPS = [
    Group("ci", ["alice", "bob"]),
    Group("security", ["carol"]),
    Group("everyone", [person.uid for person in PEOPLE]),
]


def _started(people: list[Person], groups: list[Group]) -> Slapd:
    require(installed(), "slapd and ldap-utils (Debian packages slapd, ldap-utils)")
    directory = Slapd.ephemeral(people, groups)
    try:
        directory.start()
    except BaseException:
        directory.discard()
        raise
    return directory


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    """alice, bob, carol, dave (password ``<uid>-pass``); groups ci, security, everyone."""
    directory = _started(PEOPLE, GROUPS)
    yield directory
    directory.discard()


@pytest.fixture
def slapd_people(slapd: Slapd) -> Iterator[Slapd]:
    """The session directory, for a test that changes it: running, and as first loaded, after."""
    yield slapd
    slapd.start()
    slapd.reset()


@pytest.fixture(scope="session")
def slapd_thousand_users() -> Iterator[Slapd]:
    """``user0001``… ``user1000`` in ``group001``… ``group200``, three groups each; read-only."""
    directory = _started(*generated(users=1000, groups=200))
    yield directory
    directory.discard()
