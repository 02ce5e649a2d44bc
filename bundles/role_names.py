"""Signing role names from usernames, in Notary's role syntax. Pure, so a migration can
use them as they are."""

import re
import unicodedata
from collections.abc import Iterator

RESERVED_ROLE_NAMES = frozenset({"releases"})
NAME_BASE_MAX = 48  # leaves room for a "-<n>" suffix within the 64 the syntax allows
_OUTSIDE_SYNTAX = re.compile(r"[^a-z0-9_-]+")


def role_name_base(username: str) -> str:
    """The name a user's role starts from: the username in Notary's role syntax
    (``[-a-z0-9_]``, starting with a letter or digit), ``user`` when nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", username).encode("ascii", "ignore").decode()
    base = _OUTSIDE_SYNTAX.sub("-", ascii_name.lower()).strip("-_")[:NAME_BASE_MAX].strip("-_")
    return base or "user"


def role_name_candidates(username: str) -> Iterator[str]:
    """``base``, then ``base-2``, ``base-3``…: the first one free is the user's."""
    base = role_name_base(username)
    if base not in RESERVED_ROLE_NAMES:
        yield base
    number = 2
    while True:
        yield f"{base}-{number}"
        number += 1
