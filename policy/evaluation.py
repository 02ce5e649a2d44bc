"""Content-trust policy evaluation: would an image pass the signing policy, and why.

Pure functions over frozen dataclasses, with no I/O and no Django, so that admission and
the explain API share one rule and can run it thousands of times a second. The rule is
product.md's "Semantics to match" (Docker UCP's content-trust policy):

* a tag's digest is the one ``targets/releases`` names for it, else ``targets``;
* each signing team needs a valid signature on that digest, in a delegation role other
  than ``targets/releases``, by a key of a current member of the team;
* disabled never blocks, permissive reports but never blocks, enforced denies.
"""

import base64
import fnmatch
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from trust.notary.reader import RELEASES, TARGETS, VerifiedRepository

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
NAME_MAX = 255  # Docker's limit on the whole name, registry included

ALLOWED = "allowed"
DENIED = "denied"
NOT_ENFORCED = "not_enforced"
PERMISSIVE = "permissive"
ENFORCED = "enforced"
MODES = (PERMISSIVE, ENFORCED)

POLICY_FAILED = "image did not meet required signing policy"

_SPACE = re.compile(r"\s")
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_REGISTRY = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*(?::[0-9]+)?")
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_HEX = re.compile(r"[0-9a-f]*")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class InvalidReference(ValueError):
    """The text is not an image reference Docker would accept."""


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

    Invalid input raises ``InvalidReference`` saying what is wrong, so the explain API can
    show it as is.
    """

    def invalid(why: str) -> InvalidReference:
        return InvalidReference(f"{text!r} is not a valid image reference: {why}")

    if not text or text.isspace():
        raise invalid("it is empty")
    if _SPACE.search(text):
        raise invalid("it contains whitespace")
    if "://" in text:
        raise invalid("drop the scheme; a reference starts with the registry host")
    name, at, digest_text = text.partition("@")
    digest = None
    if at:
        digest = _parse_digest(digest_text, invalid)
    tag = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1 :]
        if not tag:
            raise invalid("the tag after ':' is empty")
        if not _TAG.fullmatch(tag):
            raise invalid(
                f"tag {tag!r} must be at most 128 letters, digits, '_', '.' or '-', "
                "not starting with '.' or '-'"
            )
    if not name:
        raise invalid("the repository name is missing")
    if _HEX64.fullmatch(name):
        raise invalid("a 64-hex-digit name is an image ID, not a repository")
    registry, path = _split_registry(name)
    if not _REGISTRY.fullmatch(registry):
        if _REGISTRY.fullmatch(registry.lower()):
            raise invalid(f"registry host {registry!r} must be lowercase")
        raise invalid(f"registry {registry!r} is not a valid host[:port]")
    for component in path.split("/"):
        if not component:
            raise invalid("the repository path has an empty component")
        if not _COMPONENT.fullmatch(component):
            if _COMPONENT.fullmatch(component.lower()):
                raise invalid("repository name must be lowercase")
            raise invalid(
                f"path component {component!r} must be lowercase letters and digits "
                "separated by '.', '_', '__' or dashes"
            )
    gun = f"{registry}/{path}"
    if len(gun) > NAME_MAX:
        raise invalid(f"the name is longer than {NAME_MAX} characters")
    if digest is None:
        tag = tag or DEFAULT_TAG
        image = f"{gun}:{tag}"
    else:
        image = f"{gun}:{tag}@{digest}" if tag else f"{gun}@{digest}"
    return ImageReference(image=image, gun=gun, tag=tag, digest=digest)


def _split_registry(name: str) -> tuple[str, str]:
    """Registry and path as Docker splits them: a first component is a registry only when
    it has a ``.`` or ``:`` or is ``localhost``; Docker Hub's single names are ``library/``.
    """
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DEFAULT_REGISTRY, name
    if registry == "index.docker.io":
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    return registry, path


def _parse_digest(text: str, invalid: Callable[[str], InvalidReference]) -> str:
    """``sha256:<64 hex>``, lowercased: Notary records only sha256 for image targets."""
    algorithm, colon, hex_digits = text.partition(":")
    if not colon or not algorithm:
        raise invalid("the digest must look like sha256:<64 hex digits>")
    if algorithm != "sha256":
        raise invalid(f"only sha256 digests are supported, not {algorithm!r}")
    hex_digits = hex_digits.lower()
    if not _HEX.fullmatch(hex_digits):
        raise invalid("the digest must be hexadecimal")
    if len(hex_digits) != 64:
        raise invalid(f"a sha256 digest has 64 hex digits, not {len(hex_digits)}")
    return f"sha256:{hex_digits}"


# --- Inputs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyRules:
    """The content-trust settings (UCP's ``require_content_trust`` and friends)."""

    enabled: bool
    mode: str  # "permissive" | "enforced"
    signing_teams: tuple[str, ...]
    allow_repos: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """The user behind a key that counts, and the teams they are a current member of."""

    username: str
    teams: frozenset[str]


@dataclass(frozen=True, slots=True)
class RoleData:
    """One verified role: target name → sha256 hex digest, and the key IDs that signed it."""

    targets: dict[str, str]
    signers: frozenset[str]


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
        roles[name] = RoleData(targets=targets, signers=frozenset(role.signers))
    return TrustData(root_pinned=repo.root_pinned, roles=roles)


# --- Result -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignerMatch:
    """A member whose key (TUF key ID) signed the digest in ``role``."""

    username: str
    key_id: str
    role: str


@dataclass(frozen=True, slots=True)
class TeamResult:
    team: str
    satisfied: bool
    signers: tuple[SignerMatch, ...]


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


def evaluate(
    reference: ImageReference,
    rules: PolicyRules,
    trust: TrustData | None,
    owners: Mapping[str, KeyOwner],
    *,
    trust_error: str | None = None,
) -> Evaluation:
    """Would ``reference`` pass ``rules``, and why.

    ``trust`` is None when the GUN has no usable trust data (absent, expired, tampered);
    ``trust_error`` then says why. ``owners`` maps TUF key IDs to their owners and holds
    only keys that count: current keys of active users. When the policy is disabled or the
    repository exempt, the trust data need not be read: given, its findings follow the
    decisive reason; not given, only ``trust_error`` does, since nothing was checked.
    """
    lead: tuple[str, ...] = ()
    if not rules.enabled:
        lead = ("content trust is disabled",)
    elif (pattern := exempting_pattern(reference.gun, rules.allow_repos)) is not None:
        lead = (f"exempt: {pattern} is in allow_repos",)
    if lead and trust is None:
        finding = _Finding(reference.digest, False, (trust_error,) if trust_error else (), ())
    else:
        finding = _examine(reference, _unique(rules.signing_teams), trust, owners, trust_error)
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
    )


