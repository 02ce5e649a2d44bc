"""A full LDAP directory sync: 1,000 people in 200 groups, each group mapped to a team.

In one run, against a real slapd (LDAPS with its own CA, the service account, the ppolicy
lock as the disabled filter) and Gatehouse on PostgreSQL:

* (1) ``directory_sync(trigger="manual")`` with nothing to change (steady state);
* (2) the same after the directory changed a lot: 50 people disabled and 100 moved from one
  of their groups to another (50 deactivations and 350 memberships: 400 changes);
* (3) a dry run of (2), taken just before it;
* (4) the directory put back as loaded, and a sync that applies the reverse (50
  reactivations, the moves undone).

Each is split into reading the directory (``LdapDirectory.snapshot``), planning (reading
Gatehouse's accounts, mappings and members, then the pure ``directory.plan.plan``), applying
(writing the accounts whose groups or DN changed, then ``_apply`` making the changes
through the identity services) and recording the run (with the commit). The goal is a
whole sync in under 10 s. Times are medians over the rounds.

Needs PostgreSQL (``BENCH_POSTGRES_URL``, default postgres://postgres@127.0.0.1:5432) and
slapd with ldap-utils (Debian packages ``slapd``, ``ldap-utils``). Run:
``.venv/bin/python benchmarks/directory_sync.py [--profile]``; ``--profile`` adds where the
time of the last applied sync of changes goes.
"""

import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from collections import defaultdict
from contextlib import contextmanager

from common import configure_environment, scratch_database

from devtools.slapd import DISABLED_FILTER, Slapd, generated, installed

USERS = 1000
GROUPS = 200
GROUPS_PER_USER = 3
DISABLED = 50
MOVED = 100
STEADY_ROUNDS = 5
CHANGE_ROUNDS = 3
GOAL_SECONDS = 10.0
PHASES = ("read", "plan", "of which plan.plan", "accounts", "changes", "record")
COLUMNS = ("read", "plan", "pure plan", "accounts", "changes", "record")
WIDTH = 10


