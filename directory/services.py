"""Writes that follow the directory: logins through it, syncs, and group mappings.

Every change goes through ``accounts.services`` and is audited with ``directory`` as its
actor, so Notary follows through the same identity events as any other change. A directory
that cannot be read changes nothing (``SyncRun.Outcome.UNREACHABLE``).
"""

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import services as accounts
from accounts.models import Membership, Team, User
from audit.services import audit_record
from directory import config, plan
from directory.ldap import DirectoryUnavailable, Person, group_key
from directory.models import DirectoryAccount, GroupMapping, Source, SyncRun

logger = logging.getLogger(__name__)

ACTOR_NAME = "directory"
KEPT_RUNS = 200
# A scheduled sync may always deactivate this many people, whatever the percentage says.
MIN_DEACTIVATIONS_REFUSED = 10


class LoginRefusedByDirectory(Exception):
    """The directory vouched for someone Gatehouse will not let in; the message says why."""


# --- logins ------------------------------------------------------------------------------


def ldap_login(person: Person) -> User:
    """The user an LDAP bind just proved to be ``person``: created at their first login,
    their name, email and memberships of mapped teams brought up to date. A deactivated user
    stays deactivated (the backend refuses them)."""
    return _login(
        source=Source.LDAP,
        issuer="",
        subject=person.username.lower(),
        username=person.username,
        full_name=person.full_name,
        email=person.email,
        groups=person.groups,
        dn=person.dn,
    )


def oidc_login(
    *,
    issuer: str,
    subject: str,
    username: str,
    full_name: str,
    email: str,
    groups: frozenset[str] | None,
) -> User:
    """The user an OpenID provider's verified ID token names. ``groups=None`` (the token
    had no groups claim) leaves their memberships as they were."""
    return _login(
        source=Source.OIDC,
        issuer=issuer,
        subject=subject,
        username=username,
        full_name=full_name,
        email=email,
        groups=None if groups is None else frozenset(group_key(g) for g in groups),
        dn="",
    )


def oidc_login_from_claims(claims: dict[str, Any]) -> User:
    """``oidc_login`` for the claims of a verified ID token, or ``LoginRefusedByDirectory``
    when they lack what Gatehouse needs or name a deactivated user."""
    username = claims.get(settings.GATEHOUSE_OIDC_USERNAME_CLAIM)
    if not isinstance(username, str) or not username:
        raise LoginRefusedByDirectory(
            f"The provider's ID token has no {settings.GATEHOUSE_OIDC_USERNAME_CLAIM} claim."
        )
    groups = claims.get(settings.GATEHOUSE_OIDC_GROUPS_CLAIM)
    if groups is not None and not (
        isinstance(groups, list) and all(isinstance(group, str) for group in groups)
    ):
        raise LoginRefusedByDirectory(
            f"The provider's {settings.GATEHOUSE_OIDC_GROUPS_CLAIM} claim is not a list of names."
        )
    user = oidc_login(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        username=username,
        full_name=str(claims.get("name") or ""),
        email=str(claims.get("email") or ""),
        groups=None if groups is None else frozenset(groups),
    )
    if not user.is_active:
        raise LoginRefusedByDirectory(f"The account {user.username} is deactivated.")
    return user


def _login(
    *,
    source: str,
    issuer: str,
    subject: str,
    username: str,
    full_name: str,
    email: str,
    groups: frozenset[str] | None,
    dn: str,
) -> User:
    with transaction.atomic():
        account = (
            DirectoryAccount.objects.select_for_update()
            .select_related("user")
            .filter(source=source, issuer=issuer, subject=subject)
            .first()
        )
        if account is None:
            account = _account_create(
                source=source,
                issuer=issuer,
                subject=subject,
                username=username,
                full_name=full_name[:150],
                email=_valid_email(email),
            )
        user = account.user
        if not user.is_active and account.deactivated_by_directory and source == Source.LDAP:
            # The bind and the filters just proved them enabled again.
            accounts.user_reactivate(actor=None, actor_name=ACTOR_NAME, user=user)
            account.deactivated_by_directory = False
            account.save(update_fields=["deactivated_by_directory"])
        if user.is_active:
            accounts.user_update(
                actor=None,
                actor_name=ACTOR_NAME,
                user=user,
                full_name=full_name[:150],
                email=_valid_email(email),
            )
        account.dn = dn
        account.seen_at = timezone.now()
        if groups is not None:
            account.groups = sorted(groups)
        account.save(update_fields=["dn", "seen_at", "groups"])
        if groups is not None and user.is_active:
            _apply(_plan_for(account))
    return user


