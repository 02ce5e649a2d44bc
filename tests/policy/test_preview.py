"""A policy preview (``policy.preview``) counts what a brute-force re-evaluation counts: every
image admission recorded, judged again in full by ``evaluate`` on the same trust data under
the policy in force and under the draft. An image whose trust data was never read (its
rule was off or the policy disabled when it was reviewed, or Notary was out of reach) is
judged as unsigned and marked ``unread``, as the preview says it is."""

import copy
import datetime as dt
import json
from collections import Counter
from types import SimpleNamespace
from unittest.mock import patch

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEntry
from bundles.services import bundle_issue
from policy import selectors, services
from policy.evaluation import (
    DENIED,
    Identities,
    InvalidReference,
    RoleData,
    Signer,
    SignerKey,
    TrustData,
    evaluate,
    needs_trust_data,
    parse_image_reference,
)
from policy.inputs import evaluation_context, evaluation_inputs_changed
from policy.models import AdmissionDecision, PolicyVersion
from policy.preview import Preview, preview
from policy.rules import OFF, Policy, policy_document, policy_from_document
from tests.factories import make_team, make_user
from trust.models import RoleFileSighting, SignedTag
from trust.notary.errors import NotaryUnavailable, NotFound
from trust.services.repositories import repository_create
from trust.trust_data import forget

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
A, B, C = "a" * 64, "b" * 64, "c" * 64

# --- Pure: random trust data, people and policies ---------------------------------------

USERS = ("ann", "ben", "cat")
TEAMS = ("ci", "dev")
KEY_IDS = (*(f"key-{user}" for user in USERS), "key-stray")
FINGERPRINTS = ("f-0", "f-1", "f-2", "f-3")
WEB, API, DB, NGINX = (
    "registry.example.com/shop/web",
    "registry.example.com/shop/api",
    "registry.example.com/ops/db",
    "docker.io/library/nginx",
)
GUNS = (WEB, API, DB, NGINX)
PLACES = tuple((gun, f"targets/{user}") for gun in (WEB, API) for user in USERS)
NOT_A_REFERENCE = "registry.example.com/shop/Web:1.0"  # no rule ever decides it
IMAGES = (
    f"{WEB}:1.0",
    f"{WEB}:2.0",
    f"{WEB}:3.0",  # a tag nobody signed
    f"{WEB}@sha256:{A}",
    f"{API}:1.0",
    f"{API}:2.0@sha256:{B}",
    f"{DB}:1.0",
    f"{DB}:2.0",
    "nginx:1.0",
    f"{NGINX}:1.0",  # the same image, spelt in full
    NOT_A_REFERENCE,
)
NAMESPACES = ("prod", "dev", "kube-system", "")  # "": a review of no namespace
IMAGE_PATTERNS = (
    "registry.example.com/shop/*",
    "registry.example.com/shop/web",
    "registry.example.com/**",
    "nginx",
    "registry.example.com/ops/d?",
)
NAMESPACE_PATTERNS = ("prod", "dev", "kube-*", "d*")
PROPERTY = settings(
    max_examples=300,
    deadline=None,
    database=None,  # no example database in the work tree
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # conftest's autouse ones
)

mostly_true = st.sampled_from((True,) * 5 + (False,))
rarely_true = mostly_true.map(lambda value: not value)
modes = st.sampled_from(("enforced", "enforced", "permissive", "off", "off"))


@st.composite
def requirements(draw) -> dict:
    teams = draw(st.lists(st.sampled_from(TEAMS), unique=True, max_size=2))
    return {
        "match": draw(st.sampled_from(("all", "any"))),
        "teams": [{"team": team, "count": draw(st.sampled_from((1, 1, 2)))} for team in teams],
    }


@st.composite
def scopes(draw) -> dict:
    images = draw(st.lists(st.sampled_from(IMAGE_PATTERNS), unique=True, max_size=2))
    namespaces = draw(
        st.lists(
            st.sampled_from(NAMESPACE_PATTERNS),
            unique=True,
            min_size=0 if images else 1,
            max_size=2,
        )
    )
    return {"images": images, "namespaces": namespaces}


@st.composite
def rule_documents(draw, name: str) -> dict:
    return {"name": name, **draw(scopes()), "mode": draw(modes), "require": draw(requirements())}


