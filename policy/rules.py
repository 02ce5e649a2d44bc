"""The content-trust policy as data: ordered rules plus a default rule, which rule applies to
an image in a namespace, and the policy document that the API, the YAML files and the
history all share.

A rule has a scope (image patterns, Kubernetes namespaces, or both), a mode (``enforced``,
``permissive`` or ``off``) and a requirement: teams, each with the number of distinct
current members who must sign, all of them or any one. An exemption is a rule whose mode
is ``off``.

Precedence (docs/policy.md): the most specific rule whose scope matches wins.

1. Namespace: a rule naming the namespace exactly beats one matching it by a pattern,
   which beats a rule for every namespace. A rule scoped to namespaces never applies
   where no namespace is given (the evaluate API without ``namespace``, the console's
   check, a repository's signed tags).
2. Image: a pattern without wildcards beats one with them; then the pattern with more
   literal characters (anything but ``*`` and ``?``) wins; a rule for every image comes
   last.
3. A tie goes to the rule listed first. The default rule applies when no rule matches.

Pure: no Django, no I/O.
"""

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trust.notary import name_patterns, references

ENFORCED = "enforced"
PERMISSIVE = "permissive"
OFF = "off"
RULE_MODES = (ENFORCED, PERMISSIVE, OFF)
STRICTNESS = {OFF: 0, PERMISSIVE: 1, ENFORCED: 2}

ALL = "all"
ANY = "any"
MATCHES = (ALL, ANY)

