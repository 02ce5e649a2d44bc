"""The policy as rules (``policy.rules``): which rule applies to an image in a namespace,
how many distinct members a rule's teams need, the policy document and UCP's settings.

Pure: plain data in, decisions out, as admission and the explain API see them.
"""

import dataclasses
import datetime as dt
import fnmatch

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.evaluation import (
    ALLOWED,
    DENIED,
    NOT_ENFORCED,
    NOT_IN_TEAM,
    POLICY_FAILED,
    TOO_FEW,
    Evaluation,
    Identities,
    RoleData,
    Signer,
    SignerKey,
    TrustData,
    evaluate,
    parse_image_reference,
)
from policy.rules import (
    ALL,
    ANY,
    DEFAULT_RULE,
    ENFORCED,
    EXEMPT_NAMESPACES,
    EXEMPT_REPOSITORIES,
    OFF,
    PERMISSIVE,
    RULE_MODES,
    STRICTNESS,
    DocumentError,
    Policy,
    Requirement,
    Rule,
    TeamQuota,
    policy_document,
    policy_from_document,
    readable,
    ucp_settings,
    with_ucp_settings,
)
from trust.notary import name_patterns

REGISTRY = "registry.example.com"
GUN = f"{REGISTRY}/team/app"
A = "a" * 64
B = "b" * 64
RELEASES_KEY = "0" * 64
NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
NO_SIGNERS = Requirement()


# --- Builders ---------------------------------------------------------------------------


def rule(
    name: str,
    *images: str,
    namespaces: tuple[str, ...] = (),
    mode: str = ENFORCED,
    require: Requirement = NO_SIGNERS,
) -> Rule:
    return Rule(name, mode, require, images, namespaces)


def policy(
    *rules: Rule, default: str = ENFORCED, require: Requirement = NO_SIGNERS, enabled=True
) -> Policy:
    return Policy(enabled, Rule(DEFAULT_RULE, default, require), rules)


def needs(*quotas: tuple[str, int], match: str = ALL) -> Requirement:
    """``needs(("security", 2))``: 2 of security."""
    return Requirement(tuple(TeamQuota(team, count) for team, count in quotas), match)


def signer(name: str, *teams: str, active: bool = True) -> Signer:
    return Signer(name, f"targets/{name}", active, frozenset(teams))


def key(owner: str, *, revoked: bool = False) -> SignerKey:
    return SignerKey(owner, True, revoked, NOW - 365 * DAY, NOW + 365 * DAY)


# ann, ben and cat are in security (cat in ci too), dan in ci; ann has two keys.
PEOPLE = Identities(
    signers={
        s.role: s
        for s in (
            signer("ann", "security"),
            signer("ben", "security"),
            signer("cat", "security", "ci"),
            signer("dan", "ci"),
        )
    },
    keys={
        "key-ann": key("ann"),
        "key-ann-2": key("ann"),
        "key-ben": key("ben"),
        "key-cat": key("cat"),
        "key-dan": key("dan"),
    },
)


def signed(*signatures: tuple[str, set[str]], tag: str = "1.0", digest: str = A) -> TrustData:
    """``tag`` = ``digest`` in releases and in each given person's own role, signed by
    the given keys: ``signed(("ann", {"key-ann"}))``."""
    roles = {
        "targets/releases": RoleData({tag: digest}, frozenset({RELEASES_KEY}), "f-releases"),
        **{
            f"targets/{name}": RoleData({tag: digest}, frozenset(keys), f"f-{name}")
            for name, keys in signatures
        },
    }
    return TrustData(root_pinned=True, roles=roles)


def check(
    image: str,
    rules: Policy,
    data: TrustData | None,
    *,
    namespace: str | None = None,
    ids: Identities = PEOPLE,
) -> Evaluation:
    return evaluate(parse_image_reference(image), rules, data, ids, namespace=namespace, now=NOW)


def winner(rules: Policy, gun: str, namespace: str | None = None) -> str:
    """The name of the rule that applies; ``rule_for`` (admission's) must agree."""
    applied = rules.applied(gun, namespace)
    assert rules.rule_for(gun, namespace) == applied.rule
    return applied.rule.name


# --- Precedence -------------------------------------------------------------------------

EVERYWHERE = rule("everywhere", f"{REGISTRY}/**")
PROD_PATTERN = rule("prod-pattern", f"{REGISTRY}/**", namespaces=("prod-*",))
PROD_EU = rule("prod-eu", f"{REGISTRY}/**", namespaces=("prod-eu",))


@pytest.mark.parametrize(
    ("namespace", "expected"),
    [
        ("prod-eu", "prod-eu"),
        ("prod-us", "prod-pattern"),
        ("dev", "everywhere"),
        (None, "everywhere"),
    ],
)
def test_exact_namespace_beats_a_namespace_pattern_beats_every_namespace(namespace, expected):
    # Listed from the least specific on: position decides nothing here.
    rules = policy(EVERYWHERE, PROD_PATTERN, PROD_EU)
    assert winner(rules, GUN, namespace) == expected