@st.composite
def policy_documents(draw) -> dict:
    return {
        "enabled": draw(mostly_true),
        "default": {"mode": draw(modes), "require": draw(requirements())},
        "rules": [draw(rule_documents(f"rule-{n}")) for n in range(draw(st.integers(0, 4)))],
    }


EDITS = ("switch", "default", "mode", "require", "scope", "add", "remove", "move")


@st.composite
def edited(draw, document: dict) -> dict:
    """``document`` with one or two edits, as someone drafting a change makes them."""
    draft = copy.deepcopy(document)
    rules = draft["rules"]
    for number in range(draw(st.integers(1, 2))):
        edit = draw(st.sampled_from(EDITS))
        if edit == "switch":
            draft["enabled"] = not draft["enabled"]
        elif edit == "default":
            draft["default"] = {"mode": draw(modes), "require": draw(requirements())}
        elif edit == "add":
            rule = draw(rule_documents(f"added-{number}"))
            rules.insert(draw(st.integers(0, len(rules))), rule)
        elif rules:
            index = draw(st.integers(0, len(rules) - 1))
            if edit == "mode":
                rules[index]["mode"] = draw(modes)
            elif edit == "require":
                rules[index]["require"] = draw(requirements())
            elif edit == "scope":
                rules[index].update(draw(scopes()))
            elif edit == "remove":
                rules.pop(index)
            else:
                rules.insert(draw(st.integers(0, len(rules) - 1)), rules.pop(index))
    return draft


@st.composite
def people(draw) -> Identities:
    signers = {
        f"targets/{user}": Signer(
            user, f"targets/{user}", draw(mostly_true), draw(st.frozensets(st.sampled_from(TEAMS)))
        )
        for user in USERS
        if draw(mostly_true)
    }
    keys = {
        f"key-{user}": SignerKey(
            owner=draw(st.sampled_from((user,) * 5 + USERS)),
            signing=draw(mostly_true),
            revoked=draw(rarely_true),
            valid_from=draw(st.sampled_from((None, NOW - DAY, NOW - DAY, NOW + DAY))),
            valid_until=draw(st.sampled_from((NOW + DAY,) * 4 + (NOW,))),
        )
        for user in USERS
        if draw(mostly_true)
    }
    replays = draw(
        st.dictionaries(
            st.sampled_from(FINGERPRINTS),
            st.lists(st.sampled_from(PLACES), min_size=1, max_size=2, unique=True).map(tuple),
            max_size=2,
        )
    )
    return Identities(signers, keys, replays)


@st.composite
def later(draw, then: Identities) -> Identities:
    """The people between the review and the preview: teams changed, accounts deactivated
    or reactivated, roles and keys gone, keys revoked or expired. What recorded findings
    cannot show (a key or a role that appeared since) is left out."""
    signers = {}
    for role, person in then.signers.items():
        change = draw(st.sampled_from(("same", "same", "teams", "active", "gone")))
        if change == "teams":
            person = Signer(
                person.username, role, person.active, draw(st.frozensets(st.sampled_from(TEAMS)))
            )
        elif change == "active":
            person = Signer(person.username, role, not person.active, person.teams)
        if change != "gone":
            signers[role] = person
    keys = {}
    for key_id, key in then.keys.items():
        change = draw(st.sampled_from(("same", "same", "revoke", "expire", "gone")))
        if change == "revoke":
            key = SignerKey(key.owner, key.signing, True, key.valid_from, key.valid_until)
        elif change == "expire":
            key = SignerKey(key.owner, key.signing, key.revoked, key.valid_from, NOW)
        if change != "gone":
            keys[key_id] = key
    return Identities(signers, keys, then.replays)


@st.composite
def trust_data(draw) -> tuple[TrustData | None, str | None]:
    """A GUN's trust data and the error of a read that did not verify."""
    kind = draw(st.sampled_from(("data",) * 5 + ("none", "invalid")))
    if kind == "none":
        return None, None
    if kind == "invalid":
        return None, "trust data does not verify: bad signature on targets"
    listed = {tag: draw(st.sampled_from((A, A, B))) for tag in ("1.0", "2.0") if draw(mostly_true)}
    roles = {"targets/releases": RoleData(listed, frozenset({"key-stray"}), "f-releases")}
    for user in USERS:
        if draw(mostly_true):
            signed = {
                tag: draw(st.sampled_from((listed.get(tag, A),) * 3 + (B, C)))
                for tag in ("1.0", "2.0", "old")
                if draw(mostly_true)
            }
            keys = st.sampled_from((f"key-{user}",) * 4 + KEY_IDS)
            roles[f"targets/{user}"] = RoleData(
                signed,
                frozenset(draw(st.lists(keys, min_size=1, max_size=2))),
                draw(st.sampled_from(FINGERPRINTS)),
            )
    return TrustData(draw(mostly_true), roles), None


