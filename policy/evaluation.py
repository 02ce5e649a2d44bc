"""Content-trust policy evaluation: would an image pass the signing policy, and why.

Pure functions over frozen dataclasses, with no I/O and no Django, so that admission and
the explain API share one rule and can run it thousands of times a second. The rule is
Docker UCP's content-trust policy, made exact (docs/threat-model.md):

* a tag's digest is the one ``targets/releases`` names for it, else ``targets``;
* each signing team needs a current, active member who signed that digest in their own
  role (``targets/<their name>``), with one of their current signing keys (not revoked,
  certificate valid now), in a file whose signed bytes Gatehouse has not seen under
  another repository or role. Nothing else counts: not ``targets/releases``, not
  ``targets``, not a nested role, not another user's role (docs/threat-model.md);
* a repository whose root nothing pins counts only when trust on first use is allowed;
* the rule that applies (``policy.rules``: the most specific scope wins) says how many
  distinct members of which teams must sign, and its mode decides: ``off`` never checks,
  ``permissive`` reports but never blocks, ``enforced`` denies; a disabled policy never
  blocks anything.

The rule is applied in two steps, so that a preview can judge recorded findings against
another policy without reading trust data again: ``examine`` finds what the trust data
says, whatever the rules (``Findings``), and ``judge`` applies a rule's requirement.
"""

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policy.rules import ALL, ANY, ENFORCED, OFF, Applied, Policy, Requirement
from trust.notary import references
from trust.notary.metadata import RELEASES, TARGETS
from trust.notary.references import InvalidReference as InvalidReference
from trust.notary.verified import VerifiedRepository

DEFAULT_REGISTRY = references.DEFAULT_DOMAIN
DEFAULT_TAG = references.DEFAULT_TAG
NAME_MAX = references.NAME_MAX  # Docker's limit on the whole name, registry included

ALLOWED = "allowed"
DENIED = "denied"
NOT_ENFORCED = "not_enforced"
DISABLED_REASON = "content trust is disabled"

POLICY_FAILED = "image did not meet required signing policy"


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A normalised reference: ``image`` in full, the Notary ``gun``, tag and/or digest.

    When both are given the digest is what is evaluated; the tag is kept for display.
    """

    image: str
    gun: str
    tag: str | None
    digest: str | None

    @property
    def subject(self) -> str:
        """What the trust data is asked about, as Docker's errors name it."""
        return f"{self.gun}@{self.digest}" if self.digest else f"{self.gun}:{self.tag}"


def parse_image_reference(text: str) -> ImageReference:
    """Parse ``text`` with Docker's normalisation (``nginx`` → ``docker.io/library/nginx:latest``).

    The grammar is the one every GUN in Gatehouse follows (``trust.notary.references``);
    whitespace around the image is dropped, as everywhere an image is read. Invalid input
    raises ``InvalidReference`` saying what is wrong, so the explain API can show it as is.
    """
    reference = references.parse_reference(text)
    gun, tag, digest = reference.gun, reference.tag, reference.digest
    if digest is None:
        tag = tag or DEFAULT_TAG
        image = f"{gun}:{tag}"
    else:
        image = f"{gun}:{tag}@{digest}" if tag else f"{gun}@{digest}"
    return ImageReference(image=image, gun=gun, tag=tag, digest=digest)


# --- Inputs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignerKey:
    """A key on a user's account, by the ID ``notary key list`` shows."""

    owner: str  # username
    signing: bool
    revoked: bool
    valid_from: dt.datetime | None
    valid_until: dt.datetime

    def unusable(self, now: dt.datetime) -> tuple[str, str] | None:
        """Why a signature by this key does not count now: (code, words), or None."""
        if self.revoked:
            return KEY_REVOKED, "which is revoked"
        if not self.signing:
            return KEY_NOT_SIGNING, "which is not marked as a signing key"
        if self.valid_from is not None and now < self.valid_from:
            return (
                KEY_NOT_YET_VALID,
                f"whose certificate is valid only from {_day(self.valid_from)}",
            )
        if now >= self.valid_until:
            return KEY_EXPIRED, f"whose certificate expired on {_day(self.valid_until)}"
        return None


@dataclass(frozen=True, slots=True)
class Signer:
    """A user who has a signing role: its name, and whether and in which teams they are."""

    username: str
    role: str  # "targets/<name>"
    active: bool
    teams: frozenset[str]