def is_exempt(gun: str, rules: PolicyRules) -> bool:
    """Whether ``allow_repos`` exempts the GUN, so its trust data need not be read."""
    return exempting_pattern(gun, rules.allow_repos) is not None


def exempting_pattern(gun: str, patterns: tuple[str, ...]) -> str | None:
    """The first ``allow_repos`` pattern matching the GUN, as written or normalised.

    Patterns are ``fnmatch`` globs, so ``*`` also matches ``/``; short forms such as
    ``nginx`` or ``team/*`` are matched as Docker normalises them (on docker.io).
    """
    for pattern in patterns:
        if fnmatch.fnmatchcase(gun, pattern) or fnmatch.fnmatchcase(gun, _full_pattern(pattern)):
            return pattern
    return None


def _unique(teams: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(teams))


@functools.lru_cache(maxsize=1024)
def _full_pattern(pattern: str) -> str:
    """A short-form pattern as Docker would normalise it (``nginx``, ``ci/*`` on docker.io)."""
    return "/".join(_split_registry(pattern))


def _counts(role: str) -> bool:
    """Whether signatures in ``role`` can satisfy a signing team.

    ``targets/releases`` never counts: anyone may be allowed to sign it, and if it counted
    an outsider could add a tag there that the next legitimate publish re-signs with the
    whole role, quietly admitting the image (product.md). Roles under it are excluded for
    the same reason: whoever signs releases chooses their keys. The top-level ``targets``
    is the repository owner's, not a team member's, so it does not count either.
    """
    return role.startswith("targets/") and role != RELEASES and not role.startswith(f"{RELEASES}/")