@st.composite
def scenarios(draw) -> dict:
    current = draw(policy_documents())
    tofu = draw(st.booleans())

    def policy(document: dict) -> Policy:
        return policy_from_document(document, trust_on_first_use=tofu)

    then = draw(people())
    return {
        # What was in force at each review: the policy now, or one since replaced.
        "then": policy(draw(st.one_of(st.just(current), policy_documents()))),
        "current": policy(current),
        "draft": policy(draw(st.one_of(edited(current), policy_documents()))),
        "people_then": then,
        "people_now": draw(later(then)),
        "trust": {gun: draw(trust_data()) for gun in GUNS},
        "reviews": draw(
            st.lists(
                st.tuples(
                    st.sampled_from(NAMESPACES),
                    st.lists(st.sampled_from(IMAGES), min_size=1, max_size=3, unique=True),
                    rarely_true,  # Notary out of reach
                ),
                min_size=1,
                max_size=10,
            )
        ),
    }


def admitted(
    namespace: str,
    images: list[str],
    policy: Policy,
    identities: Identities,
    trust: dict[str, tuple[TrustData | None, str | None]],
    notary_down: bool,
) -> list[dict]:
    """What ``services.admission_review`` records of a pod's images, as stored: nothing in a
    namespace where every rule is off; each image not needing trust data, evaluated without
    it; with Notary out of reach, no evaluation."""
    if policy.enabled and policy.strictest_mode(namespace or None) == OFF:
        return []
    records = []
    for image in images:
        try:
            reference = parse_image_reference(image)
        except InvalidReference:
            records.append(services.recorded_image(image, None))
            continue
        if not needs_trust_data(policy, reference.gun, namespace):
            evaluation = evaluate(reference, policy, None, identities, namespace=namespace, now=NOW)
        elif notary_down:
            evaluation = None
        else:
            data, error = trust[reference.gun]
            evaluation = evaluate(
                reference, policy, data, identities, namespace=namespace, now=NOW, trust_error=error
            )
        records.append(services.recorded_image(image, evaluation))
    return json.loads(json.dumps(records))  # as the JSON column gives them back


class _Decisions:
    """``AdmissionDecision.objects`` holding ``rows`` of (namespace, images)."""

    def __init__(self, rows: list[tuple[str, list[dict]]]) -> None:
        self.rows = rows

    def filter(self, **conditions: object) -> "_Decisions":
        return self

    def values_list(self, *fields: str) -> list[tuple[str, list[dict]]]:
        assert fields == ("namespace", "images")
        return self.rows


def previewed(
    rows: list[tuple[str, list[dict]]], current: Policy, draft: Policy, people: Identities
) -> Preview:
    """``preview`` of the subjects ``selectors.preview_subjects`` makes of ``rows``."""
    with (
        patch.object(selectors, "AdmissionDecision", SimpleNamespace(objects=_Decisions(rows))),
        patch.object(selectors, "signed_tags_managed", list),
    ):
        subjects = selectors.preview_subjects(since=NOW - DAY)
    return preview(current, draft, subjects, people, now=NOW)


def brute_force(rows, current: Policy, draft: Policy, people, trust) -> Counter:
    """Each recorded image evaluated in full under both policies: the changes, counted."""
    changes: Counter = Counter()
    for namespace, records in rows:
        for record in records:
            try:
                reference = parse_image_reference(record["image"])
            except InvalidReference:
                continue
            data, error = trust[reference.gun] if record["examined"] else (None, None)
            before, after = (
                evaluate(
                    reference,
                    policy,
                    data,
                    people,
                    namespace=namespace or None,
                    now=NOW,
                    trust_error=error,
                )
                for policy in (current, draft)
            )
            if (before.decision == DENIED) != (after.decision == DENIED):
                assert before.rule is not None
                assert after.rule is not None
                changes[
                    (
                        record["image"],
                        namespace or None,
                        not record["examined"],
                        before.decision,
                        after.decision,
                        before.rule.rule.name,
                        after.rule.rule.name,
                    )
                ] += 1
    return changes