def test_the_namespace_counts_before_the_image():
    exact_image = rule("exact-image", GUN)
    prod = rule("prod", namespaces=("prod",), mode=OFF)
    rules = policy(exact_image, prod)
    assert winner(rules, GUN, "prod") == "prod"
    assert winner(rules, GUN, "dev") == "exact-image"
    assert winner(rules, f"{REGISTRY}/team/web", "dev") == DEFAULT_RULE


def test_an_exact_image_beats_a_pattern_listed_before_it():
    rules = policy(rule("pattern", f"{REGISTRY}/team/*"), rule("exact", GUN))
    assert winner(rules, GUN) == "exact"
    assert winner(rules, f"{REGISTRY}/team/web") == "pattern"


@pytest.mark.parametrize(
    ("gun", "expected"),
    [
        (GUN, "ap-one-char"),  # 28 literal characters
        (f"{REGISTRY}/team/abc", "a-star"),  # 27
        (f"{REGISTRY}/team/web", "team-star"),  # 26
        (f"{REGISTRY}/other/app", "registry"),  # 21
    ],
)
def test_the_pattern_with_more_literal_characters_wins(gun, expected):
    rules = policy(
        rule("registry", f"{REGISTRY}/**"),
        rule("team-star", f"{REGISTRY}/team/*"),
        rule("a-star", f"{REGISTRY}/team/a*"),
        rule("ap-one-char", f"{REGISTRY}/team/ap?"),
    )
    assert winner(rules, gun) == expected


def test_a_rule_for_every_image_comes_after_image_rules_of_the_same_namespace_rank():
    rules = policy(
        rule("prod", namespaces=("prod",), mode=OFF),
        rule("prod-registry", f"{REGISTRY}/**", namespaces=("prod",)),
    )
    assert winner(rules, GUN, "prod") == "prod-registry"
    assert winner(rules, "docker.io/library/nginx", "prod") == "prod"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (rule("one", f"{REGISTRY}/team/*"), rule("two", f"{REGISTRY}/team/*")),
        # Different patterns, equally specific: 27 literal characters each.
        (rule("one", f"{REGISTRY}/team/a*"), rule("two", f"{REGISTRY}/team/*p")),
        (rule("one", namespaces=("prod",)), rule("two", namespaces=("prod",))),
    ],
)
def test_a_tie_goes_to_the_rule_listed_first(first, second):
    assert winner(policy(first, second), GUN, "prod") == "one"
    assert winner(policy(second, first), GUN, "prod") == "two"
    applied = policy(second, first).applied(GUN, "prod")
    assert (applied.position, applied.outranked) == (1, ("one",))


def test_the_default_rule_applies_when_no_rule_matches():
    rules = policy(
        rule("other", f"{REGISTRY}/other/*"),
        rule("dev", namespaces=("dev",)),
        default=PERMISSIVE,
        require=needs(("security", 1)),
    )
    applied = rules.applied(GUN, "prod")
    assert applied.rule == rules.default
    assert (applied.position, applied.namespace, applied.image) == (None, None, None)
    assert applied.why == "no rule's scope matches, so the default rule applies"
    assert applied.to_json()["name"] == DEFAULT_RULE
    result = check(f"{GUN}:1.0", rules, signed(("dan", {"key-dan"})), namespace="prod")
    assert (result.decision, result.mode) == (NOT_ENFORCED, PERMISSIVE)


def test_a_rule_scoped_to_namespaces_never_applies_without_a_namespace():
    rules = policy(
        rule("prod", namespaces=("prod",), mode=OFF),
        rule("prod-star", GUN, namespaces=("prod*",), mode=OFF),
        require=needs(("security", 1)),
    )
    assert winner(rules, GUN, "prod") == "prod"
    assert winner(rules, GUN, None) == DEFAULT_RULE
    # The evaluate API without a namespace: the default rule, enforced, denies.
    unsigned = signed(("dan", {"key-dan"}))
    assert check(f"{GUN}:1.0", rules, unsigned).decision == DENIED
    assert check(f"{GUN}:1.0", rules, unsigned, namespace="prod").decision == ALLOWED


def test_why_names_what_matched_and_every_rule_it_beat():
    rules = policy(
        EVERYWHERE,
        rule("team", f"{REGISTRY}/team/*"),
        rule("unrelated", f"{REGISTRY}/other/*"),
        PROD_PATTERN,
        rule("prod-app", GUN, namespaces=("prod-*",)),
    )
    applied = rules.applied(GUN, "prod-eu")
    assert applied.rule.name == "prod-app"
    assert applied.position == 5
    assert (applied.namespace, applied.image) == ("prod-*", GUN)
    assert applied.outranked == ("prod-pattern", "team", "everywhere")
    assert applied.why == (
        f"rule prod-app matches by namespace pattern prod-* and image pattern {GUN}; it is "
        "more specific than rule prod-pattern, rule team, rule everywhere"
    )
    assert applied.to_json()["outranked"] == ["prod-pattern", "team", "everywhere"]

    exact = policy(rule("prod", namespaces=("prod",)), EVERYWHERE).applied(GUN, "prod")
    assert exact.why == (
        "rule prod matches by namespace name prod and every image; it is more specific "
        "than rule everywhere"
    )
    alone = policy(EVERYWHERE).applied(GUN)
    assert alone.why == f"rule everywhere matches by image pattern {REGISTRY}/**"