def _examine(
    reference: ImageReference,
    teams: tuple[str, ...],
    trust: TrustData | None,
    owners: Mapping[str, KeyOwner],
    trust_error: str | None,
) -> _Finding:
    unsatisfied = tuple(TeamResult(team, False, ()) for team in teams)
    missing = f"image or trust data does not exist for {reference.subject}"
    if trust is None:
        reasons = (missing, trust_error) if trust_error else (missing,)
        return _Finding(reference.digest, False, reasons, unsatisfied)

    tag = reference.tag
    if reference.digest is not None:
        source = None
        hex_digest = reference.digest.removeprefix("sha256:")
        if not any(hex_digest in role.targets.values() for role in trust.roles.values()):
            return _Finding(reference.digest, False, (missing,), unsatisfied)
    else:
        found = _tag_digest(trust, tag)
        if found is None:
            return _Finding(None, False, (missing,), unsatisfied)
        source, hex_digest = found
    digest = f"sha256:{hex_digest}"

    def holds(role: RoleData) -> bool:
        if source is None:  # a digest reference: under any name
            return hex_digest in role.targets.values()
        return role.targets.get(tag) == hex_digest

    signed = [(name, role) for name, role in trust.roles.items() if _counts(name) and holds(role)]
    signatures = [
        (name, key_id, owners.get(key_id))
        for name, role in signed
        for key_id in sorted(role.signers)
    ]
    results = tuple(_team_result(team, signatures) for team in teams)
    mismatches = tuple(
        f"{name} signed sha256:{role.targets[tag]} as {tag}, but {source} names {digest} for it"
        for name, role in trust.roles.items()
        if source is not None
        and _counts(name)
        and tag in role.targets
        and role.targets[tag] != hex_digest
    )

    if not teams:
        named = f"{source} names {digest} for {tag}" if source else f"the trust data holds {digest}"
        return _Finding(digest, True, (f"no signing teams are required; {named}", *mismatches), ())
    failed = [result.team for result in results if not result.satisfied]
    if not failed:
        reasons = tuple(
            f"team {result.team}: signed {digest} ("
            + ", ".join(f"{match.username} in {match.role}" for match in result.signers)
            + ")"
            for result in results
        )
        return _Finding(digest, True, reasons + mismatches, results)
    top = trust.roles.get(TARGETS)
    nobody = "nobody signed it outside targets/releases"
    if top is not None and holds(top):
        nobody += " and targets"
    reasons = (
        POLICY_FAILED,
        *(
            f"team {team}: no current member signed {digest} "
            f"({_why_not(team, signed, owners) or nobody})"
            for team in failed
        ),
        *mismatches,
    )
    return _Finding(digest, False, reasons, results)


def _tag_digest(trust: TrustData, tag: str | None) -> tuple[str, str] | None:
    """The role that names the tag and its digest, as Docker looks a tag up (reader.lookup)."""
    for source in (RELEASES, TARGETS):
        role = trust.roles.get(source)
        if role is not None and tag in role.targets:
            return source, role.targets[tag]
    return None


def _team_result(team: str, signatures: list[tuple[str, str, KeyOwner | None]]) -> TeamResult:
    matches = tuple(
        SignerMatch(owner.username, key_id, role)
        for role, key_id, owner in signatures
        if owner is not None and team in owner.teams
    )
    return TeamResult(team, bool(matches), matches)


def _why_not(team: str, signed: list[tuple[str, RoleData]], owners: Mapping[str, KeyOwner]) -> str:
    """Who signed the digest in the roles that count, and why none of them counts for ``team``."""
    parts = []
    for name, role in signed:
        who = []
        for key_id in sorted(role.signers):
            owner = owners.get(key_id)
            if owner is None:
                who.append(f"key {key_id[:12]}, not a current key of an active user")
            else:
                who.append(f"{owner.username}, who is not in {team}")
        parts.append(f"{name} was signed by {' and '.join(who)}" if who else f"{name} is unsigned")
    return "; ".join(parts)