def listed(result: Preview) -> Counter:
    changes: Counter = Counter()
    for change in (*result.denied_changes, *result.allowed_changes):
        key = (
            change.image,
            change.namespace,
            change.unread,
            change.before,
            change.after,
            change.rule_before,
            change.rule_after,
        )
        changes[key] += change.occurrences
    return changes


@PROPERTY
@given(scenarios())
def test_property_the_preview_counts_what_evaluating_every_recorded_image_again_counts(scenario):
    rows = [
        (
            namespace,
            admitted(
                namespace,
                images,
                scenario["then"],
                scenario["people_then"],
                scenario["trust"],
                notary_down,
            ),
        )
        for namespace, images, notary_down in scenario["reviews"]
    ]
    current, draft, people = scenario["current"], scenario["draft"], scenario["people_now"]

    result = previewed(rows, current, draft, people)
    expected = brute_force(rows, current, draft, people, scenario["trust"])

    assert result.newly_denied == sum(n for key, n in expected.items() if key[4] == DENIED)
    assert result.newly_allowed == sum(n for key, n in expected.items() if key[3] == DENIED)
    assert listed(result) == expected
    readable = [r for _, records in rows for r in records if r["image"] != NOT_A_REFERENCE]
    assert result.occurrences == len(readable)


def test_an_image_never_read_is_judged_unsigned_and_marked_unread():
    """Exempt when it was reviewed, so its signature was never looked at: a draft that ends
    the exemption shows it newly denied, though its trust data would allow it."""
    current = policy_from_document(
        {
            "enabled": True,
            "default": {"mode": "enforced", "require": {"teams": [{"team": "ci"}]}},
            "rules": [{"name": "legacy", "images": [WEB], "mode": "off"}],
        }
    )
    draft = policy_from_document({**policy_document(current), "rules": []})
    people = Identities(
        {"targets/ann": Signer("ann", "targets/ann", True, frozenset({"ci"}))},
        {"key-ann": SignerKey("ann", True, False, None, NOW + DAY)},
    )
    signed = TrustData(
        True,
        {
            "targets/releases": RoleData({"1.0": A}, frozenset({"key-stray"}), "f-r"),
            "targets/ann": RoleData({"1.0": A}, frozenset({"key-ann"}), "f-ann"),
        },
    )
    trust = dict.fromkeys(GUNS, (signed, None))
    rows = [("prod", admitted("prod", [f"{WEB}:1.0", f"{API}:1.0"], current, people, trust, False))]
    assert [record["examined"] for record in rows[0][1]] == [False, True]

    result = previewed(rows, current, draft, people)

    (change,) = result.denied_changes
    assert (change.image, change.before, change.after, change.unread) == (
        f"{WEB}:1.0",
        "allowed",
        "denied",
        True,
    )
    assert (change.rule_before, change.rule_after) == ("legacy", "default")
    assert result.newly_denied == 1
    assert evaluate(parse_image_reference(f"{WEB}:1.0"), draft, signed, people, now=NOW).allowed


# --- Through the database: admission's records, the preview service ----------------------

STAGING = "staging"
IN_FORCE = {
    "enabled": True,
    "default": {"mode": "enforced", "require": {"teams": [{"team": "ci"}]}},
    "rules": [
        {"name": "legacy", "images": [DB], "mode": "off"},
        {
            "name": "dev-relaxed",
            "namespaces": ["dev"],
            "mode": "permissive",
            "require": {"teams": [{"team": "dev"}]},
        },
        {
            "name": "api-two",
            "images": [API],
            "require": {"teams": [{"team": "ci", "count": 2}]},
        },
    ],
}
# (namespace, images, times reviewed, Notary out of reach)
REVIEWS = (
    ("prod", [f"{WEB}:1.0", f"{API}:1.0"], 3, False),
    ("prod", [f"{WEB}:2.0", "nginx:1.25", f"{DB}:1.0"], 2, False),
    ("prod", [f"{WEB}:3.0", "registry.example.com/shop/Web:1.0"], 1, False),
    ("prod", [f"{WEB}:1.0", f"{API}:1.0"], 1, True),
    (STAGING, [f"{WEB}:1.0@sha256:{A}", "nginx:1.25"], 2, False),
    (STAGING, [f"{API}@sha256:{C}"], 1, False),
    ("dev", [f"{WEB}:2.0", f"{DB}:1.0"], 4, False),
    ("dev", [f"{API}:1.0", "nginx:1.25"], 1, False),
)