def test_an_exempting_rule_says_why_in_the_evaluation():
    rules = policy(EVERYWHERE, rule("kube", namespaces=("kube-system",), mode=OFF))
    result = check(f"{GUN}:1.0", rules, None, namespace="kube-system")
    assert result.decision == ALLOWED
    assert result.examined is False
    assert result.reasons == (
        "exempt: rule kube matches by namespace name kube-system and every image; it is "
        "more specific than rule everywhere, and its mode is off",
    )


# --- Thresholds -------------------------------------------------------------------------

TWO_OF_SECURITY = policy(rule("two", GUN, require=needs(("security", 2))))


def test_two_of_security_is_met_by_two_distinct_members():
    result = check(
        f"{GUN}:1.0", TWO_OF_SECURITY, signed(("ann", {"key-ann"}), ("ben", {"key-ben"}))
    )
    assert result.decision == ALLOWED
    (team,) = result.teams
    assert (team.team, team.required, team.satisfied) == ("security", 2, True)
    assert {s.username for s in team.signers} == {"ann", "ben"}
    assert result.reasons == (
        f"team security: 2 distinct members (of 2 needed) signed sha256:{A} "
        "(ann in targets/ann, ben in targets/ben)",
    )
    (shown,) = result.to_json()["teams"]
    assert (shown["needed"], shown["signed"], shown["satisfied"]) == (2, 2, True)


@pytest.mark.parametrize(
    "signatures",
    [
        pytest.param((("ann", {"key-ann"}),), id="one-member"),
        pytest.param((("ann", {"key-ann", "key-ann-2"}),), id="one-member-two-keys"),
        pytest.param((("ann", {"key-ann"}), ("dan", {"key-dan"})), id="one-member-one-outsider"),
    ],
)
def test_one_member_of_two_needed_is_too_few_however_many_keys(signatures):
    result = check(f"{GUN}:1.0", TWO_OF_SECURITY, signed(*signatures))

    assert result.decision == DENIED
    (team,) = result.teams
    assert team.satisfied is False
    assert [(s.username, s.role) for s in team.signers] == [("ann", "targets/ann")]
    too_few = team.not_counted[0]
    assert too_few.reason == TOO_FEW
    assert too_few.detail == ("2 distinct members of security must sign it, and only 1 did (ann)")
    assert [n.reason for n in team.not_counted[1:]] == (
        [NOT_IN_TEAM] if "dan" in dict(signatures) else []
    )
    assert result.reasons[0] == POLICY_FAILED
    assert result.reasons[1].startswith(
        f"team security: fewer than 2 distinct current members signed sha256:{A} in their "
        "own role (2 distinct members of security must sign it, and only 1 did (ann)"
    )
    (shown,) = result.to_json()["teams"]
    assert (shown["needed"], shown["signed"]) == (2, 1)
    assert shown["not_counted"][0]["reason"] == TOO_FEW


def test_the_same_member_signing_twice_counts_once_toward_each_team():
    # cat is in security and ci: one signature, one member of each.
    rules = policy(rule("both", GUN, require=needs(("security", 2), ("ci", 1))))
    only_cat = check(f"{GUN}:1.0", rules, signed(("cat", {"key-cat"})))
    assert [(t.team, len(t.signers), t.satisfied) for t in only_cat.teams] == [
        ("security", 1, False),
        ("ci", 1, True),
    ]
    assert only_cat.decision == DENIED
    with_ann = check(f"{GUN}:1.0", rules, signed(("cat", {"key-cat"}), ("ann", {"key-ann"})))
    assert with_ann.decision == ALLOWED


@pytest.mark.parametrize(("match", "decision"), [(ALL, DENIED), (ANY, ALLOWED)])
def test_all_needs_every_team_and_any_needs_one(match, decision):
    rules = policy(rule("r", GUN, require=needs(("security", 1), ("ci", 1), match=match)))
    result = check(f"{GUN}:1.0", rules, signed(("ann", {"key-ann"})))
    assert result.decision == decision
    assert result.match == match
    assert [(t.team, t.satisfied) for t in result.teams] == [("security", True), ("ci", False)]
    if match == ANY:
        assert result.reasons == (f"team security: signed sha256:{A} (ann in targets/ann)",)
    else:
        assert result.reasons[0] == POLICY_FAILED
        assert result.reasons[1].startswith(f"team ci: no current member signed sha256:{A}")
    assert rules.rules[0].requirement.describe() == (
        "1 of security and 1 of ci" if match == ALL else "1 of security or 1 of ci"
    )