DEFAULT_RULE = "default"
DOCUMENT_FIELDS = ("enabled", "default", "rules")  # each required: none quietly defaults
MAX_RULES = 200
MAX_PATTERNS = 200  # image patterns or namespaces, per rule
MAX_PATTERNS_IN_ALL = 1_000  # of each, in all the rules: each new image is matched by all
MAX_TEAMS = 20  # per requirement
MAX_COUNT = 100
APPLIED_KEPT = 10_000  # answers a policy keeps (``Policy.applied``) before starting afresh
RULE_NAME = re.compile(r"\A[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
# A Kubernetes namespace name (an RFC 1123 label), where a pattern may also hold * and ?.
NAMESPACE = re.compile(r"\A[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
NAMESPACE_PATTERN = re.compile(r"\A[a-z0-9*?](?:[a-z0-9*?-]{0,61}[a-z0-9*?])?\Z")
NAMESPACE_INVALID = (
    "Not a namespace name: at most 63 lowercase letters, digits and '-', starting and ending "
    "with a letter or digit."
)
NAMESPACE_RULE = (
    "at most 63 lowercase letters, digits and '-', starting and ending with a letter or "
    "digit; * and ? as wildcards"
)
WILDCARDS = "*?"


class DocumentError(ValueError):
    """A policy document that cannot be taken; ``errors`` maps each field's path
    (``rules[2].require.teams[0].count``) to what is wrong with it."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__("; ".join(f"{path}: {' '.join(why)}" for path, why in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True, slots=True)
class TeamQuota:
    """``count`` distinct current members of ``team`` must sign."""

    team: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class Requirement:
    """Who must sign: every team's quota (``all``), or any one team's (``any``). No teams:
    trust data must name the digest, and no signer is needed."""

    teams: tuple[TeamQuota, ...] = ()
    match: str = ALL

    def __post_init__(self) -> None:
        if self.match not in MATCHES:
            raise ValueError(f"match must be one of {MATCHES}, not {self.match!r}")

    def describe(self) -> str:
        """``2 of security and 1 of ci``; ``1 of security or 1 of ci``."""
        if not self.teams:
            return "no signers"
        joiner = " and " if self.match == ALL else " or "
        return joiner.join(f"{quota.count} of {quota.team}" for quota in self.teams)


@dataclass(frozen=True, slots=True)
class Rule:
    """A scope, a mode and a requirement. Empty ``images``: every image; empty
    ``namespaces``: every namespace, and no namespace at all.

    The patterns are compiled once, when the rule is made: a policy holds up to
    ``MAX_PATTERNS_IN_ALL`` of each, more than any shared cache keeps."""

    name: str
    mode: str
    requirement: Requirement
    images: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    _image_matchers: tuple[tuple[str, re.Pattern[str] | None], ...] = field(
        init=False, compare=False, repr=False, hash=False
    )
    _namespace_matchers: tuple[tuple[str, re.Pattern[str]], ...] = field(
        init=False, compare=False, repr=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.mode not in RULE_MODES:  # an unknown mode must never read as permissive
            raise ValueError(f"mode must be one of {RULE_MODES}, not {self.mode!r}")
        images = tuple((p, name_patterns.pattern_matcher(p)) for p in self.images)
        object.__setattr__(self, "_image_matchers", images)
        namespaces = tuple(
            (p, re.compile(fnmatch.translate(p))) for p in self.namespaces if _has_wildcard(p)
        )
        object.__setattr__(self, "_namespace_matchers", namespaces)


@dataclass(frozen=True, slots=True)
class Applied:
    """The rule that applies to an image, and why it won."""

    rule: Rule
    position: int | None  # in ``Policy.rules``, from 1; None for the default rule
    namespace: str | None  # the namespace pattern that matched
    image: str | None  # the image pattern that matched
    outranked: tuple[str, ...] = ()  # the other rules that matched, by precedence

    @property
    def why(self) -> str:
        if self.position is None:
            return "no rule's scope matches, so the default rule applies"
        parts = []
        if self.namespace is not None:
            exact = not _has_wildcard(self.namespace)
            parts.append(f"namespace {'name' if exact else 'pattern'} {self.namespace}")
        parts.append(f"image pattern {self.image}" if self.image else "every image")
        why = f"rule {self.rule.name} matches by " + " and ".join(parts)
        if self.outranked:
            why += "; it is more specific than " + ", ".join(
                f"rule {name}" for name in self.outranked
            )
        return why

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.rule.name,
            "position": self.position,
            "mode": self.rule.mode,
            "scope": {"images": list(self.rule.images), "namespaces": list(self.rule.namespaces)},
            "require": requirement_json(self.rule.requirement),
            "matched_namespace": self.namespace,
            "matched_image": self.image,
            "outranked": list(self.outranked),
            "why": self.why,
        }


@dataclass(frozen=True, slots=True)
class Policy:
    """The whole policy. ``enabled`` off: nothing is enforced anywhere (UCP's switch)."""

    enabled: bool
    default: Rule
    rules: tuple[Rule, ...] = ()
    trust_on_first_use: bool = False
    # Each (GUN, namespace)'s answer, kept while this policy is the one in force: a policy
    # never changes, and admission asks about the same images again and again.
    _applied: dict[tuple[str, str | None], Applied] = field(
        default_factory=dict, init=False, compare=False, repr=False, hash=False
    )

    def applied(self, gun: str, namespace: str | None = None) -> Applied:
        """The rule that applies to ``gun`` in ``namespace``, by the precedence above."""
        key = (gun, namespace)
        found = self._applied.get(key)
        if found is None:
            if len(self._applied) >= APPLIED_KEPT:
                self._applied.clear()
            found = self._applied[key] = self._ranked(gun, namespace)
        return found

    def rule_for(self, gun: str, namespace: str | None = None) -> Rule:
        return self.applied(gun, namespace).rule

    def _ranked(self, gun: str, namespace: str | None) -> Applied:
        ranked = self._matching(gun, namespace)
        if not ranked:
            return Applied(self.default, None, None, None)
        _, position, rule, namespace_pattern, image_pattern = ranked[0]
        return Applied(
            rule,
            position,
            namespace_pattern,
            image_pattern,
            tuple(other.name for _, _, other, _, _ in ranked[1:]),
        )

    def strictest_mode(self, namespace: str | None) -> str:
        """The strictest mode an image in ``namespace`` can meet: what an image that cannot
        be named gets (a workload whose images cannot be found, a reference that does not
        parse). Any image's rule ranks at or above the first rule there that covers every
        image (else the default rule), so the strictest of those is the answer."""
        if not self.enabled:
            return OFF
        candidates = sorted(
            (
                (-rank[0], 0 if rule.images else 1, position, rule)
                for position, rule in enumerate(self.rules)
                if (rank := _namespace_rank(rule, namespace)) is not None
            ),
            key=lambda item: item[:3],
        )
        modes = []
        for _, _, _, rule in candidates:
            modes.append(rule.mode)
            if not rule.images:
                break
        else:
            modes.append(self.default.mode)
        return max(modes, key=STRICTNESS.__getitem__)

    @property
    def escapable(self) -> bool:
        """Whether an image rule enforces over a default that does not: then the same
        registry under a name no pattern covers (its IP address, a mirror) is not enforced."""
        return (
            self.enabled
            and self.default.mode != ENFORCED
            and any(rule.mode == ENFORCED and rule.images for rule in self.rules)
        )

    def team_names(self) -> set[str]:
        """Every team a requirement names."""
        return {
            quota.team for rule in (self.default, *self.rules) for quota in rule.requirement.teams
        }

    def _matching(
        self, gun: str, namespace: str | None
    ) -> list[tuple[tuple[int, int, int], int, Rule, str | None, str | None]]:
        found = []
        subject = name_patterns.matched_name(gun) + "/"  # what a pattern's regex matches
        for position, rule in enumerate(self.rules):
            match = _specificity(rule, subject, namespace)
            if match is not None:
                rank, namespace_pattern, image_pattern = match
                found.append((rank, position + 1, rule, namespace_pattern, image_pattern))
        found.sort(key=lambda item: (tuple(-r for r in item[0]), item[1]))
        return found


def _has_wildcard(text: str) -> bool:
    return any(c in text for c in WILDCARDS)


def _literals(pattern: str) -> int:
    return sum(1 for c in pattern if c not in WILDCARDS)


def _namespace_rank(rule: Rule, namespace: str | None) -> tuple[int, str | None] | None:
    """2 for an exact name, 1 for a pattern, 0 for a rule of every namespace; None when the
    rule's namespaces do not match."""
    if not rule.namespaces:
        return 0, None
    if namespace is None:
        return None
    if namespace in rule.namespaces:
        return 2, namespace
    for pattern, matcher in rule._namespace_matchers:
        if matcher.match(namespace):
            return 1, pattern
    return None


def _specificity(
    rule: Rule, subject: str, namespace: str | None
) -> tuple[tuple[int, int, int], str | None, str | None] | None:
    """(namespace rank, exact image, literal characters), with the patterns that matched;
    None when the rule's scope does not match. ``subject`` is the GUN as patterns match it
    (``name_patterns.matched_name``), with a ``/`` after it."""
    namespace_match = _namespace_rank(rule, namespace)
    if namespace_match is None:
        return None
    namespace_rank, namespace_pattern = namespace_match
    if not rule.images:
        return (namespace_rank, 0, 0), namespace_pattern, None
    best: tuple[int, int] | None = None
    best_pattern = None
    for pattern, matcher in rule._image_matchers:
        if matcher is not None and matcher.fullmatch(subject):
            rank = (0 if _has_wildcard(pattern) else 1, _literals(pattern))
            if best is None or rank > best:
                best, best_pattern = rank, pattern
    if best is None:
        return None
    return (namespace_rank, *best), namespace_pattern, best_pattern


# --- The document -----------------------------------------------------------------------


def requirement_json(requirement: Requirement) -> dict[str, Any]:
    return {
        "match": requirement.match,
        "teams": [{"team": q.team, "count": q.count} for q in requirement.teams],
    }


def rule_json(rule: Rule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "images": list(rule.images),
        "namespaces": list(rule.namespaces),
        "mode": rule.mode,
        "require": requirement_json(rule.requirement),
    }


def policy_document(policy: Policy) -> dict[str, Any]:
    """The policy as one document: what ``GET /api/v1/policy/`` and ``policy export`` give
    and what a ``PUT`` and ``policy apply`` take (with ``version``, which they add)."""
    return {
        "enabled": policy.enabled,
        "default": {
            "mode": policy.default.mode,
            "require": requirement_json(policy.default.requirement),
        },
        "rules": [rule_json(rule) for rule in policy.rules],
    }


class _Errors:
    def __init__(self) -> None:
        self.found: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.found.setdefault(path, []).append(message)


PLAIN = re.compile(r"\A[A-Za-z0-9_.-]{1,64}\Z")


def _named(text: str) -> str:
    """``text`` as a message names it: as it is when plain, else quoted and escaped (it
    may hold a NUL, a lone surrogate, anything a JSON document can)."""
    return text if PLAIN.match(text) else references.shown(text)


def _mapping(
    value: object, path: str, errors: _Errors, keys: Iterable[str]
) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        errors.add(path or "document", "must be an object.")
        return None
    unknown = sorted(set(value) - set(keys), key=str)
    for key in unknown:
        name = _named(str(key))
        errors.add(f"{path}.{name}" if path else name, "is not a field of this object.")
    return value


def _strings(value: object, path: str, errors: _Errors, limit: int) -> list[str] | None:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        errors.add(path, "must be a list of strings.")
        return None
    if len(value) > limit:
        errors.add(path, f"holds at most {limit} entries, not {len(value)}.")
        return None
    return value


def _mode(value: object, path: str, errors: _Errors) -> str:
    if value is False:  # YAML 1.1 reads an unquoted ``off`` as false
        return OFF
    if value not in RULE_MODES:
        errors.add(path, f"must be one of {', '.join(RULE_MODES)}, not {value!r}.")
        return OFF
    return str(value)


REQUIRED_TEAMS = "This field is required: name the teams that must sign, or give [] for none."


def _requirement(value: object, path: str, errors: _Errors, *, required: bool) -> Requirement:
    """``required``: a rule that checks must say who signs; leaving it out must never
    quietly mean nobody (an ``off`` rule checks nothing, so it may)."""
    if value is None:
        if required:
            errors.add(f"{path}.teams", REQUIRED_TEAMS)
        return Requirement()
    data = _mapping(value, path, errors, ("match", "teams"))
    if data is None:
        return Requirement()
    if "teams" not in data and required:
        errors.add(f"{path}.teams", REQUIRED_TEAMS)
    match = data.get("match", ALL)
    if match not in MATCHES:
        errors.add(f"{path}.match", f"must be all or any, not {match!r}.")
    teams = data.get("teams", [])
    if not isinstance(teams, list):
        errors.add(f"{path}.teams", "must be a list of {team, count}.")
        return Requirement()
    if len(teams) > MAX_TEAMS:
        errors.add(f"{path}.teams", f"holds at most {MAX_TEAMS} teams, not {len(teams)}.")
        return Requirement()
    quotas: list[TeamQuota] = []
    for index, item in enumerate(teams):
        where = f"{path}.teams[{index}]"
        entry = _mapping(item, where, errors, ("team", "count"))
        if entry is None:
            continue
        team, count = entry.get("team"), entry.get("count", 1)
        if not isinstance(team, str) or not team:
            errors.add(f"{where}.team", "must name a team.")
            continue
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
            errors.add(f"{where}.count", f"must be a whole number from 1 to {MAX_COUNT}.")
            continue
        if any(quota.team == team for quota in quotas):
            errors.add(f"{where}.team", f"{_named(team)} is named twice in this requirement.")
            continue
        quotas.append(TeamQuota(team, count))
    return Requirement(tuple(quotas), match if match in MATCHES else ALL)


def image_pattern(text: str) -> str:
    """``text`` as an image pattern, normalised as Docker reads names (``nginx`` →
    ``docker.io/library/nginx``), or ``ValueError`` saying, in words, what is wrong."""
    try:
        return name_patterns.parse_pattern(text.strip())
    except references.InvalidPattern as error:
        raise ValueError(f"{references.shown(text.strip())}: {error}.") from error


def namespace_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a namespace or namespace pattern, or None."""
    if not name.strip(WILDCARDS):
        return "wildcards alone match every namespace: leave namespaces out instead."
    if not NAMESPACE_PATTERN.match(name):
        return f"{references.shown(name)} is not a namespace name or pattern ({NAMESPACE_RULE})."
    return None


def _images(value: object, path: str, errors: _Errors, *, stored: bool) -> tuple[str, ...]:
    patterns = _strings(value, path, errors, MAX_PATTERNS)
    cleaned = []
    for index, pattern in enumerate(patterns or []):
        try:
            cleaned.append(image_pattern(pattern))
        except ValueError as error:
            if stored:  # written under an older grammar: kept, and it matches nothing
                cleaned.append(pattern)
            else:
                errors.add(f"{path}[{index}]", str(error))
    return tuple(dict.fromkeys(cleaned))


def _namespaces(value: object, path: str, errors: _Errors) -> tuple[str, ...]:
    names = _strings(value, path, errors, MAX_PATTERNS)
    for index, name in enumerate(names or []):
        problem = namespace_problem(name)
        if problem is not None:
            errors.add(f"{path}[{index}]", problem)
    return tuple(dict.fromkeys(names or []))


def policy_from_document(
    document: object, *, trust_on_first_use: bool = False, stored: bool = False
) -> Policy:
    """Read a policy document; ``DocumentError`` names every field that is wrong.

    Every one of ``DOCUMENT_FIELDS`` must be given, so that a field left out can never
    quietly disable the policy or drop its rules. Image patterns are normalised as Docker
    reads names (``nginx`` → ``docker.io/library/nginx``). Whether the teams exist is for
    the caller to check (``Policy.team_names``). ``version`` is allowed and ignored: it is
    the caller's. ``stored``: a document Gatehouse wrote, read again; an image pattern an
    earlier version's grammar took and this one refuses is kept and matches nothing (as it
    did before rules), so reading the policy never fails on it; saving it again refuses it.
    """
    errors = _Errors()
    data = _mapping(document, "", errors, ("version", *DOCUMENT_FIELDS))
    if data is None:
        raise DocumentError(errors.found)
    for name in DOCUMENT_FIELDS:
        if name not in data:
            errors.add(name, "This field is required: the document is the whole policy.")
    enabled = data.get("enabled", False)
    if not isinstance(enabled, bool):
        errors.add("enabled", "must be true or false.")
    has_default = "default" in data  # when it is not, that is the one error to say of it
    default_data = _mapping(data.get("default", {}), "default", errors, ("mode", "require"))
    default_mode = _mode((default_data or {}).get("mode", ENFORCED), "default.mode", errors)
    default = Rule(
        DEFAULT_RULE,
        default_mode,
        _requirement(
            (default_data or {}).get("require"),
            "default.require",
            errors,
            required=has_default and default_mode != OFF,
        ),
    )
    rules_data = data.get("rules", [])
    rules: list[Rule] = []
    if not isinstance(rules_data, list):
        errors.add("rules", "must be a list of rules.")
        rules_data = []
    elif len(rules_data) > MAX_RULES:
        errors.add("rules", f"holds at most {MAX_RULES} rules, not {len(rules_data)}.")
        rules_data = []
    names: set[str] = set()
    for index, item in enumerate(rules_data):
        path = f"rules[{index}]"
        entry = _mapping(item, path, errors, ("name", "images", "namespaces", "mode", "require"))
        if entry is None:
            continue
        given = entry.get("name")
        name = given if isinstance(given, str) else ""
        if not RULE_NAME.match(name):
            errors.add(
                f"{path}.name",
                "must be at most 63 lowercase letters, digits and '-', starting and ending "
                "with a letter or digit.",
            )
            name = f"rule-{index + 1}"
        elif name == DEFAULT_RULE:
            errors.add(f"{path}.name", "default is the default rule's name; choose another.")
        elif name in names:
            errors.add(f"{path}.name", f"{name} names two rules; rule names are unique.")
        names.add(name)
        images = _images(entry.get("images"), f"{path}.images", errors, stored=stored)
        namespaces = _namespaces(entry.get("namespaces"), f"{path}.namespaces", errors)
        scope_errors = any(
            key.startswith((f"{path}.images", f"{path}.namespaces")) for key in errors.found
        )
        if not images and not namespaces and not scope_errors:
            errors.add(
                f"{path}.images",
                "a rule scopes images, namespaces or both; the default rule covers the rest.",
            )
        mode = _mode(entry.get("mode", ENFORCED), f"{path}.mode", errors)
        requirement = _requirement(
            entry.get("require"), f"{path}.require", errors, required=mode != OFF
        )
        rules.append(Rule(name, mode, requirement, images, namespaces))
    for what, total in (
        ("image", sum(len(rule.images) for rule in rules)),
        ("namespace", sum(len(rule.namespaces) for rule in rules)),
    ):
        if total > MAX_PATTERNS_IN_ALL:
            errors.add(
                "rules",
                f"hold at most {MAX_PATTERNS_IN_ALL:,} {what} patterns in all, not {total:,}.",
            )
    if errors.found:
        raise DocumentError(errors.found)
    return Policy(
        enabled=bool(enabled),
        default=default,
        rules=tuple(rules),
        trust_on_first_use=trust_on_first_use,
    )


# --- UCP's policy -----------------------------------------------------------------------

EXEMPT_REPOSITORIES = "exempt-repositories"
EXEMPT_NAMESPACES = "exempt-namespaces"


def is_repository_exemption(rule: Rule) -> bool:
    """An ``off`` rule of image patterns in every namespace: what UCP's ``allow_repos`` was."""
    return rule.mode == OFF and bool(rule.images) and not rule.namespaces


def is_namespace_exemption(rule: Rule) -> bool:
    """An ``off`` rule of every image in some namespaces: an exempt namespace."""
    return rule.mode == OFF and bool(rule.namespaces) and not rule.images


def ucp_settings(policy: Policy) -> dict[str, Any]:
    """The policy as UCP's five settings (``/api/v1/policy/content-trust/``): the default
    rule's mode and teams, and the exemption rules' patterns and namespaces."""
    return {
        "enabled": policy.enabled,
        "mode": policy.default.mode,
        "signing_teams": sorted(quota.team for quota in policy.default.requirement.teams),
        "allow_repos": list(
            dict.fromkeys(p for r in policy.rules if is_repository_exemption(r) for p in r.images)
        ),
        "exempt_namespaces": list(
            dict.fromkeys(
                n for r in policy.rules if is_namespace_exemption(r) for n in r.namespaces
            )
        ),
    }


def with_ucp_settings(
    policy: Policy,
    *,
    enabled: bool,
    mode: str,
    signing_teams: Iterable[str],
    allow_repos: Iterable[str],
    exempt_namespaces: Iterable[str] | None = None,
) -> Policy:
    """``policy`` with UCP's settings replaced: the default rule's mode and teams (a team
    kept keeps its count), and the exemption rules. A set of exemptions that changed
    becomes one rule where the first of them stood; one that did not is left as it is, so
    saving what ``ucp_settings`` gave changes nothing. Every other rule stays as it is."""
    current = ucp_settings(policy)
    teams = tuple(dict.fromkeys(signing_teams))
    requirement = policy.default.requirement
    if set(teams) != set(current["signing_teams"]):
        counts = {quota.team: quota.count for quota in requirement.teams}
        requirement = Requirement(
            tuple(TeamQuota(team, counts.get(team, 1)) for team in teams), requirement.match
        )
    patterns = tuple(dict.fromkeys(allow_repos))
    namespaces = tuple(dict.fromkeys(exempt_namespaces if exempt_namespaces is not None else ()))
    kinds: list[tuple[Callable[[Rule], bool], str, Rule | None]] = []
    if list(patterns) != current["allow_repos"]:
        kinds.append((is_repository_exemption, EXEMPT_REPOSITORIES, _exemption(images=patterns)))
    if exempt_namespaces is not None and list(namespaces) != current["exempt_namespaces"]:
        kinds.append((is_namespace_exemption, EXEMPT_NAMESPACES, _exemption(namespaces=namespaces)))
    rules = list(policy.rules)
    for test, name, new in kinds:
        kept = [rule for rule in rules if not test(rule)]
        if new is not None:
            unique = name
            while unique in {rule.name for rule in kept}:
                unique = f"{unique}-1"
            new = Rule(unique, OFF, Requirement(), new.images, new.namespaces)
            first = next((i for i, rule in enumerate(rules) if test(rule)), len(rules))
            kept.insert(sum(1 for rule in rules[:first] if not test(rule)), new)
        rules = kept
    return Policy(
        enabled=enabled,
        default=Rule(DEFAULT_RULE, mode, requirement),
        rules=tuple(rules),
        trust_on_first_use=policy.trust_on_first_use,
    )


def _exemption(*, images: tuple[str, ...] = (), namespaces: tuple[str, ...] = ()) -> Rule | None:
    """An ``off`` rule of these images or namespaces (named by the caller); none if empty."""
    if not images and not namespaces:
        return None
    return Rule("exemption", OFF, Requirement(), images, namespaces)


def readable(policy: Policy) -> dict[str, Any]:
    """The policy as the audit log and the history compare it: rules by name, each field
    in words, so a diff reads ``rules.prod.require: 1 of security → 2 of security``. No
    rules, no ``rules`` key: a diff then lists each rule's fields, not an empty object."""
    rules = {
        rule.name: {
            "position": position,
            "images": ", ".join(rule.images) or "every image",
            "namespaces": ", ".join(rule.namespaces) or "every namespace",
            "mode": rule.mode,
            "require": rule.requirement.describe(),
        }
        for position, rule in enumerate(policy.rules, start=1)
    }
    return {
        "enabled": policy.enabled,
        "default": {
            "mode": policy.default.mode,
            "require": policy.default.requirement.describe(),
        },
        **({"rules": rules} if rules else {}),
    }