def with_rules(*rules: dict, **changes) -> dict:
    return {**copy.deepcopy(IN_FORCE), "rules": list(rules), **changes}


LEGACY, DEV_RELAXED, API_TWO = IN_FORCE["rules"]
DRAFTS = {
    "the-exemption-ends": with_rules(DEV_RELAXED, API_TWO),
    "dev-signs-by-default": with_rules(
        LEGACY,
        DEV_RELAXED,
        API_TWO,
        default={"mode": "enforced", "require": {"teams": [{"team": "dev"}]}},
    ),
    "api-by-either-team": with_rules(
        LEGACY,
        DEV_RELAXED,
        {
            **API_TWO,
            "require": {"match": "any", "teams": [{"team": "ci", "count": 2}, {"team": "dev"}]},
        },
    ),
    "dev-enforced": with_rules(LEGACY, {**DEV_RELAXED, "mode": "enforced"}, API_TWO),
    "switched-off": {**copy.deepcopy(IN_FORCE), "enabled": False},
    "everything-exempt-but-prod": with_rules(
        {"name": "prod-only", "namespaces": ["prod"], "mode": "enforced", "require": {"teams": []}},
        {"name": "elsewhere", "images": ["registry.example.com/**", "nginx"], "mode": "off"},
    ),
}


class FakeNotary:
    """Verified trust data by GUN, as ``verified_repository`` would give it; ``down``: out
    of reach; ``blind``: as if no repository had trust data."""

    def __init__(self, trust: dict[str, TrustData]) -> None:
        self.trust, self.down, self.blind = trust, False, False

    def verified_repository(self, gun: str) -> str:
        if self.down:
            raise NotaryUnavailable("connection refused", gun=gun)
        if self.blind or gun not in self.trust:
            raise NotFound("no trust data", gun=gun)
        return gun

    def trust_data_from_verified(self, gun: str) -> TrustData:
        return self.trust[gun]


@pytest.fixture
def recorded(db, admin, monkeypatch):
    """ann and ben (ci) and cat (dev), each with a signing key; WEB and API managed by
    Gatehouse, DB not; the policy ``IN_FORCE``; every review of ``REVIEWS`` answered and
    recorded. ann and ben signed WEB 1.0, ben 2.0, cat API 1.0; nginx is listed in
    ``targets/releases`` only; DB has no trust data. Returns the fake Notary and the signed
    tags a preview judges besides admission's images."""
    forget()
    ann, ben, cat = make_user("ann"), make_user("ben"), make_user("cat")
    make_team("ci", members=(ann, ben), actor=admin)
    make_team("dev", members=(cat,), actor=admin)
    key = {user.username: bundle_issue(user=user, signing=True).key.id for user in (ann, ben, cat)}
    for gun in (WEB, API):
        repository_create(actor=admin, gun=gun, signer_team_names=["ci"])
    services.policy_apply(actor=admin, document=IN_FORCE)

    def own(name: str, targets: dict[str, str]) -> RoleData:
        return RoleData(targets, frozenset({key[name]}), f"f-{name}-{len(targets)}")

    notary = FakeNotary(
        {
            WEB: TrustData(
                True,
                {
                    "targets/releases": RoleData(
                        {"1.0": A, "2.0": B}, frozenset({key["ben"]}), "r"
                    ),
                    "targets/ann": own("ann", {"1.0": A}),
                    "targets/ben": own("ben", {"1.0": A, "2.0": B}),
                },
            ),
            API: TrustData(
                True,
                {
                    "targets/releases": RoleData({"1.0": C}, frozenset({key["cat"]}), "r"),
                    "targets/cat": own("cat", {"1.0": C}),
                },
            ),
            NGINX: TrustData(
                True, {"targets/releases": RoleData({"1.25": A}, frozenset({"k"}), "r")}
            ),
        }
    )
    monkeypatch.setattr(services, "verified_repository", notary.verified_repository)
    monkeypatch.setattr(services, "trust_data_from_verified", notary.trust_data_from_verified)

    def seen(gun: str, user, tag: str, digest: str, fingerprint: str = "") -> None:
        SignedTag.objects.create(
            gun=gun,
            role=f"targets/{user.username}",
            tag=tag,
            digest=f"sha256:{digest}",
            signer=user,
            fingerprint=fingerprint or f"f-{user.username}",
        )

    seen(WEB, ann, "1.0", A)
    seen(WEB, ben, "1.0", A)
    seen(WEB, ben, "2.0", B)
    seen(API, cat, "1.0", C)
    seen(DB, cat, "1.0", B)  # not a repository Gatehouse manages
    seen(API, ann, "0.9", B, fingerprint="copied")  # its file is a replay
    for place in (API, WEB):
        RoleFileSighting.objects.create(
            fingerprint="copied", gun=place, role="targets/ann", replayed=True
        )
    evaluation_inputs_changed()  # the sightings, written here without a service

    for number, (namespace, images, times, down) in enumerate(REVIEWS):
        notary.down = down
        for repeat in range(times):
            services.admission_review(
                body=pod_review(namespace, images, f"{number}-{repeat}"), mutate=False
            )
    notary.down = False
    yield notary, [(f"{WEB}:1.0", A), (f"{WEB}:2.0", B), (f"{API}:1.0", C)]
    forget()


