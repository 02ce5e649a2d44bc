"""Receivers of other apps' signals; thin: each asks a selector or one service."""

from collections.abc import Iterable

from django.db import transaction

from accounts.models import Team, User
from trust import trust_data
from trust.selectors import repositories_of_teams
from trust.services.sync_requests import identity_syncs_request

# How many repositories a refusal names; the rest are counted.
NAMED_REPOSITORIES = 10


def team_delete_blockers(*, team: Team, **kwargs: object) -> list[str]:
    """The repositories whose signer teams name ``team``, by GUN, then how many more."""
    repositories = repositories_of_teams([team.pk])
    guns = list(
        repositories.order_by("gun").values_list("gun", flat=True)[: NAMED_REPOSITORIES + 1]
    )
    if len(guns) <= NAMED_REPOSITORIES:
        return [f"repository {gun}" for gun in guns]
    more = repositories.count() - NAMED_REPOSITORIES
    return [f"repository {gun}" for gun in guns[:NAMED_REPOSITORIES]] + [
        f"and {more} more repositor{'y' if more == 1 else 'ies'}"
    ]


def pins_changed(**kwargs: object) -> None:
    """Verified trust data is cached with the pin it was read under: forget it in this
    process now (a read later in this transaction sees the change) and again once committed
    (a read in between may have cached the old pin); other processes compare the pin when
    they revalidate."""
    trust_data.forget()
    transaction.on_commit(trust_data.forget)


def identity_changed(
    *,
    actor: User | None,
    cause: str,
    teams: Iterable[Team],
    users: Iterable[User],
    **kwargs: object,
) -> None:
    """Notary follows: sync every repository these teams or users sign."""
    identity_syncs_request(actor=actor, cause=cause, teams=teams, users=users)