def test_any_fails_when_no_team_is_met():
    rules = policy(rule("r", GUN, require=needs(("security", 2), ("ci", 2), match=ANY)))
    result = check(f"{GUN}:1.0", rules, signed(("ann", {"key-ann"}), ("dan", {"key-dan"})))
    assert result.decision == DENIED
    assert [(t.team, len(t.signers)) for t in result.teams] == [("security", 1), ("ci", 1)]


def test_no_teams_passes_when_the_trust_data_names_the_digest():
    rules = policy(rule("named", GUN))
    result = check(f"{GUN}:1.0", rules, signed())
    assert result.decision == ALLOWED
    assert result.teams == ()
    assert result.reasons == (
        f"no signing teams are required; targets/releases names sha256:{A} for 1.0",
    )
    assert Requirement().describe() == "no signers"
    # Not named: nothing to trust.
    for image, data in ((f"{GUN}:2.0", signed()), (f"{GUN}:1.0", None)):
        assert check(image, rules, data).decision == DENIED


# --- The strictest mode, for an image that cannot be named ------------------------------


def test_strictest_mode_is_the_strictest_any_image_can_meet_in_the_namespace():
    rules = policy(
        rule("prod-images", f"{REGISTRY}/prod/**", namespaces=("prod",)),
        rule("kube", namespaces=("kube-system",), mode=OFF),
        rule("kube-critical", f"{REGISTRY}/critical", namespaces=("kube-*",)),
        rule("sandbox", namespaces=("sandbox",), mode=OFF),
        rule("sandbox-images", f"{REGISTRY}/sandbox/**", namespaces=("sandbox",), mode=PERMISSIVE),
        rule("prod-star", f"{REGISTRY}/**", namespaces=("prod-*",), mode=OFF),
        default=PERMISSIVE,
    )
    assert rules.strictest_mode("prod") == ENFORCED  # prod-images can apply
    assert rules.strictest_mode("dev") == PERMISSIVE  # only the default can
    # kube covers every image there, and outranks kube-critical (a namespace pattern).
    assert rules.strictest_mode("kube-system") == OFF
    assert rules.strictest_mode("kube-public") == ENFORCED
    assert rules.strictest_mode("sandbox") == PERMISSIVE
    assert rules.strictest_mode("prod-eu") == PERMISSIVE  # images outside registry: default
    assert rules.strictest_mode(None) == PERMISSIVE  # no namespaced rule applies
    assert dataclasses.replace(rules, enabled=False).strictest_mode("prod") == OFF


def test_strictest_mode_stops_at_the_first_rule_for_every_image():
    rules = policy(
        rule("prod", namespaces=("prod",), mode=OFF),
        rule("everything", f"{REGISTRY}/**"),
        default=ENFORCED,
    )
    assert rules.strictest_mode("prod") == OFF  # the default never applies in prod
    assert rules.strictest_mode("dev") == ENFORCED


# --- The document -----------------------------------------------------------------------

SCOPED = {"name": "ok", "images": [f"{REGISTRY}/ok/*"]}


def errors_of(document: object) -> dict[str, list[str]]:
    """The errors of ``document``, completed with what a whole policy must hold when it
    is an object, so each test's errors are its own."""
    if isinstance(document, dict):
        document = {"enabled": True, "default": {"require": {"teams": []}}, "rules": [], **document}
    with pytest.raises(DocumentError) as raised:
        policy_from_document(document)
    return raised.value.errors


def test_a_document_must_say_every_field_of_the_policy():
    with pytest.raises(DocumentError) as raised:
        policy_from_document({"version": 3})
    assert raised.value.errors == {
        field: ["This field is required: the document is the whole policy."]
        for field in ("enabled", "default", "rules")
    }


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [
        ({"rules": [{"name": "a", "images": ["Bad Pattern"]}]}, "rules[0].images[0]", "whitespace"),
        (
            {"rules": [SCOPED, {**SCOPED, "name": "b", "images": [f"{REGISTRY}/x:1.0"]}]},
            "rules[1].images[0]",
            "drop the tag",
        ),
        (
            {
                "rules": [
                    SCOPED,
                    {**SCOPED, "name": "b", "require": {"teams": [{"team": "s", "count": 0}]}},
                ]
            },
            "rules[1].require.teams[0].count",
            "whole number from 1 to 100",
        ),
        (
            {"default": {"require": {"teams": [{"team": "s", "count": True}]}}},
            "default.require.teams[0].count",
            "whole number",
        ),
        (
            {"default": {"require": {"teams": [{"team": "s"}, {"team": "s", "count": 2}]}}},
            "default.require.teams[1].team",
            "s is named twice",
        ),
        ({"rules": [SCOPED, SCOPED]}, "rules[1].name", "ok names two rules"),
        ({"rules": [{**SCOPED, "name": "default"}]}, "rules[0].name", "default rule's name"),
        ({"rules": [{**SCOPED, "name": "Has Caps"}]}, "rules[0].name", "lowercase"),
        ({"rules": [{**SCOPED, "colour": "red"}]}, "rules[0].colour", "not a field"),
        ({"colour": "red"}, "colour", "not a field"),
        ({"default": {"name": "x"}}, "default.name", "not a field"),
        ({"rules": [SCOPED, {**SCOPED, "name": "b", "mode": "on"}]}, "rules[1].mode", "'on'"),
        ({"rules": [{**SCOPED, "require": {"match": "some"}}]}, "rules[0].require.match", "all"),
        ({"rules": [{"name": "a"}]}, "rules[0].images", "scopes images, namespaces or both"),
        ({"rules": [{"name": "a", "namespaces": ["*"]}]}, "rules[0].namespaces[0]", "alone"),
        ({"rules": [{"name": "a", "namespaces": ["Prod"]}]}, "rules[0].namespaces[0]", "'Prod'"),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"rules": "all"}, "rules", "list of rules"),
        ("policy", "document", "must be an object"),
    ],
)
def test_every_error_names_its_path(document, path, words):
    errors = errors_of(document)
    assert path in errors, errors
    assert any(words in message for message in errors[path]), errors[path]