class PhaseClock:
    """Timestamps of the sync's steps, taken by wrappers around the functions that begin
    and end them; ``sync()`` runs one sync and turns its timestamps into durations."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    @contextmanager
    def installed(self):
        from directory import ldap, plan, services

        originals = (ldap.LdapDirectory.snapshot, plan.plan, services._apply, services._record)

        def timed(name, function):
            def wrapper(*args, **kwargs):
                self.marks.setdefault(f"{name} start", time.perf_counter())
                try:
                    return function(*args, **kwargs)
                finally:
                    self.marks[f"{name} end"] = time.perf_counter()

            return wrapper

        ldap.LdapDirectory.snapshot = timed("snapshot", originals[0])
        plan.plan = timed("plan", originals[1])
        services._apply = timed("apply", originals[2])
        services._record = timed("record", originals[3])
        try:
            yield self
        finally:
            (ldap.LdapDirectory.snapshot, plan.plan, services._apply, services._record) = originals

    def sync(self, *, dry_run: bool = False):
        """One manual sync; its result and durations by phase."""
        from directory.services import directory_sync

        self.marks = {}
        started = time.perf_counter()
        result = directory_sync(trigger="manual", dry_run=dry_run)
        ended = time.perf_counter()
        marks = self.marks
        phases = {
            "read": marks["snapshot end"] - marks["snapshot start"],
            "plan": marks["plan end"] - marks["snapshot end"],
            "of which plan.plan": marks["plan end"] - marks["plan start"],
            "accounts": marks.get("apply start", marks["record start"]) - marks["plan end"],
            "changes": marks.get("apply end", 0.0) - marks.get("apply start", 0.0),
            "record": ended - marks["record start"],
            "total": ended - started,
        }
        return result, phases


def directory_settings(directory: Slapd) -> None:
    """Gatehouse pointed at ``directory`` as docs/directory.md describes: LDAPS with the
    server's CA, searching as the service account, disabled people found by ppolicy's lock."""
    os.environ.update(
        GATEHOUSE_LDAP_URL=directory.ldaps_url,
        GATEHOUSE_LDAP_CA_FILE=str(directory.ca_file),
        GATEHOUSE_LDAP_BIND_DN=directory.service_dn,
        GATEHOUSE_LDAP_BIND_PASSWORD=directory.service_password,
        GATEHOUSE_LDAP_USER_BASE=directory.people_base,
        GATEHOUSE_LDAP_GROUP_BASE=directory.groups_base,
        GATEHOUSE_LDAP_DISABLED_FILTER=DISABLED_FILTER,
        GATEHOUSE_DIRECTORY_SYNC_SECONDS="0",
    )


def seed(directory: Slapd) -> float:
    """An admin, 200 teams each mapped to a group (half by DN, half by name), and the 1,000
    directory users as their first logins would create them; returns the seconds it took."""
    from accounts.services import team_create, user_create
    from directory import config
    from directory.models import Source
    from directory.services import group_mapping_create, ldap_login

    started = time.perf_counter()
    admin = user_create(
        actor=None, username="admin", password="a-benchmark-passphrase", is_admin=True
    )
    for number, group in enumerate(directory.groups):
        team = team_create(actor=admin, name=f"team-{group.cn}")
        name = directory.group_dn(group.cn) if number % 2 == 0 else group.cn
        group_mapping_create(actor=admin, source=Source.LDAP, group=name, team=team)
    ldap = config.ldap_directory()
    assert ldap is not None
    snapshot = ldap.snapshot()
    assert len(snapshot.people) == USERS, len(snapshot.people)
    for person in snapshot.people.values():
        ldap_login(person)
    return time.perf_counter() - started


def change_directory(directory: Slapd) -> tuple[int, int]:
    """Disable every 20th person and move 100 others out of their first group into one
    they are not in; returns (disabled, moved)."""
    groups_of: dict[str, list[str]] = defaultdict(list)
    for group in directory.groups:
        for uid in group.members:
            groups_of[uid].append(group.cn)
    uids = [person.uid for person in directory.people]
    disabled = uids[19::20][:DISABLED]
    moved = [uid for uid in uids[6::10] if uid not in disabled][:MOVED]
    for uid in disabled:
        directory.disable(uid)
    names = [group.cn for group in directory.groups]
    for uid in moved:
        leaving = groups_of[uid][0]
        joining = next(
            name
            for name in names[names.index(leaving) + GROUPS // 2 :] + names
            if name not in groups_of[uid]
        )
        directory.remove_from_group(uid, leaving)
        directory.add_to_group(uid, joining)
    return len(disabled), len(moved)


def counts(changes) -> str:
    by_kind: dict[str, int] = defaultdict(int)
    for change in changes:
        by_kind[change.kind] += 1
    return ", ".join(f"{count} {kind}" for kind, count in sorted(by_kind.items())) or "none"


def main() -> None:
    show_profile = "--profile" in sys.argv
    if not installed():
        raise SystemExit("slapd and ldap-utils are needed (apt-get install slapd ldap-utils)")
    directory = Slapd.ephemeral(
        *generated(users=USERS, groups=GROUPS, groups_per_user=GROUPS_PER_USER)
    )
    directory.start()
    try:
        with scratch_database("gatehouse_bench_directory") as database_url:
            directory_settings(directory)
            configure_environment(database_url)
            from accounts.models import Membership, User
            from audit.models import AuditEntry
            from directory.models import SyncRun

            seconds_seeding = seed(directory)
            memberships = Membership.objects.count()
            print(
                f"seeded in {seconds_seeding:.1f} s: {User.objects.count() - 1} directory users, "
                f"{memberships} memberships of {GROUPS} mapped teams"
            )
            clock = PhaseClock()
            figures: dict[str, list[dict[str, float]]] = defaultdict(list)
            outcomes: dict[str, set[str]] = defaultdict(set)
            profiled = ""
            with clock.installed():
                for _ in range(STEADY_ROUNDS):
                    result, phases = clock.sync()
                    assert result.run.outcome == SyncRun.Outcome.APPLIED, result.run.error
                    assert not result.changes, counts(result.changes)
                    figures["(1) steady state, nothing to change"].append(phases)
                for round_number in range(CHANGE_ROUNDS):
                    disabled, moved = change_directory(directory)
                    result, phases = clock.sync(dry_run=True)
                    assert result.run.outcome == SyncRun.Outcome.DRY_RUN, result.run.error
                    figures["(3) dry run of the same"].append(phases)
                    outcomes["(3) dry run of the same"].add(counts(result.changes))
                    audit_before = AuditEntry.objects.count()
                    profiler = None
                    if show_profile and round_number == CHANGE_ROUNDS - 1:
                        profiler = cProfile.Profile()
                        profiler.enable()
                    result, phases = clock.sync()
                    if profiler is not None:
                        profiler.disable()
                        out = io.StringIO()
                        stats = pstats.Stats(profiler, stream=out)
                        stats.sort_stats("cumulative").print_stats(35)
                        profiled = out.getvalue()
                    assert result.run.outcome == SyncRun.Outcome.APPLIED, result.run.error
                    figures["(2) a lot changed, applied"].append(phases)
                    outcomes["(2) a lot changed, applied"].add(
                        f"{counts(result.changes)}; "
                        f"{AuditEntry.objects.count() - audit_before} audit entries"
                    )
                    assert User.objects.filter(is_active=False).count() == disabled
                    directory.reset()
                    result, phases = clock.sync()
                    assert result.run.outcome == SyncRun.Outcome.APPLIED, result.run.error
                    figures["(4) the directory put back, applied"].append(phases)
                    outcomes["(4) the directory put back, applied"].add(counts(result.changes))
                    assert not User.objects.filter(is_active=False).exists()
                    assert Membership.objects.count() == memberships
                    assert moved == MOVED
    finally:
        directory.discard()

    print(
        f"{USERS} people in {GROUPS} groups ({GROUPS_PER_USER} each), every group mapped to "
        f"a team; LDAPS, service account, paged reads. Medians of {STEADY_ROUNDS} steady and "
        f"{CHANGE_ROUNDS} changed rounds, seconds (goal: whole sync < {GOAL_SECONDS:.0f} s):"
    )
    header = f"{'':38}" + "".join(f"{name:>{WIDTH}}" for name in (*COLUMNS, "total", "of goal"))
    print(header)
    for name, runs in sorted(figures.items()):
        medians = {phase: statistics.median(run[phase] for run in runs) for phase in runs[0]}
        cells = "".join(f"{medians[phase]:{WIDTH}.3f}" for phase in (*PHASES, "total"))
        print(f"{name:38}{cells}{medians['total'] / GOAL_SECONDS:{WIDTH}.1%}")
        worst = max(run["total"] for run in runs)
        detail = "; ".join(sorted(outcomes.get(name, {"no changes"})))
        print(f"{'':38}worst {worst:.3f} s; {detail}")
    if profiled:
        print(profiled)


if __name__ == "__main__":
    main()
