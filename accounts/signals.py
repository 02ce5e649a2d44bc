"""Signals that let the layers above ``accounts`` take part in its writes.

``accounts`` imports nothing from ``policy``, ``trust`` or ``bundles``; they connect receivers
here in their ``AppConfig.ready()`` instead.
"""

from collections.abc import Iterable
from typing import cast

from django.dispatch import Signal

from accounts.models import Team, User

# Sent by ``accounts.services.team_delete`` before it changes anything, with ``sender=Team``
# and ``team=`` the team about to be deleted. Each receiver returns a list of human-readable
# strings naming what still uses the team (``"the content-trust policy (signing teams)"``,
# ``"repository registry.example.com/ci/app"``), or an empty list. Any string refuses the
# deletion (``accounts.services.TeamInUse``); a receiver that raises refuses it too.
team_delete_blockers = Signal()

# Sent by ``accounts.services.team_member_add`` and ``team_member_remove`` before they change
# anything, with ``sender=Team`` and ``team=``. Each receiver returns a list of strings naming
# what owns the team's membership (``"directory group cn=ci,ou=groups,dc=example,dc=org"``), or
# an empty list. Any string refuses a change by hand (``accounts.services.MembershipOwned``):
# the owner changes the membership through ``team_membership_sync`` instead.
membership_owners = Signal()

# Sent by ``accounts.services.user_deactivate`` and ``user_reactivate`` in their transaction,
# with ``sender=User``, ``user=``, ``active=`` (the new state) and ``actor_name=`` (who made
# the change when it was not a person: ``"directory"``; blank when ``actor`` is a person).
user_activity_changed = Signal()

# Sent in the transaction of every change to who may sign: membership, deactivation and
# reactivation, team deletion, signing keys issued, registered, marked, unmarked or revoked
# (``identity_change_announce``). ``teams`` and ``users`` are those whose signing rights
# may have changed; either may be empty when only what evaluations explain changed.
# Receivers run inside the caller's transaction, so work they queue ``on_commit`` waits for
# it, and an exception rolls the change back.
identity_changed = Signal()


def identity_change_announce(
    *,
    actor: User | None,
    cause: str,
    teams: Iterable[Team] = (),
    users: Iterable[User] = (),
) -> None:
    """Tell the layers above that who may sign has changed (``identity_changed``)."""
    identity_changed.send(
        sender=User, actor=actor, cause=cause, teams=list(teams), users=list(users)
    )


def team_membership_owners(team: Team) -> list[str]:
    """What owns ``team``'s membership (``membership_owners``); empty: it is edited by hand."""
    return [
        owner
        for _, owners in membership_owners.send(sender=Team, team=team)
        for owner in cast(list[str], owners)
    ]