def _account_create(
    *, source: str, issuer: str, subject: str, username: str, full_name: str, email: str
) -> DirectoryAccount:
    """A new user for a directory identity. A name a local account already has is refused:
    the directory must not take over an account Gatehouse checks itself (the first admin's,
    say)."""
    existing = User.objects.with_username(username).first()
    if existing is not None:
        raise LoginRefusedByDirectory(
            f"A Gatehouse account named {existing.username} already exists and is not "
            "this sign-in's; an admin must rename or remove it first."
        )
    try:
        user = accounts.user_create(
            actor=None,
            actor_name=ACTOR_NAME,
            username=username,
            password=None,
            full_name=full_name,
            email=email,
        )
    except ValidationError as error:
        raise LoginRefusedByDirectory(
            f"The directory's username {username!r} cannot be a Gatehouse username: "
            + " ".join(error.messages)
        ) from error
    return DirectoryAccount.objects.create(user=user, source=source, issuer=issuer, subject=subject)


def _valid_email(email: str) -> str:
    """The directory's email when it is one Gatehouse accepts, else none."""
    try:
        User._meta.get_field("email").clean(email, None)
    except ValidationError:
        return ""
    return email


# --- syncs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    run: SyncRun
    changes: list[plan.Change]


def directory_sync(*, trigger: str, actor: User | None = None, dry_run: bool = False) -> SyncResult:
    """Make Gatehouse follow the directory: read everyone from LDAP (when it can list them),
    deactivate who left or was disabled there, reactivate who came back, and set mapped
    teams' members; an OpenID Connect user whose last sign-in is older than
    ``GATEHOUSE_OIDC_GROUPS_SECONDS`` leaves the mapped teams until they sign in again.
    ``dry_run`` only records what it would change. LDAP unreachable, listing nobody while
    Gatehouse knows LDAP users, or (scheduled) deactivating more people than it may
    unattended: nothing changes, and the run says why."""
    started = timezone.now()
    directory = config.ldap_directory()
    listing = directory is not None and directory.config.can_list
    if not listing and not config.oidc_enabled():
        raise ValidationError(
            {
                "source": [
                    "Nothing to sync: a sync reads everyone from LDAP, which needs "
                    "GATEHOUSE_LDAP_URL, a service account (GATEHOUSE_LDAP_BIND_DN) and a "
                    "user base (GATEHOUSE_LDAP_USER_BASE), or expires OpenID Connect "
                    "sign-ins (GATEHOUSE_OIDC_ISSUER)."
                ]
            }
        )
    source = Source.LDAP if listing else Source.OIDC
    snapshot = None
    if directory is not None and listing:
        try:
            snapshot = directory.snapshot()
        except DirectoryUnavailable as error:
            logger.warning("directory sync: the directory cannot be read: %s", error)
            return _record(
                source, trigger, actor, started, SyncRun.Outcome.UNREACHABLE, error=str(error)
            )
        known = DirectoryAccount.objects.filter(source=Source.LDAP, user__is_active=True)
        if not snapshot.people and known.exists():
            message = (
                "The directory listed nobody, but Gatehouse has active directory users: "
                "refusing to read that as everyone having left. Check the user base and filter."
            )
            logger.warning("directory sync refused: %s", message)
            return _record(source, trigger, actor, started, SyncRun.Outcome.REFUSED, error=message)
    listed = (
        {
            key: plan.Listed(
                groups=person.groups,
                disabled=key in snapshot.disabled,
                full_name=person.full_name[:150],
                email=_valid_email(person.email),
            )
            for key, person in snapshot.people.items()
        }
        if snapshot is not None
        else None
    )
    with transaction.atomic():
        # One sync at a time; a login's changes wait for it (their accounts are locked).
        accounts_now = list(
            DirectoryAccount.objects.select_for_update().select_related("user").order_by("pk")
        )
        changes = plan.plan(
            source=Source.LDAP,
            accounts=[_account(a, now=started) for a in accounts_now],
            listed=listed,
            mappings=_mappings(),
            members=_members(),
        )
        too_many = _too_many_deactivations(changes, accounts_now) or (
            _mapped_groups_missing(snapshot.groups) if snapshot is not None else ""
        )
        if too_many and trigger == SyncRun.Trigger.SCHEDULE and not dry_run:
            logger.warning("directory sync refused: %s", too_many)
            return _record(source, trigger, actor, started, SyncRun.Outcome.REFUSED, error=too_many)
        if not dry_run:
            if snapshot is not None:
                _accounts_refresh(accounts_now, snapshot.people, seen_at=started)
            _apply(changes, listed=listed)
        result = _record(
            source,
            trigger,
            actor,
            started,
            SyncRun.Outcome.DRY_RUN if dry_run else SyncRun.Outcome.APPLIED,
            changes=changes,
            people=len(snapshot.people) if snapshot is not None else 0,
        )
    logger.info(
        "directory sync (%s): %d listed, %d change(s)%s",
        trigger,
        len(listed or ()),
        len(changes),
        " (dry run)" if dry_run else "",
    )
    return result