@dataclass(frozen=True, slots=True)
class Identities:
    """Who may sign, as of now.

    ``signers`` maps each user's own role to the user; ``keys`` every key on an account
    (revoked ones too, so that an explanation can say so); ``replays`` every fingerprint
    of signed bytes that Gatehouse has seen under more than one (GUN, role), with all of
    them.
    """

    signers: Mapping[str, Signer]
    keys: Mapping[str, SignerKey]
    replays: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RoleData:
    """One verified role: target name → sha256 hex digest, the keys that signed it (by
    the ID ``notary key list`` shows), and the fingerprint of its signed bytes."""

    targets: dict[str, str]
    signers: frozenset[str]
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class TrustData:
    """A GUN's verified trust data, reduced to what evaluation needs."""

    root_pinned: bool
    roles: dict[str, RoleData]


def trust_data_from_verified(repo: VerifiedRepository) -> TrustData:
    """Convert the reader's result; a target without a usable sha256 can match no digest."""
    roles = {}
    for name, role in repo.roles.items():
        targets = {}
        for target_name, target in role.targets.items():
            encoded = target.hashes.get("sha256")
            if not isinstance(encoded, str):
                continue
            try:
                raw = base64.b64decode(encoded, validate=True)
            except ValueError:
                continue
            if len(raw) == 32:
                targets[target_name] = raw.hex()
        roles[name] = RoleData(
            targets=targets, signers=frozenset(role.signer_key_ids), fingerprint=role.fingerprint
        )
    return TrustData(root_pinned=repo.root_pinned, roles=roles)


# --- Result -----------------------------------------------------------------------------

# Why a signature did not count (``NotCounted.reason``).
NEVER_SIGNED = "never_signed"
RELEASES_ONLY = "releases_only"
NOT_IN_TEAM = "not_in_team"
DEACTIVATED = "deactivated"
KEY_REVOKED = "key_revoked"
KEY_EXPIRED = "key_expired"
KEY_NOT_YET_VALID = "key_not_yet_valid"
KEY_NOT_SIGNING = "key_not_signing"
NOT_OWN_KEY = "not_own_key"
NOT_OWN_ROLE = "not_own_role"
REPLAYED = "replayed"
ROOT_NOT_PINNED = "root_not_pinned"
TOO_FEW = "too_few"

# Why nothing was examined at all (``Evaluation.missing``).
NO_TRUST_DATA = "no_trust_data"
TRUST_INVALID = "trust_invalid"
UNKNOWN_TAG = "unknown_tag"
UNKNOWN_DIGEST = "unknown_digest"


@dataclass(frozen=True, slots=True)
class SignerMatch:
    """A member whose key (by the ID ``notary key list`` shows) signed the digest in their
    own ``role``."""

    username: str
    key_id: str
    role: str


@dataclass(frozen=True, slots=True)
class NotCounted:
    """A signature on the digest, or its absence, that did not satisfy a team, and why."""

    reason: str  # one of the codes above
    detail: str  # the same in words
    username: str | None = None
    role: str | None = None
    key_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "detail": self.detail,
            "username": self.username,
            "role": self.role,
            "key_id": self.key_id,
        }


