"""Policy rules and the preview of a draft: how long ``services.policy_preview`` takes on a
realistic history, beside evaluating every subject again in full, and evaluations per second
with 50 rules beside none.

The scratch database holds 1,000 repositories Gatehouse manages (100 for each of 10 teams),
988 of them with tag ``1.0`` signed (by two signers for the 12 that rules call critical:
1,000 signed tags); 40 signers in those teams, each with a signing key; a policy of 50
rules (team image patterns, namespace rules, exact images needing two signers, exemptions,
an image-and-namespace rule); and 10,000 admission decisions of the last days: pods of 1 to
3 images over 20 namespaces, drawn from 600 distinct images (most signed, some tags nobody
signed, public and vendor images without trust data, mirrored images exempt). Each image
is recorded as admission records it (``services.recorded_image`` of its evaluation under
the policy in force, nothing in a namespace where every rule is off), from trust data built
here, so no Notary is needed.

In one run, times the median of several:

* ``policy_preview`` for (i) a draft changing one narrow rule, (ii) a draft making the
  default rule permissive, (iii) a draft switching the policy off, which judges every
  subject; with the part spent reading the subjects (``selectors.preview_subjects``) and
  the part judging them (``preview``);
* beside it, the brute force: every subject evaluated in full (``evaluate``) under both
  policies with its trust data already in memory (none for one never read, as the preview
  judges it), and its counts checked against the preview's;
* ``evaluate`` per second on a signed image, with 50 rules and with none;
* ``services.image_evaluate`` in-process with 50 rules, for an image under an ``off`` rule
  (no trust data read) and a signed image whose verified trust data is in the trust cache,
  and for the latter with no rules.

Needs PostgreSQL (``BENCH_POSTGRES_URL``). Run:
``.venv/bin/python benchmarks/policy_preview.py [--profile]``; ``--profile`` adds where the
time of preview (iii) goes.
"""

import cProfile
import datetime as dt
import hashlib
import io
import os
import pstats
import random
import statistics
import sys
import time
from types import MappingProxyType

from common import configure_environment, rate, scratch_database

TEAMS = [f"team-{n:02d}" for n in range(10)]
SIGNERS = 40
REPOSITORIES_PER_TEAM = 100
NAMESPACES = [f"ns-{n:02d}" for n in range(18)] + ["kube-system", "monitoring"]
DECISIONS = 10_000
IMAGES = 600
RUNS = 7
GOAL_SECONDS = 2.0
GOAL_RATE = 3000.0
REGISTRY = "registry.example.com"


def gun_of(team: int, number: int) -> str:
    return f"{REGISTRY}/team-{team:02d}/app-{number:03d}"