def _too_many_deactivations(
    changes: list[plan.Change], accounts_now: list[DirectoryAccount]
) -> str:
    """Why the sync would deactivate too many people to be trusted unattended (more than
    ``GATEHOUSE_DIRECTORY_MAX_DEACTIVATIONS_PERCENT`` of the active LDAP users, and more
    than ``MIN_DEACTIVATIONS_REFUSED``), or ``""``. A filter or base changed by mistake
    looks like that; an admin who previewed it can still sync by hand."""
    leaving = sum(change.kind == "deactivate" for change in changes)
    active = sum(a.source == Source.LDAP and a.user.is_active for a in accounts_now)
    limit = max(
        MIN_DEACTIVATIONS_REFUSED,
        active * settings.GATEHOUSE_DIRECTORY_MAX_DEACTIVATIONS_PERCENT / 100,
    )
    if leaving <= limit:
        return ""
    return (
        f"The directory no longer lists, or lists as disabled, {leaving} of {active} active "
        f"users, more than GATEHOUSE_DIRECTORY_MAX_DEACTIVATIONS_PERCENT "
        f"({settings.GATEHOUSE_DIRECTORY_MAX_DEACTIVATIONS_PERCENT}%) allows unattended: "
        "nothing was changed. Preview a sync, and sync by hand if it is right."
    )


def _mapped_groups_missing(found: frozenset[str]) -> str:
    """Why the sync would empty teams by way of groups the directory did not list (a wrong
    group base or filter, groups hidden from the service account, a group renamed), or
    ``""``; only teams that have members count."""
    missing = sorted(
        {
            (mapping.group, mapping.team.name)
            for mapping in GroupMapping.objects.filter(
                source=Source.LDAP, team__memberships__isnull=False
            ).select_related("team")
            if mapping.key not in found
        }
    )
    if not missing:
        return ""
    named = ", ".join(f"{group} (team {team})" for group, team in missing)
    return (
        f"The directory did not list the mapped group{'s' if len(missing) > 1 else ''} "
        f"{named}: nothing was changed, rather than empty those teams unattended. Check "
        "the group base and filter, or remove the mapping; a sync by hand applies it."
    )