def test_all_the_errors_come_at_once():
    errors = errors_of(
        {
            "rules": [
                {"name": "default", "images": ["Bad Pattern"], "mode": "strict"},
                {"name": "ok", "namespaces": ["prod"], "require": {"teams": [{"count": 2}]}},
            ]
        }
    )
    assert set(errors) >= {
        "rules[0].name",
        "rules[0].images[0]",
        "rules[0].mode",
        "rules[1].require.teams[0].team",
    }


def test_a_bad_image_pattern_is_the_only_error_of_its_rule():
    assert errors_of({"rules": [{"name": "a", "images": ["Bad Pattern"], "mode": "off"}]}) == {
        "rules[0].images[0]": ["'Bad Pattern': it contains whitespace."]
    }


def test_yaml_off_read_as_false_is_taken_as_off():
    document = yaml.safe_load(
        f"""
        enabled: true
        default:
          mode: off
        rules:
          - name: public
            images: [{REGISTRY}/public/**]
            mode: off
          - name: prod
            namespaces: [prod]
            require:
              teams: [{{team: security, count: 2}}]
        """
    )
    assert document["default"]["mode"] is False  # what YAML 1.1 makes of it
    read = policy_from_document(document)
    assert read.default.mode == OFF
    assert [(r.name, r.mode) for r in read.rules] == [("public", OFF), ("prod", ENFORCED)]
    assert read.rules[1].requirement == needs(("security", 2))
    assert errors_of({"default": {"mode": True}}) == {
        "default.mode": ["must be one of enforced, permissive, off, not True."]
    }


def test_a_document_reads_back_as_the_policy_it_came_from():
    document = {
        "version": 7,  # the caller's: allowed, ignored
        "enabled": True,
        "default": {"mode": "permissive", "require": {"teams": [{"team": "ci"}]}},
        "rules": [
            {"name": "hub", "images": ["nginx", " docker.io/library/nginx "], "mode": "off"},
            {
                "name": "prod",
                "namespaces": ["prod", "prod-*", "prod"],
                "require": {"match": "any", "teams": [{"team": "security", "count": 2}]},
            },
        ],
    }
    read = policy_from_document(document)
    assert read.rules[0].images == ("docker.io/library/nginx",)  # as Docker reads names
    assert read.rules[1].namespaces == ("prod", "prod-*")
    assert read.rules[1].requirement == needs(("security", 2), match=ANY)
    assert read.team_names() == {"ci", "security"}
    assert policy_from_document(policy_document(read)) == read


def test_readable_says_each_rule_in_words():
    rules = policy(
        rule("prod", namespaces=("prod", "prod-*"), require=needs(("security", 2), ("ci", 1))),
        rule("public", f"{REGISTRY}/public/**", mode=OFF),
    )
    assert readable(rules) == {
        "enabled": True,
        "default": {"mode": ENFORCED, "require": "no signers"},
        "rules": {
            "prod": {
                "position": 1,
                "images": "every image",
                "namespaces": "prod, prod-*",
                "mode": ENFORCED,
                "require": "2 of security and 1 of ci",
            },
            "public": {
                "position": 2,
                "images": f"{REGISTRY}/public/**",
                "namespaces": "every namespace",
                "mode": OFF,
                "require": "no signers",
            },
        },
    }


# --- UCP's settings ---------------------------------------------------------------------

PROD_RULE = rule("prod", namespaces=("prod",), require=needs(("security", 2)))
CRITICAL = rule("critical", f"{REGISTRY}/critical/*", require=needs(("security", 1)))
CANONICAL = Policy(
    enabled=True,
    default=Rule(DEFAULT_RULE, ENFORCED, needs(("ci", 1), ("security", 2))),
    rules=(
        PROD_RULE,
        rule(EXEMPT_REPOSITORIES, f"{REGISTRY}/public/**", mode=OFF),
        CRITICAL,
        rule(EXEMPT_NAMESPACES, namespaces=("kube-system", "sandbox-*"), mode=OFF),
    ),
)