def digest_of(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


# The images critical rules name (two signers each), and repositories nothing was pushed to.
CRITICAL = {gun_of(number % 10, number) for number in range(12)}
UNSIGNED = {gun_of(team, 99) for team in range(10)} | {gun_of(0, 98), gun_of(1, 98)}


def rules_document() -> dict:
    """50 rules, of every kind a large installation writes."""
    rules: list[dict] = []
    for team in range(10):  # each team's images need one of the team
        rules.append(
            {
                "name": f"team-{team:02d}-images",
                "images": [f"{REGISTRY}/team-{team:02d}/*"],
                "require": {"teams": [{"team": f"team-{team:02d}"}]},
            }
        )
    for number in range(18):  # each namespace's own rule: strict, relaxed or other teams
        mode = ("enforced", "permissive", "enforced")[number % 3]
        teams = [TEAMS[number % 10], TEAMS[(number + 3) % 10]]
        rules.append(
            {
                "name": f"ns-{number:02d}",
                "namespaces": [f"ns-{number:02d}"],
                "images": [f"{REGISTRY}/team-{number % 10:02d}/**"],
                "mode": mode,
                "require": {"match": "any", "teams": [{"team": team} for team in teams]},
            }
        )
    for number in range(12):  # critical images need two signers
        team = number % 10
        rules.append(
            {
                "name": f"critical-{number:02d}",
                "images": [gun_of(team, number)],
                "require": {"teams": [{"team": TEAMS[team], "count": 2}]},
            }
        )
    rules += [
        {"name": "system", "namespaces": ["kube-*"], "mode": "off"},
        {"name": "public", "images": ["docker.io/library/*"], "mode": "permissive"},
        {"name": "mirrors", "images": ["mirror.example.com/**"], "mode": "off"},
        {"name": "sandbox", "images": [f"{REGISTRY}/team-0?/sandbox-*"], "mode": "off"},
        {
            "name": "monitoring",
            "namespaces": ["monitoring"],
            "images": [f"{REGISTRY}/team-09/*", "docker.io/library/*"],
            "mode": "enforced",
            "require": {"teams": [{"team": "team-09"}]},
        },
    ]
    for number in range(5):
        rules.append(
            {
                "name": f"legacy-{number}",
                "images": [gun_of(number, 90 + number)],
                "mode": "off",
            }
        )
    assert len(rules) == 50, len(rules)
    return {
        "enabled": True,
        "default": {"mode": "enforced", "require": {"teams": [{"team": "team-00"}]}},
        "rules": rules,
    }


def seed():
    """The people, repositories, signed tags, policy and decisions; returns what the
    measurements need: trust data by GUN, the policy document, the admin."""
    from accounts.services import team_create, team_member_add, user_create
    from bundles.selectors import signing_role_of
    from bundles.services import bundle_issue
    from policy.evaluation import RoleData, TrustData, evaluate, needs_trust_data
    from policy.evaluation import parse_image_reference as parse
    from policy.inputs import evaluation_context
    from policy.models import AdmissionDecision
    from policy.rules import OFF
    from policy.services import policy_apply, recorded_image
    from trust.models import SignedTag
    from trust.services.repositories import repositories_create_bulk

    rng = random.Random(20261203)  # noqa: S311
    admin = user_create(actor=None, username="admin", password="a-benchmark-pw", is_admin=True)
    teams = [team_create(actor=admin, name=name) for name in TEAMS]
    signers = []  # (user, role, key id, team numbers)
    for number in range(SIGNERS):
        user = user_create(actor=None, username=f"dev-{number:02d}", password="a-benchmark-pw")
        homes = [number % 10] + ([(number + 1) % 10] if number % 3 == 0 else [])
        for home in homes:
            team_member_add(actor=admin, team=teams[home], user=user)
        key_id = bundle_issue(user=user, signing=True).key.id
        role = signing_role_of(user)
        assert role is not None
        signers.append((user, role.role, key_id, homes))
    by_team = {team: [s for s in signers if team in s[3]] for team in range(10)}

    trust: dict[str, TrustData] = {}
    tags = []
    for team in range(10):
        guns = [gun_of(team, n) for n in range(REPOSITORIES_PER_TEAM)]
        repositories_create_bulk(actor=admin, guns=guns, signer_team_names=[TEAMS[team]])
        for gun in guns:
            if gun in UNSIGNED:
                continue
            digest = digest_of(gun, "1.0")
            signed_by = rng.sample(by_team[team], k=2 if gun in CRITICAL else 1)
            roles = {"targets/releases": RoleData({"1.0": digest}, frozenset(), f"r-{gun}")}
            for user, role, key_id, _ in signed_by:
                fingerprint = digest_of(gun, role)
                roles[role] = RoleData({"1.0": digest}, frozenset({key_id}), fingerprint)
                tags.append(
                    SignedTag(
                        gun=gun,
                        role=role,
                        tag="1.0",
                        digest=f"sha256:{digest}",
                        signer=user,
                        fingerprint=fingerprint,
                    )
                )
            trust[gun] = TrustData(True, roles)
    assert len(tags) == 1000, len(tags)
    SignedTag.objects.bulk_create(tags)

    document = rules_document()
    policy_apply(actor=admin, document=document)
    context = evaluation_context()
    policy, identities = context.policy, context.identities

    images = []
    for number in range(IMAGES):
        kind = rng.random()
        if kind < 0.8:
            gun = gun_of(rng.randrange(10), rng.randrange(REPOSITORIES_PER_TEAM))
            images.append(f"{gun}:{'1.0' if rng.random() < 0.9 else '2.0'}")
        elif kind < 0.88:
            images.append(f"docker.io/library/tool-{number}:1.{number % 7}")
        elif kind < 0.95:  # no rule names them: the default rule's
            images.append(f"ghcr.io/vendor-{number % 9}/agent-{number}:2.{number % 5}")
        else:
            images.append(f"mirror.example.com/base/image-{number}:3")
    home_of = {image: rng.sample(NAMESPACES, k=rng.choice((1, 1, 2))) for image in images}
    in_namespace = {ns: [i for i in images if ns in home_of[i]] or images[:3] for ns in NAMESPACES}
    records: dict[tuple[str, str], dict] = {}

    def record(image: str, namespace: str) -> dict:
        found = records.get((image, namespace))
        if found is None:
            reference = parse(image)
            needed = needs_trust_data(policy, reference.gun, namespace)
            data = trust.get(reference.gun) if needed else None
            evaluation = evaluate(reference, policy, data, identities, namespace=namespace)
            found = records[(image, namespace)] = recorded_image(image, evaluation)
        return found

    decisions = []
    for number in range(DECISIONS):
        namespace = rng.choice(NAMESPACES)
        pod = rng.sample(in_namespace[namespace], k=min(rng.choice((1, 2, 3)), 3))
        decisions.append(
            AdmissionDecision(
                uid=f"uid-{number}",
                webhook="validate",
                namespace=namespace,
                kind="Pod",
                name=f"pod-{number}",
                operation="CREATE",
                allowed=True,
                # A namespace where every rule is off is not checked, so nothing recorded.
                images=[]
                if policy.strictest_mode(namespace) == OFF
                else [record(image, namespace) for image in dict.fromkeys(pod)],
            )
        )
    AdmissionDecision.objects.bulk_create(decisions, batch_size=2000)
    return trust, document, admin


def drafts(document: dict) -> dict[str, dict]:
    narrow = {**document, "rules": [dict(rule) for rule in document["rules"]]}
    narrow["rules"][3]["require"] = {"teams": [{"team": "team-03", "count": 2}]}
    default = {**document, "default": {**document["default"], "mode": "permissive"}}
    return {
        "(i) one narrow rule changed": narrow,
        "(ii) the default rule made permissive": default,
        "(iii) the policy switched off: every subject judged": {**document, "enabled": False},
    }


def median_seconds(step, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def brute_force(subjects, current, draft, identities, trust, now) -> tuple[int, int]:
    """Every subject evaluated in full under both policies, its trust data in memory (none
    for one never read, as the preview judges it): (newly denied, newly allowed)."""
    from policy.evaluation import DENIED, evaluate

    denied = allowed = 0
    for subject in subjects:
        data = trust.get(subject.reference.gun) if subject.examined else None
        before = evaluate(
            subject.reference, current, data, identities, namespace=subject.namespace, now=now
        )
        after = evaluate(
            subject.reference, draft, data, identities, namespace=subject.namespace, now=now
        )
        if before.decision != DENIED and after.decision == DENIED:
            denied += subject.occurrences
        elif before.decision == DENIED and after.decision != DENIED:
            allowed += subject.occurrences
    return denied, allowed


def warm_trust_cache(gun: str, data) -> None:
    """Put ``gun``'s verified trust data in the trust cache, as a read within the last
    ``GATEHOUSE_TRUST_REVALIDATE_SECONDS`` leaves it."""
    import base64

    from trust import trust_data
    from trust.notary.metadata import TargetFile
    from trust.notary.verified import VerifiedRepository, VerifiedRole

    roles = {
        name: VerifiedRole(
            name=name,
            version=1,
            expires=dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
            paths=("",),
            signers=frozenset(),
            targets=MappingProxyType(
                {
                    tag: TargetFile(1234, {"sha256": base64.b64encode(bytes.fromhex(d)).decode()})
                    for tag, d in role.targets.items()
                }
            ),
            signer_key_ids=role.signers,
            fingerprint=role.fingerprint,
        )
        for name, role in data.roles.items()
    }
    repository = VerifiedRepository(
        gun=gun,
        root_pinned=True,
        root_key_ids=frozenset(),
        root_canonical_key_ids=frozenset(),
        roles=MappingProxyType(roles),
        versions=MappingProxyType({"timestamp": 1}),
    )
    now = time.monotonic()
    trust_data._cache[gun] = trust_data._Cached(repository, None, now, now)


def main() -> None:
    show_profile = "--profile" in sys.argv
    os.environ["CELERY_BROKER_URL"] = "memory://"  # the initialise jobs are never run
    os.environ["GATEHOUSE_TRUST_REVALIDATE_SECONDS"] = "3600"  # the cache stays warm
    with scratch_database("gatehouse_bench_policy_preview") as database_url:
        configure_environment(database_url)
        from django.utils import timezone

        from policy.evaluation import evaluate, parse_image_reference
        from policy.inputs import evaluation_context
        from policy.preview import preview
        from policy.rules import policy_from_document
        from policy.selectors import preview_subjects
        from policy.services import image_evaluate, policy_apply, policy_checked, policy_preview

        started = time.perf_counter()
        trust, document, admin = seed()
        seeded = time.perf_counter() - started
        context = evaluation_context()
        current, identities = context.policy, context.identities
        now = timezone.now()
        since = now - dt.timedelta(days=7)
        subjects = preview_subjects(since=since)
        occurrences = sum(subject.occurrences for subject in subjects)
        read = median_seconds(lambda: preview_subjects(since=since))

        rows = []
        profiled = ""
        for name, draft_document in drafts(document).items():
            draft = policy_checked(draft_document)
            result = policy_preview(draft=draft)
            whole = median_seconds(lambda draft=draft: policy_preview(draft=draft))
            judge = median_seconds(
                lambda draft=draft: preview(current, draft, subjects, identities, now=now)
            )
            brute = median_seconds(
                lambda draft=draft: brute_force(subjects, current, draft, identities, trust, now),
                runs=3,
            )
            counts = brute_force(subjects, current, draft, identities, trust, now)
            assert counts == (result.newly_denied, result.newly_allowed), (name, counts, result)
            rows.append((name, result, whole, judge, brute))
            if show_profile and name.startswith("(iii)"):
                profiler = cProfile.Profile()
                profiler.enable()
                policy_preview(draft=draft)
                profiler.disable()
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("cumulative").print_stats(r"/(policy|trust)/\w+\.py", 15)
                stats.sort_stats("tottime").print_stats(12)
                profiled = out.getvalue()

        # The same decision with no rules: the default rule asks what team-05-images asks.
        team_05 = {"mode": "enforced", "require": {"teams": [{"team": "team-05"}]}}
        none = policy_from_document(
            {**document, "default": team_05, "rules": []},
            trust_on_first_use=current.trust_on_first_use,
        )
        image = f"{gun_of(5, 7)}:1.0"
        reference = parse_image_reference(image)
        data = trust[reference.gun]
        exempt = f"{gun_of(2, 92)}:1.0"  # rule legacy-2: off
        warm_trust_cache(reference.gun, data)
        for policy in (none, current):
            result = evaluate(reference, policy, data, identities, namespace="ns-03")
            assert result.decision == "allowed", result
        assert image_evaluate(image=exempt, namespace="ns-03").rule.rule.name == "legacy-2"
        assert image_evaluate(image=image, namespace="ns-03").decision == "allowed"
        # The database's round trip swings with the neighbours of this machine, so the rows
        # are measured in turns, 1 s at a time, and each row's median is kept.
        turns: dict[str, list[float]] = {}
        documents = {"50 rules": document, "0 rules": {**document, "default": team_05, "rules": []}}
        for _ in range(RUNS):
            for label, policy in (("0 rules", none), ("50 rules", current)):
                turns.setdefault(f"evaluate, {label}", []).append(
                    rate(
                        lambda policy=policy: evaluate(
                            reference, policy, data, identities, namespace="ns-03"
                        ),
                        1.0,
                    )
                )
            for label, saved in documents.items():
                policy_apply(actor=admin, document=saved)
                image_evaluate(image=image, namespace="ns-03")  # the inputs read again
                turns.setdefault(f"image_evaluate, {label}, signed image, warm", []).append(
                    rate(lambda: image_evaluate(image=image, namespace="ns-03"), 1.0)
                )
                if label == "50 rules":
                    turns.setdefault(
                        "image_evaluate, 50 rules, image under an off rule", []
                    ).append(rate(lambda: image_evaluate(image=exempt, namespace="ns-03"), 1.0))
            turns.setdefault("evaluation_context alone", []).append(rate(evaluation_context, 1.0))
        rates = {label: statistics.median(values) for label, values in turns.items()}

    print(
        f"seeded in {seeded:.0f} s: 1,000 managed repositories, 1,000 signed tags, "
        f"{DECISIONS:,} admission decisions, 50 rules; {len(subjects):,} distinct subjects, "
        f"{occurrences:,} images seen"
    )
    print(f"reading the subjects (selectors.preview_subjects): {read * 1000:7.0f} ms")
    for name, result, whole, judge, brute in rows:
        print(
            f"{name}: judged {result.judged:,} of {result.subjects:,} subjects, newly denied "
            f"{result.newly_denied:,}, newly allowed {result.newly_allowed:,}\n"
            f"  services.policy_preview {whole * 1000:7.0f} ms ({whole / GOAL_SECONDS:.0%} of the "
            f"{GOAL_SECONDS:.0f} s goal); of it judging (preview) {judge * 1000:6.1f} ms\n"
            f"  brute force, every subject evaluated in full twice, trust data in memory: "
            f"{brute * 1000:7.0f} ms ({brute / judge:.1f}x the judging); counts equal"
        )
    for label in ("0 rules", "50 rules"):
        value = rates[f"evaluate, {label}"]
        print(
            f"evaluate (the rule alone), a signed image in a namespace, {label}: "
            f"{value:9.0f} evaluations/s ({value / GOAL_RATE:.1f}x the goal of {GOAL_RATE:.0f}/s)"
        )
    extra = 1e6 / rates["evaluate, 50 rules"] - 1e6 / rates["evaluate, 0 rules"]
    print(f"  50 rules cost {extra:.1f} µs more each")
    print(
        "services.image_evaluate in-process, 1 thread (inputs.evaluation_context and its one "
        "query, the rule, the metrics):"
    )
    for label in (
        "image_evaluate, 50 rules, image under an off rule",
        "image_evaluate, 50 rules, signed image, warm",
        "image_evaluate, 0 rules, signed image, warm",
        "evaluation_context alone",
    ):
        value = rates[label]
        print(
            f"  {label.removeprefix('image_evaluate, '):42s} {value:7.0f}/s "
            f"{1e6 / value:6.0f} µs ({value / GOAL_RATE:.0%} of {GOAL_RATE:.0f}/s)"
        )
    if profiled:
        print(profiled)


if __name__ == "__main__":
    main()
