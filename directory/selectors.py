"""Reads of the directory's state, for the console, the API, /readyz and the dashboard."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from accounts.models import Team
from directory import config, oidc
from directory.ldap import DirectoryUnavailable
from directory.models import GroupMapping, SyncRun

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DirectoryStatus:
    ldap_url: str
    oidc_issuer: str
    sync_seconds: int
    can_list: bool  # a scheduled sync is possible: a service account and a user base
    last_run: SyncRun | None
    last_applied: SyncRun | None

    @property
    def configured(self) -> bool:
        return bool(self.ldap_url or self.oidc_issuer)

    @property
    def failing(self) -> bool:
        """The latest sync could not read the directory, or refused what it read."""
        return self.last_run is not None and self.last_run.outcome in (
            SyncRun.Outcome.UNREACHABLE,
            SyncRun.Outcome.REFUSED,
        )


def directory_status() -> DirectoryStatus:
    ldap = config.ldap_config()
    can_list = ldap is not None and ldap.can_list
    can_sync = can_list or config.oidc_enabled()
    runs = sync_runs().exclude(outcome=SyncRun.Outcome.DRY_RUN)
    last_run = runs.first()
    last_applied = last_run
    if last_run is not None and last_run.outcome != SyncRun.Outcome.APPLIED:
        # Only then is the latest applied sync another, earlier one.
        last_applied = runs.filter(outcome=SyncRun.Outcome.APPLIED).first()
    return DirectoryStatus(
        ldap_url=settings.GATEHOUSE_LDAP_URL,
        oidc_issuer=settings.GATEHOUSE_OIDC_ISSUER,
        # As the worker's beat schedules it (gatehouse/settings.py).
        sync_seconds=settings.GATEHOUSE_DIRECTORY_SYNC_SECONDS if can_sync else 0,
        can_list=can_list,
        last_run=last_run,
        last_applied=last_applied,
    )


def ldap_reachable() -> str | None:
    """``None`` when LDAP answers (a connection and the service account's bind), else why
    not; raises ``LookupError`` when LDAP is not configured."""
    directory = config.ldap_directory()
    if directory is None:
        raise LookupError("LDAP is not configured")
    try:
        directory.check()
    except DirectoryUnavailable as error:
        return str(error)
    return None


def oidc_reachable() -> str | None:
    """``None`` when the OpenID provider serves its metadata for the configured issuer,
    else why not."""
    try:
        oidc.provider_check()
    except oidc.SignInFailed as error:
        return str(error)
    return None


def group_mappings() -> QuerySet[GroupMapping]:
    return GroupMapping.objects.select_related("team")


def sync_runs() -> QuerySet[SyncRun]:
    """Newest first, dry runs included."""
    return SyncRun.objects.select_related("actor")


def team_owners(team: Team) -> list[str]:
    """What owns ``team``'s membership, in words (``accounts.signals.membership_owners``)."""
    return [
        f"{mapping.get_source_display()} group {mapping.group}"
        for mapping in GroupMapping.objects.filter(team=team).order_by("source", "key")
    ]