def test_ucp_settings_are_the_default_rule_and_the_exemptions():
    assert ucp_settings(CANONICAL) == {
        "enabled": True,
        "mode": ENFORCED,
        "signing_teams": ["ci", "security"],
        "allow_repos": [f"{REGISTRY}/public/**"],
        "exempt_namespaces": ["kube-system", "sandbox-*"],
    }


def test_ucp_settings_round_trip():
    assert with_ucp_settings(CANONICAL, **ucp_settings(CANONICAL)) == CANONICAL


def test_changing_ucp_settings_keeps_every_other_rule_where_it_stood():
    changed = with_ucp_settings(
        CANONICAL,
        enabled=True,
        mode=PERMISSIVE,
        signing_teams=["security", "dev"],
        allow_repos=[f"{REGISTRY}/public/**", f"{REGISTRY}/mirror/**"],
        exempt_namespaces=["kube-system"],
    )
    assert changed.default == Rule(DEFAULT_RULE, PERMISSIVE, needs(("security", 2), ("dev", 1)))
    assert changed.rules == (
        PROD_RULE,
        rule(EXEMPT_REPOSITORIES, f"{REGISTRY}/public/**", f"{REGISTRY}/mirror/**", mode=OFF),
        CRITICAL,
        rule(EXEMPT_NAMESPACES, namespaces=("kube-system",), mode=OFF),
    )
    # exempt_namespaces not given: kept as they are.
    kept = with_ucp_settings(CANONICAL, enabled=False, mode=OFF, signing_teams=[], allow_repos=[])
    assert kept.rules == (PROD_RULE, CRITICAL, CANONICAL.rules[3])
    assert kept.default == Rule(DEFAULT_RULE, OFF, Requirement())


def test_several_exemption_rules_become_one_where_the_first_stood():
    rules = policy(
        PROD_RULE,
        rule("public", f"{REGISTRY}/public/**", mode=OFF),
        CRITICAL,
        rule("mirror", f"{REGISTRY}/mirror/**", mode=OFF),
    )
    settings_now = ucp_settings(rules)
    assert settings_now["allow_repos"] == [f"{REGISTRY}/public/**", f"{REGISTRY}/mirror/**"]
    assert with_ucp_settings(rules, **settings_now) == rules  # unchanged: left as it is
    wanted = [f"{REGISTRY}/public/**", f"{REGISTRY}/mirror/**", f"{REGISTRY}/cache/**"]
    merged = with_ucp_settings(rules, **{**settings_now, "allow_repos": wanted})
    assert [r.name for r in merged.rules] == ["prod", EXEMPT_REPOSITORIES, "critical"]
    assert merged.rules[1].images == tuple(wanted)
    assert ucp_settings(merged) == {**settings_now, "allow_repos": wanted}


def test_a_new_exemption_rule_comes_last_under_a_name_no_rule_holds():
    rules = policy(rule(EXEMPT_REPOSITORIES, f"{REGISTRY}/a/*", require=needs(("ci", 1))))
    added = with_ucp_settings(
        rules,
        enabled=True,
        mode=ENFORCED,
        signing_teams=[],
        allow_repos=[f"{REGISTRY}/public/**"],
        exempt_namespaces=["kube-system"],
    )
    assert [(r.name, r.mode) for r in added.rules] == [
        (EXEMPT_REPOSITORIES, ENFORCED),
        (f"{EXEMPT_REPOSITORIES}-1", OFF),
        (EXEMPT_NAMESPACES, OFF),
    ]
    assert policy_from_document(policy_document(added)) == added


def test_replacing_an_exemption_rule_in_place_never_duplicates_a_name():
    rules = policy(
        rule(EXEMPT_REPOSITORIES, f"{REGISTRY}/a/*", require=needs(("ci", 1))),
        rule("public", f"{REGISTRY}/public/**", mode=OFF),
    )
    replaced = with_ucp_settings(
        rules, **{**ucp_settings(rules), "allow_repos": [f"{REGISTRY}/other/**"]}
    )
    names = [r.name for r in replaced.rules]
    assert len(set(names)) == len(names), names
    assert policy_from_document(policy_document(replaced)) == replaced


def test_saving_ucp_settings_unchanged_changes_nothing():
    rules = Policy(
        enabled=True,
        default=Rule(DEFAULT_RULE, ENFORCED, needs(("security", 1), ("ci", 1))),
        rules=(PROD_RULE, rule("public", f"{REGISTRY}/public/**", mode=OFF)),
    )
    assert readable(with_ucp_settings(rules, **ucp_settings(rules))) == readable(rules)


# --- Properties -------------------------------------------------------------------------

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no example database in the work tree
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # conftest's autouse ones
)