@dataclass(frozen=True, slots=True)
class TeamResult:
    """One team of the requirement: ``required`` distinct current members must sign; the
    ``signers`` who counted, one per member however many keys they signed with."""

    team: str
    satisfied: bool
    signers: tuple[SignerMatch, ...]
    not_counted: tuple[NotCounted, ...] = ()
    required: int = 1


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The decision and everything that explains it; ``reasons`` lead with the decisive one.

    ``rule`` is the rule that applied and why it won; ``signatures`` every signature on
    the digest that counts for its signer whatever their teams (what a preview judges
    other rules by, ``policy.preview``); ``examined`` whether trust data was read at all.
    """

    image: str
    gun: str
    tag: str | None
    digest: str | None
    decision: str  # "allowed" | "denied" | "not_enforced"
    allowed: bool
    mode: str
    root_pinned: bool
    reasons: tuple[str, ...]
    teams: tuple[TeamResult, ...]
    missing: str | None = None  # why no signature was examined: one of the codes above
    rule: Applied | None = None
    namespace: str | None = None
    match: str = ALL
    signatures: tuple[SignerMatch, ...] = ()
    examined: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "gun": self.gun,
            "tag": self.tag,
            "digest": self.digest,
            "namespace": self.namespace,
            "decision": self.decision,
            "allowed": self.allowed,
            "mode": self.mode,
            "rule": self.rule.to_json() if self.rule is not None else None,
            "root_pinned": self.root_pinned,
            "reasons": list(self.reasons),
            "match": self.match,
            "teams": [
                {
                    "team": result.team,
                    "needed": result.required,
                    "signed": len(result.signers),
                    "satisfied": result.satisfied,
                    "signers": [
                        {"username": s.username, "key_id": s.key_id, "role": s.role}
                        for s in result.signers
                    ],
                    "not_counted": [n.to_json() for n in result.not_counted],
                }
                for result in self.teams
            ],
        }


# --- The rule ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Findings:
    """What the trust data says of an image, whatever the rules.

    ``counted`` are the signatures that count for their signer (own role, own current
    key, bytes not replayed), before any team is asked about; ``refused`` those that never
    count, with why. ``missing`` (a code) when there is nothing to judge: no trust data,
    trust data that does not verify, an unknown tag or digest; ``unpinned`` when the root
    is not pinned and trust on first use is off, so nothing counts.
    """

    digest: str | None
    reasons: tuple[str, ...] = ()
    missing: str | None = None
    unpinned: NotCounted | None = None
    counted: tuple["Signature", ...] = ()
    refused: tuple[NotCounted, ...] = ()
    absent: NotCounted | None = None
    mismatches: tuple[str, ...] = ()
    named: str = ""  # how the digest was found, for a requirement of no teams


def evaluate(
    reference: ImageReference,
    policy: Policy,
    trust: TrustData | None,
    identities: Identities,
    *,
    namespace: str | None = None,
    now: dt.datetime | None = None,
    trust_error: str | None = None,
) -> Evaluation:
    """Would ``reference`` pass ``policy`` in ``namespace``, and why.

    ``trust`` is None when the GUN has no usable trust data (absent, expired, tampered);
    ``trust_error`` then says why. ``now`` (default: the clock) is when keys must be
    valid. When the policy is disabled or the rule that applies is ``off``, the trust data
    need not be read: given, its findings follow the decisive reason; not given, only
    ``trust_error`` does, since nothing was checked.
    """
    now = now or dt.datetime.now(dt.UTC)
    applied = policy.applied(reference.gun, namespace)
    rule = applied.rule
    lead: tuple[str, ...] = ()
    if not policy.enabled:
        lead = (DISABLED_REASON,)
    elif rule.mode == OFF:
        lead = (f"exempt: {applied.why}, and its mode is off",)
    examined = not (lead and trust is None)
    if examined:
        findings = examine(
            reference,
            trust,
            identities,
            now=now,
            trust_error=trust_error,
            trust_on_first_use=policy.trust_on_first_use,
        )
        passed, reasons, teams = judge(findings, rule.requirement)
    else:
        passed, reasons, teams = False, (trust_error,) if trust_error else (), ()
        findings = Findings(reference.digest)
    decision = decision_of(policy.enabled, rule.mode, passed)
    return Evaluation(
        image=reference.image,
        gun=reference.gun,
        tag=reference.tag,
        digest=findings.digest,
        decision=decision,
        allowed=decision != DENIED,
        mode=rule.mode,
        root_pinned=trust.root_pinned if trust is not None else False,
        reasons=lead + reasons,
        teams=teams,
        missing=findings.missing,
        rule=applied,
        namespace=namespace,
        match=rule.requirement.match,
        signatures=tuple(
            SignerMatch(s.signer.username, s.key_id, s.signer.role) for s in findings.counted
        ),
        examined=examined,
    )


def decision_of(enabled: bool, mode: str, passed: bool) -> str:
    """The decision, from the switch, the mode of the rule that applied and its verdict."""
    if not enabled:
        return NOT_ENFORCED
    if mode == OFF or passed:
        return ALLOWED
    return DENIED if mode == ENFORCED else NOT_ENFORCED


def needs_trust_data(policy: Policy, gun: str, namespace: str | None = None) -> bool:
    """Whether the decision on ``gun`` depends on its trust data: not when the policy is
    disabled or the rule that applies is ``off``."""
    return policy.enabled and policy.rule_for(gun, namespace).mode != OFF


def _day(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _is_listing(role: str) -> bool:
    """``targets/releases`` (and roles under it) and ``targets`` list what Docker pulls;
    anyone allowed to publish signs them, so a signature there is nobody's in particular."""
    return role in (TARGETS, RELEASES) or role.startswith(f"{RELEASES}/")


@dataclass(frozen=True, slots=True)
class Signature:
    """A signature that counts for its signer, whatever their teams: in the signer's own
    role, by one of their current signing keys, in a file not replayed."""

    signer: Signer
    key_id: str