def pod_review(namespace: str, images: list[str], uid: str) -> str:
    return json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "name": f"pod-{uid}",
                "namespace": namespace,
                "operation": "CREATE",
                "userInfo": {"username": "kubernetes-admin"},
                "object": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": f"pod-{uid}", "namespace": namespace},
                    "spec": {
                        "containers": [
                            {"name": f"c{n}", "image": image} for n, image in enumerate(images)
                        ]
                    },
                },
                "oldObject": None,
                "dryRun": False,
            },
        }
    )


def decisions_again(
    notary: FakeNotary, signed_tags: list[tuple[str, str]], current: Policy, draft: Policy
) -> Counter:
    """Every recorded image and signed tag evaluated in full by ``image_evaluate_under``
    under both policies, the changes counted; an image whose trust data was never read is
    evaluated as if it had none."""
    identities = evaluation_context().identities
    seen = [
        (record["image"], record["image"], namespace or None, not record["examined"])
        for namespace, images in AdmissionDecision.objects.values_list("namespace", "images")
        for record in images
    ]
    seen += [(tag, f"{tag}@sha256:{digest}", None, False) for tag, digest in signed_tags]
    changes: Counter = Counter()
    for shown, image, namespace, unread in seen:
        notary.blind = unread
        try:
            before, after = (
                services.image_evaluate_under(
                    image=image, policy=policy, identities=identities, namespace=namespace
                )
                for policy in (current, draft)
            )
        except ValidationError:
            continue  # not a reference: no rule ever decided it
        finally:
            notary.blind = False
        if (before.decision == DENIED) != (after.decision == DENIED):
            changes[(shown, namespace, unread, before.decision, after.decision)] += 1
    return changes


def changes_of(result: Preview) -> Counter:
    return Counter(
        {
            (image, namespace, unread, before, after): occurrences
            for (image, namespace, unread, before, after, _, _), occurrences in listed(
                result
            ).items()
        }
    )


@pytest.mark.parametrize("name", sorted(DRAFTS))
def test_the_preview_service_counts_what_evaluating_every_recorded_image_again_counts(
    recorded, name
):
    notary, signed_tags = recorded
    current, draft = evaluation_context().policy, services.policy_checked(DRAFTS[name])

    result = services.policy_preview(draft=draft)

    expected = decisions_again(notary, signed_tags, current, draft)
    assert expected, "each draft changes some decision"
    assert changes_of(result) == expected
    assert result.newly_denied == sum(n for key, n in expected.items() if key[4] == DENIED)
    assert result.newly_allowed == sum(n for key, n in expected.items() if key[3] == DENIED)
    images = sum(
        len(images) for images in AdmissionDecision.objects.values_list("images", flat=True)
    )
    assert result.occurrences == images - 1 + len(signed_tags)  # less the one not a reference


def test_a_preview_saves_nothing(recorded):
    before = (
        selectors.policy_get().version,
        PolicyVersion.objects.count(),
        AuditEntry.objects.count(),
        AdmissionDecision.objects.count(),
    )

    with CaptureQueriesContext(connection) as queries:
        result = services.policy_preview(draft=services.policy_checked(DRAFTS["switched-off"]))

    assert result.newly_allowed > 0
    assert [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")] == []
    after = (
        selectors.policy_get().version,
        PolicyVersion.objects.count(),
        AuditEntry.objects.count(),
        AdmissionDecision.objects.count(),
    )
    assert after == before
    assert policy_document(selectors.policy_current()) == policy_document(
        services.policy_checked(IN_FORCE)
    )