USERS = ("ann", "ben", "cat", "dan")
TEAMS = ("security", "ci")
GUNS = (GUN, f"{REGISTRY}/team/web", f"{REGISTRY}/other/app", "docker.io/library/nginx")
NAMESPACES = (None, "prod", "prod-eu", "dev", "kube-system")
IMAGE_PATTERNS = (
    GUN,
    f"{REGISTRY}/team/*",
    f"{REGISTRY}/team/a*",
    f"{REGISTRY}/te??/*",
    f"{REGISTRY}/*/app",
    f"{REGISTRY}/**",
    "docker.io/library/nginx",
)
NAMESPACE_PATTERNS = ("prod", "prod-*", "*-eu", "dev", "kube-system")

mostly_true = st.sampled_from((True,) * 5 + (False,))


@st.composite
def people(draw) -> tuple[TrustData, Identities]:
    """Up to four people in security and/or ci, each with one or two keys (rarely revoked),
    who usually signed 1.0 = A in their own role."""
    signers, keys, roles = {}, {}, {}
    roles["targets/releases"] = RoleData({"1.0": A}, frozenset({RELEASES_KEY}), "f-releases")
    for user in USERS:
        teams = draw(st.frozensets(st.sampled_from(TEAMS)))
        signers[f"targets/{user}"] = Signer(user, f"targets/{user}", draw(mostly_true), teams)
        own = [f"key-{user}", f"key-{user}-2"][: draw(st.integers(1, 2))]
        for key_id in own:
            keys[key_id] = key(user, revoked=not draw(mostly_true))
        if draw(mostly_true):
            digest = draw(st.sampled_from((A, A, A, B)))
            by = draw(st.frozensets(st.sampled_from(own), min_size=1))
            roles[f"targets/{user}"] = RoleData({"1.0": digest}, by, f"f-{user}")
    return TrustData(root_pinned=draw(mostly_true), roles=roles), Identities(signers, keys)


@st.composite
def requirements(draw) -> Requirement:
    teams = draw(st.lists(st.sampled_from(TEAMS), unique=True, max_size=2))
    return Requirement(
        tuple(TeamQuota(team, draw(st.integers(1, 3))) for team in teams),
        draw(st.sampled_from((ALL, ANY))),
    )


@st.composite
def rules_of(draw, name: str) -> Rule:
    images = tuple(draw(st.lists(st.sampled_from(IMAGE_PATTERNS), unique=True, max_size=2)))
    namespaces = tuple(
        draw(
            st.lists(
                st.sampled_from(NAMESPACE_PATTERNS),
                unique=True,
                min_size=0 if images else 1,
                max_size=2,
            )
        )
    )
    return Rule(name, draw(st.sampled_from(RULE_MODES)), draw(requirements()), images, namespaces)


@st.composite
def policies(draw) -> Policy:
    count = draw(st.integers(0, 4))
    return Policy(
        enabled=True,
        default=Rule(DEFAULT_RULE, draw(st.sampled_from(RULE_MODES)), draw(requirements())),
        rules=tuple(draw(rules_of(f"rule-{n}")) for n in range(count)),
    )


def in_scope(candidate: Rule, gun: str, namespace: str | None) -> bool:
    """Whether ``candidate``'s scope matches, by the rule as stated (not the code's)."""
    if candidate.namespaces and not (
        namespace is not None
        and any(fnmatch.fnmatchcase(namespace, pattern) for pattern in candidate.namespaces)
    ):
        return False
    return not candidate.images or any(
        name_patterns.pattern_matches(pattern, gun) for pattern in candidate.images
    )


def outcome(result: Evaluation) -> tuple:
    """What a user sees of a decision, but the rule's position (which moves when rules are
    added before it)."""
    applied = result.rule
    assert applied is not None
    return (
        result.decision,
        result.mode,
        result.reasons,
        result.teams,
        applied.rule,
        applied.outranked,
        applied.why,
    )


@PROPERTY
@given(policies(), rules_of("added"), st.integers(0, 4), people())
def test_property_adding_a_rule_changes_nothing_outside_its_scope(before, added, at, signed_by):
    data, ids = signed_by
    at = min(at, len(before.rules))
    after = dataclasses.replace(before, rules=(*before.rules[:at], added, *before.rules[at:]))
    for gun in GUNS:
        for namespace in NAMESPACES:
            if in_scope(added, gun, namespace):
                continue
            image = f"{gun}:1.0"
            old = check(image, before, data, namespace=namespace, ids=ids)
            new = check(image, after, data, namespace=namespace, ids=ids)
            assert outcome(new) == outcome(old), (gun, namespace)


TIGHTENINGS = ("raise-count", "add-team", "stricter-mode", "any-to-all", "drop-team-under-any")