def _accounts_refresh(
    accounts_now: list[DirectoryAccount], people: dict[str, Person], *, seen_at: dt.datetime
) -> None:
    """Keep what LDAP just said of its users; only the rows that changed are written."""
    changed = []
    for account in accounts_now:
        entry = people.get(account.subject.lower()) if account.source == Source.LDAP else None
        if entry is None:
            continue
        groups = sorted(entry.groups)
        if (account.groups, account.dn) != (groups, entry.dn) or _stale(account, seen_at):
            account.groups, account.dn, account.seen_at = groups, entry.dn, seen_at
            changed.append(account)
    DirectoryAccount.objects.bulk_update(changed, ["groups", "dn", "seen_at"])


def _stale(account: DirectoryAccount, now: dt.datetime) -> bool:
    """Whether the groups last known for ``account`` no longer count: an OpenID Connect
    sign-in's count for ``GATEHOUSE_OIDC_GROUPS_SECONDS`` (the provider cannot be asked
    between sign-ins); ``seen_at`` of an LDAP account is refreshed hourly at most."""
    if account.seen_at is None:
        return True
    if account.source == Source.OIDC:
        return now - account.seen_at > dt.timedelta(seconds=settings.GATEHOUSE_OIDC_GROUPS_SECONDS)
    return now - account.seen_at > dt.timedelta(hours=1)


def _record(
    source: str,
    trigger: str,
    actor: User | None,
    started: dt.datetime,
    outcome: str,
    *,
    changes: list[plan.Change] | None = None,
    error: str = "",
    people: int = 0,
) -> SyncResult:
    changes = changes or []
    previous = (
        SyncRun.objects.exclude(outcome=SyncRun.Outcome.DRY_RUN)
        .values_list("outcome", flat=True)
        .first()
    )
    run = SyncRun.objects.create(
        source=source,
        trigger=trigger,
        actor=actor,
        started_at=started,
        finished_at=timezone.now(),
        outcome=outcome,
        error=error,
        people=people,
        changes=[change.as_dict() for change in changes],
    )
    old = SyncRun.objects.values_list("pk", flat=True)[KEPT_RUNS:]
    SyncRun.objects.filter(pk__in=list(old)).delete()
    # The audit log keeps what changed: a sync that changed something, and the moment syncs
    # start or stop failing, not one entry per scheduled sync.
    if outcome != SyncRun.Outcome.DRY_RUN and (changes or outcome != previous):
        audit_record(
            action=f"directory.sync_{outcome}",
            actor=actor,
            actor_name=ACTOR_NAME if actor is None else "",
            target_type="directory",
            target_id=source,
            after={"trigger": trigger, "changes": len(changes), "error": error}
            if error
            else {"trigger": trigger, "changes": len(changes)},
        )
    return SyncResult(run=run, changes=changes)


def _account(account: DirectoryAccount, *, now: dt.datetime) -> plan.Account:
    """The plan's view of ``account``: an OpenID Connect user whose groups no longer count
    (``_stale``) is in no group."""
    stale = account.source == Source.OIDC and _stale(account, now)
    return plan.Account(
        username=account.user.username,
        source=account.source,
        groups=frozenset() if stale else frozenset(account.groups),
        is_active=account.user.is_active,
        deactivated_by_directory=account.deactivated_by_directory,
        full_name=account.user.full_name,
        email=account.user.email,
        subject=account.subject,
    )


def _mappings() -> list[plan.MappedGroup]:
    return [
        plan.MappedGroup(source=source, key=key, team=team)
        for source, key, team in GroupMapping.objects.values_list("source", "key", "team__name")
    ]


def _members(usernames: list[str] | None = None) -> dict[str, frozenset[str]]:
    """The members of every mapped team (of those ``usernames`` only, when given)."""
    rows = Membership.objects.filter(team__directory_groups__isnull=False)
    if usernames is not None:
        rows = rows.filter(user__username__in=usernames)
    members: dict[str, set[str]] = {}
    for team, username in rows.values_list("team__name", "user__username").distinct():
        members.setdefault(team, set()).add(username)
    return {team: frozenset(names) for team, names in members.items()}


def _plan_for(account: DirectoryAccount) -> list[plan.Change]:
    """One directory user's memberships of mapped teams, from their groups."""
    return plan.plan(
        source=account.source,
        accounts=[_account(account, now=timezone.now())],
        listed=None,
        mappings=_mappings(),
        members=_members([account.user.username]),
    )


