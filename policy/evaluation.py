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
* disabled never blocks, permissive reports but never blocks, enforced denies.
"""

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trust.notary import name_patterns, references
from trust.notary.metadata import RELEASES, TARGETS
from trust.notary.references import InvalidReference as InvalidReference
from trust.notary.verified import VerifiedRepository

DEFAULT_REGISTRY = references.DEFAULT_DOMAIN
DEFAULT_TAG = references.DEFAULT_TAG
NAME_MAX = references.NAME_MAX  # Docker's limit on the whole name, registry included

ALLOWED = "allowed"
DENIED = "denied"
NOT_ENFORCED = "not_enforced"
PERMISSIVE = "permissive"
ENFORCED = "enforced"
MODES = (PERMISSIVE, ENFORCED)

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
class PolicyRules:
    """The content-trust settings (UCP's ``require_content_trust`` and friends).

    ``trust_on_first_use`` lets a repository whose root nothing pins count; off, such a
    repository fails (``GATEHOUSE_TRUST_ON_FIRST_USE``).
    """

    enabled: bool
    mode: str  # "permissive" | "enforced"
    signing_teams: tuple[str, ...]
    allow_repos: tuple[str, ...]
    trust_on_first_use: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")


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
    team: str
    satisfied: bool
    signers: tuple[SignerMatch, ...]
    not_counted: tuple[NotCounted, ...] = ()


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The decision and everything that explains it; ``reasons`` lead with the decisive one."""

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

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "gun": self.gun,
            "tag": self.tag,
            "digest": self.digest,
            "decision": self.decision,
            "allowed": self.allowed,
            "mode": self.mode,
            "root_pinned": self.root_pinned,
            "reasons": list(self.reasons),
            "teams": [
                {
                    "team": result.team,
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
class _Finding:
    """What the trust data says, before rules.enabled, allow_repos and mode are applied."""

    digest: str | None
    passed: bool
    reasons: tuple[str, ...]
    teams: tuple[TeamResult, ...]
    missing: str | None = None


def evaluate(
    reference: ImageReference,
    rules: PolicyRules,
    trust: TrustData | None,
    identities: Identities,
    *,
    now: dt.datetime | None = None,
    trust_error: str | None = None,
) -> Evaluation:
    """Would ``reference`` pass ``rules``, and why.

    ``trust`` is None when the GUN has no usable trust data (absent, expired, tampered);
    ``trust_error`` then says why. ``now`` (default: the clock) is when keys must be
    valid. When the policy is disabled or the repository exempt, the trust data need not
    be read: given, its findings follow the decisive reason; not given, only
    ``trust_error`` does, since nothing was checked.
    """
    now = now or dt.datetime.now(dt.UTC)
    lead: tuple[str, ...] = ()
    if not rules.enabled:
        lead = ("content trust is disabled",)
    elif (pattern := exempting_pattern(reference.gun, rules.allow_repos)) is not None:
        lead = (f"exempt: {pattern} is in allow_repos",)
    if lead and trust is None:
        finding = _Finding(reference.digest, False, (trust_error,) if trust_error else (), ())
    else:
        finding = _examine(
            reference, rules, _unique(rules.signing_teams), trust, identities, now, trust_error
        )
    if not rules.enabled:
        decision = NOT_ENFORCED
    elif lead or finding.passed:
        decision = ALLOWED
    else:
        decision = DENIED if rules.mode == ENFORCED else NOT_ENFORCED
    return Evaluation(
        image=reference.image,
        gun=reference.gun,
        tag=reference.tag,
        digest=finding.digest,
        decision=decision,
        allowed=decision != DENIED,
        mode=rules.mode,
        root_pinned=trust.root_pinned if trust is not None else False,
        reasons=lead + finding.reasons,
        teams=finding.teams,
        missing=finding.missing,
    )


def is_exempt(gun: str, rules: PolicyRules) -> bool:
    """Whether ``allow_repos`` exempts the GUN, so its trust data need not be read."""
    return exempting_pattern(gun, rules.allow_repos) is not None


def exempting_pattern(gun: str, patterns: tuple[str, ...]) -> str | None:
    """The first ``allow_repos`` pattern matching the GUN, named as it is stored.

    Patterns match component by component (``trust.notary.references``): ``*`` and ``?``
    stay within one component, ``**`` spans any number of them, and short forms such as
    ``nginx`` or ``team/*`` are read as Docker normalises them (on docker.io). A stored
    pattern the grammar refuses matches nothing.
    """
    for pattern in patterns:
        if name_patterns.pattern_matches(pattern, gun):
            return pattern
    return None


def _unique(teams: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(teams))


def _day(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _is_listing(role: str) -> bool:
    """``targets/releases`` (and roles under it) and ``targets`` list what Docker pulls;
    anyone allowed to publish signs them, so a signature there is nobody's in particular."""
    return role in (TARGETS, RELEASES) or role.startswith(f"{RELEASES}/")


@dataclass(frozen=True, slots=True)
class _Signature:
    """A signature that counts for its signer, whatever their teams: in the signer's own
    role, by one of their current signing keys, in a file not replayed."""

    signer: Signer
    key_id: str


def _signatures(
    gun: str,
    holding: list[tuple[str, RoleData]],
    identities: Identities,
    now: dt.datetime,
) -> tuple[list[_Signature], list[NotCounted]]:
    """Split the signatures of the roles that hold the digest into those that count for
    their signer and those that never count, with why."""
    counted: list[_Signature] = []
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
            counted.append(_Signature(signer, key_id))
    return counted, refused


def _team_result(
    team: str,
    counted: list[_Signature],
    refused: list[NotCounted],
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
    if matches:
        return TeamResult(team, True, tuple(matches.values()))
    reasons = tuple(dict.fromkeys([*others, *refused])) or ((absent,) if absent else ())
    return TeamResult(team, False, (), reasons)


def _examine(
    reference: ImageReference,
    rules: PolicyRules,
    teams: tuple[str, ...],
    trust: TrustData | None,
    identities: Identities,
    now: dt.datetime,
    trust_error: str | None,
) -> _Finding:
    unsatisfied = tuple(TeamResult(team, False, ()) for team in teams)
    missing = f"image or trust data does not exist for {reference.subject}"
    if trust is None:
        reasons: tuple[str, ...] = (missing, trust_error) if trust_error else (missing,)
        why_missing = TRUST_INVALID if trust_error else NO_TRUST_DATA
        return _Finding(reference.digest, False, reasons, unsatisfied, why_missing)

    tag = reference.tag
    if reference.digest is not None:
        source = None
        hex_digest = reference.digest.removeprefix("sha256:")
        if not any(hex_digest in role.targets.values() for role in trust.roles.values()):
            return _Finding(reference.digest, False, (missing,), unsatisfied, UNKNOWN_DIGEST)
    else:
        found = _tag_digest(trust, tag)
        if found is None:
            return _Finding(None, False, (missing,), unsatisfied, UNKNOWN_TAG)
        source, hex_digest = found
    digest = f"sha256:{hex_digest}"

    if not trust.root_pinned and not rules.trust_on_first_use:
        words = (
            f"the root of {reference.gun} is not pinned: Gatehouse neither made nor adopted "
            "this repository and no root key pin covers it, so no signature in it counts"
        )
        unpinned = NotCounted(ROOT_NOT_PINNED, words)
        return _Finding(
            digest,
            False,
            (POLICY_FAILED, words),
            tuple(TeamResult(team, False, (), (unpinned,)) for team in teams),
        )

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
    if not teams:
        named = f"{source} names {digest} for {tag}" if source else f"the trust data holds {digest}"
        return _Finding(digest, True, (f"no signing teams are required; {named}", *mismatches), ())

    absent = _absence(holding, identities)
    results = tuple(_team_result(team, counted, refused, absent) for team in teams)
    failed = [result for result in results if not result.satisfied]
    if not failed:
        reasons = tuple(
            f"team {result.team}: signed {digest} ("
            + ", ".join(f"{match.username} in {match.role}" for match in result.signers)
            + ")"
            for result in results
        )
        return _Finding(digest, True, reasons + mismatches, results)
    reasons = (
        POLICY_FAILED,
        *(
            f"team {result.team}: no current member signed {digest} in their own role ("
            + "; ".join(n.detail for n in result.not_counted)
            + ")"
            for result in failed
        ),
        *mismatches,
    )
    return _Finding(digest, False, reasons, results)


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