@st.composite
def tightened(draw, looser: Rule) -> Rule:
    """``looser`` made stricter by up to three of the changes above."""
    stricter = looser
    for change in draw(st.lists(st.sampled_from(TIGHTENINGS), min_size=1, max_size=3)):
        requirement = stricter.requirement
        quotas = list(requirement.teams)
        if change == "raise-count" and quotas:
            at = draw(st.integers(0, len(quotas) - 1))
            quotas[at] = TeamQuota(quotas[at].team, quotas[at].count + draw(st.integers(1, 2)))
        elif change == "add-team" and requirement.match == ALL:
            missing = [team for team in TEAMS if team not in {q.team for q in quotas}]
            if missing:
                quotas.append(TeamQuota(draw(st.sampled_from(missing)), draw(st.integers(1, 2))))
        elif change == "stricter-mode":
            modes = [m for m in RULE_MODES if STRICTNESS[m] > STRICTNESS[stricter.mode]]
            if modes:
                stricter = dataclasses.replace(stricter, mode=draw(st.sampled_from(modes)))
        elif change == "any-to-all" and quotas:
            requirement = dataclasses.replace(requirement, match=ALL)
        elif change == "drop-team-under-any" and requirement.match == ANY and len(quotas) > 1:
            quotas.pop(draw(st.integers(0, len(quotas) - 1)))
        stricter = dataclasses.replace(
            stricter, requirement=dataclasses.replace(requirement, teams=tuple(quotas))
        )
    return stricter


@PROPERTY
@given(st.data(), rules_of("looser"), people(), st.sampled_from(NAMESPACES))
def test_property_a_stricter_rule_never_allows_what_the_looser_one_denied(
    data, looser, signed_by, namespace
):
    trust_data, ids = signed_by
    stricter = data.draw(tightened(looser))
    base = policy(default=PERMISSIVE, require=needs(("security", 1)))
    for gun in GUNS:
        image = f"{gun}:1.0"
        loose = check(
            image,
            dataclasses.replace(base, rules=(looser,)),
            trust_data,
            namespace=namespace,
            ids=ids,
        )
        strict = check(
            image,
            dataclasses.replace(base, rules=(stricter,)),
            trust_data,
            namespace=namespace,
            ids=ids,
        )
        assert loose.allowed or not strict.allowed, (gun, loose.reasons, strict.reasons)
        assert loose.decision == ALLOWED or strict.decision != ALLOWED, (gun, loose, strict)


@PROPERTY
@given(policies())
def test_property_admission_s_shortcuts_agree_with_the_full_explanation(rules):
    """``rule_for`` is ``applied(...).rule``, and no image's rule in a namespace is
    stricter than ``strictest_mode`` says an unnamed image's is."""
    for namespace in NAMESPACES:
        strictest = STRICTNESS[rules.strictest_mode(namespace)]
        for gun in GUNS:
            applied = rules.applied(gun, namespace)
            assert rules.rule_for(gun, namespace) == applied.rule
            assert STRICTNESS[applied.rule.mode] <= strictest


# --- What an outside review found -------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        f"{REGISTRY}:443/prod/app",  # https's own port: the same registry
        f"{REGISTRY}/prod/app",
    ],
)
def test_another_spelling_of_the_registry_cannot_slip_past_a_rule(image):
    prod = rule("prod", f"{REGISTRY}/prod/**", require=needs(("security", 1)))
    hub = rule("nginx", "nginx", require=needs(("security", 1)))
    rules = policy(prod, hub, default=PERMISSIVE)
    assert rules.applied(image).rule.name == "prod"
    assert rules.applied("registry-1.docker.io/library/nginx").rule.name == "nginx"
    assert rules.applied(f"{REGISTRY}:5000/prod/app").rule.name == DEFAULT_RULE  # another port


def test_a_rule_that_checks_must_say_who_signs():
    with pytest.raises(DocumentError) as raised:
        policy_from_document(
            {
                "enabled": True,
                "default": {"mode": "enforced"},
                "rules": [
                    {"name": "prod", "namespaces": ["prod"], "require": {"match": "any"}},
                    {"name": "public", "images": [f"{REGISTRY}/public/**"], "mode": "off"},
                ],
            }
        )
    required = "This field is required: name the teams that must sign, or give [] for none."
    assert raised.value.errors == {
        "default.require.teams": [required],
        "rules[0].require.teams": [required],
    }


def test_a_policy_holds_at_most_a_thousand_image_patterns_in_all():
    rules = [
        {
            "name": f"r{number}",
            "images": [f"{REGISTRY}/team{number}/app{index}" for index in range(200)],
            "mode": "off",
        }
        for number in range(6)
    ]
    assert errors_of({"rules": rules}) == {
        "rules": ["hold at most 1,000 image patterns in all, not 1,200."]
    }
    big = policy_from_document(
        {"enabled": True, "default": {"require": {"teams": []}}, "rules": rules[:5]}
    )
    assert big.applied(f"{REGISTRY}/team4/app199").rule.name == "r4"


def test_an_image_rule_enforced_over_a_default_that_is_not_can_be_escaped():
    prod = rule("prod", f"{REGISTRY}/prod/**", require=needs(("security", 1)))
    only_namespace = rule("ns", namespaces=("prod",), require=needs(("security", 1)))
    assert policy(prod, default=PERMISSIVE).escapable
    assert policy(prod, default=OFF).escapable
    assert not policy(prod, default=ENFORCED).escapable
    assert not policy(prod, default=PERMISSIVE, enabled=False).escapable
    assert not policy(only_namespace, default=PERMISSIVE).escapable  # every image there