def _signatures(
    gun: str,
    holding: list[tuple[str, RoleData]],
    identities: Identities,
    now: dt.datetime,
) -> tuple[list[Signature], list[NotCounted]]:
    """Split the signatures of the roles that hold the digest into those that count for
    their signer and those that never count, with why."""
    counted: list[Signature] = []
    refused: list[NotCounted] = []
    for name, role in holding:
        if _is_listing(name):
            continue
        signer = identities.signers.get(name)
        if signer is None:
            for key_id in sorted(role.signers):
                key = identities.keys.get(key_id)
                owner = key.owner if key is not None else None
                whose = f"{owner}'s key {key_id}" if owner else f"key {key_id}"
                refused.append(
                    NotCounted(
                        NOT_OWN_ROLE,
                        f"{whose} signed it in {name}, which is no signer's own role",
                        owner,
                        name,
                        key_id,
                    )
                )
            continue
        elsewhere = [
            place for place in identities.replays.get(role.fingerprint, ()) if place != (gun, name)
        ]
        if elsewhere:
            other_gun, other_role = elsewhere[0]
            refused.append(
                NotCounted(
                    REPLAYED,
                    f"{name} of {signer.username} is replayed from {other_gun} {other_role}",
                    signer.username,
                    name,
                )
            )
            continue
        for key_id in sorted(role.signers):
            key = identities.keys.get(key_id)
            if key is None or key.owner != signer.username:
                whose = f"{key.owner}'s" if key is not None else "a"
                refused.append(
                    NotCounted(
                        NOT_OWN_KEY,
                        f"{name} of {signer.username} was signed with {whose} key {key_id}, "
                        f"not one of {signer.username}'s",
                        signer.username,
                        name,
                        key_id,
                    )
                )
                continue
            problem = key.unusable(now)
            if problem is not None:
                code, words = problem
                refused.append(
                    NotCounted(
                        code,
                        f"{signer.username} signed it in {name} with key {key_id}, {words}",
                        signer.username,
                        name,
                        key_id,
                    )
                )
                continue
            counted.append(Signature(signer, key_id))
    return counted, refused


def _team_result(
    team: str,
    required: int,
    counted: tuple[Signature, ...],
    refused: tuple[NotCounted, ...],
    absent: NotCounted | None,
) -> TeamResult:
    matches: dict[str, SignerMatch] = {}
    others: list[NotCounted] = []
    for signature in counted:
        signer = signature.signer
        if signer.active and team in signer.teams:
            matches.setdefault(
                signer.username, SignerMatch(signer.username, signature.key_id, signer.role)
            )
            continue
        code, words = (
            (NOT_IN_TEAM, f"is not in {team}") if signer.active else (DEACTIVATED, "is deactivated")
        )
        others.append(
            NotCounted(
                code,
                f"{signer.username} signed it in {signer.role}, but {words}",
                signer.username,
                signer.role,
                signature.key_id,
            )
        )
    if len(matches) >= required:
        return TeamResult(team, True, tuple(matches.values()), required=required)
    reasons = tuple(dict.fromkeys([*others, *refused]))
    if matches:
        names = ", ".join(matches)
        few = NotCounted(
            TOO_FEW,
            f"{required} distinct members of {team} must sign it, and only {len(matches)} "
            f"did ({names})",
        )
        reasons = (few, *reasons)
    elif not reasons and absent is not None:
        reasons = (absent,)
    return TeamResult(team, False, tuple(matches.values()), reasons, required)


