"""What a sync changes, worked out without touching anything: pure, so a dry run and a real
run are the same computation, and so it can be tested on its own.

The rule: a mapped team's members are exactly the active directory users one of whose
groups is mapped to it. Local users (no directory account) are never members of a mapped
team. A directory user the directory no longer lists, or lists as disabled, is
deactivated; one a sync deactivated that comes back enabled is reactivated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Account:
    """A Gatehouse user whose identity the directory holds, as Gatehouse has it now."""

    username: str
    source: str
    groups: frozenset[str]
    is_active: bool
    deactivated_by_directory: bool
    full_name: str = ""
    email: str = ""
    subject: str = ""  # what the source lists them by; blank: the username, lowercased


@dataclass(frozen=True)
class Listed:
    """What the directory now says of a person."""

    groups: frozenset[str]
    disabled: bool
    full_name: str
    email: str


@dataclass(frozen=True)
class Change:
    kind: str  # deactivate, reactivate, profile, join, leave
    username: str
    team: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "username": self.username,
            "team": self.team,
            "detail": self.detail,
        }

    def __str__(self) -> str:
        return {
            "deactivate": f"deactivate {self.username} ({self.detail})",
            "reactivate": f"reactivate {self.username}",
            "profile": f"update {self.username}'s {self.detail}",
            "join": f"add {self.username} to {self.team}",
            "leave": f"remove {self.username} from {self.team}",
        }[self.kind]


@dataclass(frozen=True)
class MappedGroup:
    source: str
    key: str
    team: str


def teams_for(
    source: str, groups: Iterable[str], mappings: Iterable[MappedGroup]
) -> frozenset[str]:
    """The teams ``groups`` of ``source`` make someone a member of."""
    keys = set(groups)
    return frozenset(m.team for m in mappings if m.source == source and m.key in keys)


def plan(
    *,
    source: str,
    accounts: Iterable[Account],
    listed: Mapping[str, Listed] | None,
    mappings: Iterable[MappedGroup],
    members: Mapping[str, frozenset[str]],
) -> list[Change]:
    """The changes that bring Gatehouse in line with ``listed`` (everyone ``source`` lists,
    by lowercased username; ``None``: the source cannot list, so only mappings are applied
    to the groups last known).

    ``accounts`` are every directory user of every source; ``members`` the current members
    (usernames) of each mapped team. Accounts of other sources keep their last known
    groups: their memberships of teams mapped from several sources still count.
    """
    mappings = list(mappings)
    mapped_teams = sorted({m.team for m in mappings})
    changes: list[Change] = []
    desired: dict[str, set[str]] = {team: set() for team in mapped_teams}
    for account in sorted(accounts, key=lambda a: a.username):
        groups, active = account.groups, account.is_active
        if account.source == source and listed is not None:
            entry = listed.get(account.subject or account.username.lower())
            if entry is None or entry.disabled:
                if account.is_active:
                    reason = "disabled in the directory" if entry else "no longer in the directory"
                    changes.append(Change("deactivate", account.username, detail=reason))
                active = False
            elif not account.is_active and account.deactivated_by_directory:
                changes.append(Change("reactivate", account.username))
                active = True
            if entry is not None:
                groups = entry.groups
                changed = [
                    field
                    for field, now in (("full_name", entry.full_name), ("email", entry.email))
                    if getattr(account, field) != now
                ]
                if changed:
                    changes.append(Change("profile", account.username, detail=", ".join(changed)))
        if active:
            for team in teams_for(account.source, groups, mappings):
                desired[team].add(account.username)
    for team in mapped_teams:
        current = members.get(team, frozenset())
        changes += [Change("join", name, team) for name in sorted(desired[team] - current)]
        changes += [Change("leave", name, team) for name in sorted(current - desired[team])]
    return changes