def _apply(changes: list[plan.Change], *, listed: dict[str, plan.Listed] | None = None) -> None:
    """Make ``changes`` through the identity services. One that a rule of Gatehouse refuses
    (the last active admin) is logged and skipped, not the sync."""
    usernames = {change.username for change in changes}
    users = {user.username: user for user in User.objects.filter(username__in=usernames)}
    by_team: dict[str, tuple[list[User], list[User]]] = {}
    for change in changes:
        user = users[change.username]
        try:
            if change.kind == "deactivate":
                accounts.user_deactivate(actor=None, actor_name=ACTOR_NAME, user=user)
                DirectoryAccount.objects.filter(user=user).update(deactivated_by_directory=True)
            elif change.kind == "reactivate":
                accounts.user_reactivate(actor=None, actor_name=ACTOR_NAME, user=user)
                DirectoryAccount.objects.filter(user=user).update(deactivated_by_directory=False)
            elif change.kind == "profile" and listed is not None:
                entry = listed[user.username.lower()]
                accounts.user_update(
                    actor=None,
                    actor_name=ACTOR_NAME,
                    user=user,
                    full_name=entry.full_name,
                    email=entry.email,
                )
            elif change.kind in ("join", "leave"):
                add, remove = by_team.setdefault(change.team, ([], []))
                (add if change.kind == "join" else remove).append(user)
        except ValidationError as error:
            logger.warning("directory: %s refused: %s", change, " ".join(error.messages))
    teams = {team.name: team for team in Team.objects.filter(name__in=by_team)}
    for name, (add, remove) in sorted(by_team.items()):
        accounts.team_membership_sync(
            team=teams[name], add=add, remove=remove, actor_name=ACTOR_NAME
        )


# --- mappings ----------------------------------------------------------------------------


def group_mapping_create(*, actor: User, source: str, group: str, team: Team) -> GroupMapping:
    """Map ``group`` to ``team``: from now on the directory owns the team's membership,
    which is set at once from the groups each directory user last had."""
    group = group.strip()
    if source not in Source.values:
        raise ValidationError({"source": [f"Choose one of: {', '.join(Source.values)}."]})
    if not group or len(group) > 500 or not group.isprintable():
        raise ValidationError(
            {"group": ["Give the group's DN, name or claim value (1 to 500 characters)."]}
        )
    with transaction.atomic():
        # As a hand edit of the team's members locks it: none slips in beside the mapping.
        Team.objects.select_for_update().filter(pk=team.pk).first()
        mapping = GroupMapping(source=source, group=group, key=group_key(group), team=team)
        try:
            with transaction.atomic():
                mapping.save()
        except IntegrityError as error:
            raise ValidationError(
                {"group": ["That group is already mapped to that team."]}
            ) from error
        audit_record(
            action="directory.mapping_created",
            actor=actor,
            target_type="team",
            target_id=team.name,
            after={"source": source, "group": group},
        )
        _team_follow(team)
    return mapping


def group_mapping_delete(*, actor: User, mapping: GroupMapping) -> None:
    """Unmap a group. A team left without mappings keeps its members and is edited by hand
    again; one still mapped follows its other groups."""
    with transaction.atomic():
        team = mapping.team
        audit_record(
            action="directory.mapping_deleted",
            actor=actor,
            target_type="team",
            target_id=team.name,
            before={"source": mapping.source, "group": mapping.group},
        )
        mapping.delete()
        if GroupMapping.objects.filter(team=team).exists():
            _team_follow(team)


def _team_follow(team: Team) -> None:
    """Set a mapped team's members from the groups directory users last had, without
    asking the directory."""
    accounts_now = DirectoryAccount.objects.select_related("user")
    changes = plan.plan(
        source="",
        accounts=[_account(a, now=timezone.now()) for a in accounts_now],
        listed=None,
        mappings=[m for m in _mappings() if m.team == team.name],
        members={k: v for k, v in _members().items() if k == team.name},
    )
    _apply(changes)