def examine(
    reference: ImageReference,
    trust: TrustData | None,
    identities: Identities,
    *,
    now: dt.datetime,
    trust_error: str | None = None,
    trust_on_first_use: bool = False,
) -> Findings:
    """What the trust data says of ``reference``, before any rule is applied."""
    missing = f"image or trust data does not exist for {reference.subject}"
    if trust is None:
        reasons: tuple[str, ...] = (missing, trust_error) if trust_error else (missing,)
        why_missing = TRUST_INVALID if trust_error else NO_TRUST_DATA
        return Findings(reference.digest, reasons, why_missing)

    tag = reference.tag
    if reference.digest is not None:
        source = None
        hex_digest = reference.digest.removeprefix("sha256:")
        if not any(hex_digest in role.targets.values() for role in trust.roles.values()):
            return Findings(reference.digest, (missing,), UNKNOWN_DIGEST)
    else:
        found = _tag_digest(trust, tag)
        if found is None:
            return Findings(None, (missing,), UNKNOWN_TAG)
        source, hex_digest = found
    digest = f"sha256:{hex_digest}"

    if not trust.root_pinned and not trust_on_first_use:
        words = (
            f"the root of {reference.gun} is not pinned: Gatehouse neither made nor adopted "
            "this repository and no root key pin covers it, so no signature in it counts"
        )
        return Findings(digest, (POLICY_FAILED, words), unpinned=NotCounted(ROOT_NOT_PINNED, words))

    def holds(role: RoleData) -> bool:
        if source is None or tag is None:  # a digest reference: under any name
            return hex_digest in role.targets.values()
        return role.targets.get(tag) == hex_digest

    holding = [(name, role) for name, role in trust.roles.items() if holds(role)]
    counted, refused = _signatures(reference.gun, holding, identities, now)
    mismatches = tuple(
        f"{name} signed sha256:{role.targets[tag]} as {tag}, but {source} names {digest} for it"
        for name, role in trust.roles.items()
        if source is not None
        and name in identities.signers
        and tag in role.targets
        and role.targets[tag] != hex_digest
    )
    named = f"{source} names {digest} for {tag}" if source else f"the trust data holds {digest}"
    return Findings(
        digest,
        counted=tuple(counted),
        refused=tuple(refused),
        absent=_absence(holding, identities),
        mismatches=mismatches,
        named=named,
    )


def judge(
    findings: Findings, requirement: Requirement
) -> tuple[bool, tuple[str, ...], tuple[TeamResult, ...]]:
    """Whether ``findings`` meet ``requirement``: the verdict, its reasons, each team's
    result. Each team counts its distinct current members; with ``any`` one team's quota
    is enough, with ``all`` every team's is needed."""
    quotas = requirement.teams
    digest = findings.digest
    if findings.missing is not None:
        unsatisfied = tuple(TeamResult(q.team, False, (), required=q.count) for q in quotas)
        return False, findings.reasons, unsatisfied
    if findings.unpinned is not None:
        return (
            False,
            findings.reasons,
            tuple(TeamResult(q.team, False, (), (findings.unpinned,), q.count) for q in quotas),
        )
    if not quotas:
        return True, (f"no signing teams are required; {findings.named}", *findings.mismatches), ()
    results = tuple(
        _team_result(q.team, q.count, findings.counted, findings.refused, findings.absent)
        for q in quotas
    )
    satisfied = [result for result in results if result.satisfied]
    failed = [result for result in results if not result.satisfied]
    passed = bool(satisfied) if requirement.match == ANY else not failed
    if passed:
        reasons = tuple(
            f"team {result.team}: {_signed(result)} {digest} ("
            + ", ".join(f"{match.username} in {match.role}" for match in result.signers)
            + ")"
            for result in satisfied
        )
        return True, reasons + findings.mismatches, results
    reasons = (
        POLICY_FAILED,
        *(
            f"team {result.team}: {_too_few(result)} signed {digest} in their own role ("
            + "; ".join(n.detail for n in result.not_counted)
            + ")"
            for result in failed
        ),
        *findings.mismatches,
    )
    return False, reasons, results


def _signed(result: TeamResult) -> str:
    if result.required == 1:
        return "signed"
    return f"{len(result.signers)} distinct members (of {result.required} needed) signed"


def _too_few(result: TeamResult) -> str:
    if result.required == 1:
        return "no current member"
    return f"fewer than {result.required} distinct current members"


def _absence(holding: list[tuple[str, RoleData]], identities: Identities) -> NotCounted:
    """What to say when no signature on the digest was even considered."""
    listings = [(name, role) for name, role in holding if _is_listing(name)]
    if not listings:
        return NotCounted(NEVER_SIGNED, "nobody signed it")
    owners = sorted(
        {
            key.owner
            for _, role in listings
            for key_id in role.signers
            if (key := identities.keys.get(key_id)) is not None
        }
    )
    where = " and ".join(name for name, _ in listings)
    by = f" (by {', '.join(owners)})" if owners else ""
    return NotCounted(
        RELEASES_ONLY,
        f"it is signed only in {where}{by}, which never counts: "
        "a signer must sign it in their own role too",
        role=listings[0][0],
    )


def _tag_digest(trust: TrustData, tag: str | None) -> tuple[str, str] | None:
    """The role that names the tag and its digest, as Docker looks a tag up (reader.lookup)."""
    for source in (RELEASES, TARGETS):
        role = trust.roles.get(source)
        if role is not None and tag in role.targets:
            return source, role.targets[tag]
    return None
