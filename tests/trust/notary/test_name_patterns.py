"""GUN patterns: exemptions match by path component; root pin prefixes."""

import fnmatch

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.trust.notary.names import COMPONENT, DOMAIN, FULL_NAMES
from trust.notary import name_patterns
from trust.notary.name_patterns import parse_gun_prefix, parse_pattern, pattern_matches
from trust.notary.references import InvalidName, InvalidPattern

# --- Exemption patterns -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "normalised"),
    [
        ("registry.example.com/sandbox/**", "registry.example.com/sandbox/**"),
        ("registry.example.com/sandbox/*", "registry.example.com/sandbox/*"),
        ("*.example.com/**", "*.example.com/**"),
        ("registry-?.example.com:5000/ci/*", "registry-?.example.com:5000/ci/*"),
        ("localhost:5000/**", "localhost:5000/**"),
        ("nginx", "docker.io/library/nginx"),
        ("ci/*", "docker.io/ci/*"),
        ("docker.io/*", "docker.io/library/*"),
        ("docker.io/**", "docker.io/**"),
        ("index.docker.io/ci/**", "docker.io/ci/**"),
        ("registry.example.com/**/app", "registry.example.com/**/app"),
        ("registry.example.com/ci/app-*", "registry.example.com/ci/app-*"),
    ],
)
def test_patterns_are_normalised_as_docker_reads_names(pattern: str, normalised: str):
    assert parse_pattern(pattern) == normalised
    assert parse_pattern(normalised) == normalised


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("*", "would match every repository"),
        ("**", "would match every repository"),
        ("**/**", "would match every repository"),
        ("*/**", "would match every repository"),
        ("?*/*", "would match every repository"),
        ("*.*/**", "at least one label as written"),
        ("*:5000/**", "at least one label as written"),
        ("ci-*/app", "must stay inside a registry host"),
        ("ngin*", "must stay inside a registry host"),
        ("registry.example.com", "a registry alone names no repository"),
        ("registry.example.com/a**", "** stands alone"),
        ("registry.example.com/**.x", "** stands alone"),
        ("registry.example.com/-*", "path component '-*'"),
        ("registry.example.com/[ab]", "path component '[ab]'"),
        ("registry.example.com/Ci/*", "must be lowercase"),
        ("Registry.example.com/**", "must be lowercase"),
        ("[::*]/app", "IPv6"),
        ("registry.example.com//app", "empty component"),
        ("registry.example.com/app:1.0", "drop the tag"),
        ("registry.example.com/app@sha256:abc", "drop the tag or digest"),
        ("registry.example.com/a b", "whitespace"),
        ("", "give a pattern"),
        ("registry.example.com/" + "a" * 300, "at most 255 characters, not 321"),
        ("a" * 250, "at most 255 characters"),  # once docker.io/library/ is added
    ],
)
def test_bad_patterns_are_refused_saying_why(pattern: str, why: str):
    with pytest.raises(InvalidPattern) as raised:
        parse_pattern(pattern)
    assert why in str(raised.value)
    assert pattern[:60] not in str(raised.value) or len(pattern) <= 40
    assert name_patterns.pattern_matcher(pattern) is None
    assert not pattern_matches(pattern, "registry.example.com/a")


@pytest.mark.parametrize(
    ("pattern", "gun", "matches"),
    [
        # * stays within its component: the registry's name cannot come later in the path.
        ("*.example.com/*", "evil.io/x.example.com/y", False),
        ("*.example.com/*", "registry.example.com/y", True),
        ("*.example.com/*", "a.b.example.com/y", True),
        ("*.example.com/*", "registry.example.com/y/z", False),
        ("*.example.com/**", "registry.example.com/y/z", True),
        ("*.example.com/**", "registry.example.com:5000/y", False),
        ("registry.example.com/public/*", "registry.example.com/public/app", True),
        ("registry.example.com/public/*", "registry.example.com/public/a/b", False),
        ("registry.example.com/public/*", "registry.example.com/publicity/app", False),
        ("registry.example.com/public/**", "registry.example.com/public/a/b/c", True),
        ("registry.example.com/public/**", "registry.example.com/public", True),
        ("registry.example.com/public/**", "registry.example.com/publicity/a", False),
        ("registry.example.com/**/app", "registry.example.com/app", True),
        ("registry.example.com/**/app", "registry.example.com/a/b/app", True),
        ("registry.example.com/**/app", "registry.example.com/a/b/app2", False),
        ("registry.example.com/ci/app-?", "registry.example.com/ci/app-1", True),
        ("registry.example.com/ci/app-?", "registry.example.com/ci/app-12", False),
        ("registry.example.com:*/**", "registry.example.com:5000/a", True),
        ("localhost:5000/**", "localhost:5000/ci/web", True),
        ("[::1]:5000/**", "[::1]:5000/app", True),
        # Short forms match what Docker makes of them.
        ("nginx", "docker.io/library/nginx", True),
        ("nginx", "docker.io/nginx/nginx", False),
        ("ci/*", "docker.io/ci/app", True),
        ("docker.io/*", "docker.io/library/nginx", True),
        ("docker.io/*", "docker.io/ci/app", False),
        ("docker.io/**", "docker.io/ci/app", True),
        # A legacy pattern the grammar refuses matches nothing.
        ("*", "registry.example.com/a", False),
        ("registry.example.com/[ab]pp", "registry.example.com/app", False),
    ],
)
def test_patterns_match_component_by_component(pattern: str, gun: str, matches: bool):
    assert pattern_matches(pattern, gun) is matches


def component_glob_matches(pattern: str, gun: str) -> bool:
    """The rule written out apart from the module: each pattern component fnmatches one
    GUN component, and ``**`` any number of them."""
    wanted, parts = pattern.split("/"), gun.split("/")

    def match(i: int, j: int) -> bool:
        if i == len(wanted):
            return j == len(parts)
        if wanted[i] == "**":
            return any(match(i + 1, k) for k in range(j, len(parts) + 1))
        return j < len(parts) and fnmatch.fnmatchcase(parts[j], wanted[i]) and match(i + 1, j + 1)

    return match(0, 0)


GLOB_COMPONENT = st.one_of(
    COMPONENT,
    st.just("*"),
    st.just("**"),
    st.from_regex(r"[a-z]{1,3}[*?]", fullmatch=True),
    st.from_regex(r"[*?][a-z]{1,3}", fullmatch=True),
)


@hypothesis_settings(max_examples=500, deadline=None)
@given(
    domain=st.sampled_from(["r.io", "*.r.io", "r.io:5000", "x?.r.io"]),
    globs=st.lists(GLOB_COMPONENT, min_size=1, max_size=4),
    gun=FULL_NAMES,
)
def test_matching_is_fnmatch_per_component(domain, globs, gun):
    pattern = "/".join([domain, *globs])
    try:
        normalised = parse_pattern(pattern)
    except InvalidPattern:
        return
    assert pattern_matches(pattern, gun) is component_glob_matches(normalised, gun)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    domain=DOMAIN,
    path=st.lists(COMPONENT, min_size=2, max_size=4),
    glob=st.from_regex(r"[a-z0-9.*?-]{0,3}\*[a-z0-9.*?-]{0,3}", fullmatch=True),
)
def test_a_star_never_crosses_a_slash(domain, path, glob):
    """Whatever is around it, a ``*`` covers part of one component only: one component
    of wildcards never matches a path of two or more."""
    if "**" in glob:
        return
    assert not pattern_matches(f"{domain}/{glob}", "/".join([domain, *path]))


# --- Root key pin prefixes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "normalised"),
    [
        ("registry.example.com/", "registry.example.com/"),
        ("registry.example.com/ci/app-", "registry.example.com/ci/app-"),
        ("registry.example.com:5000/ci/", "registry.example.com:5000/ci/"),
        ("localhost:5000/", "localhost:5000/"),
        ("registry.exa", "registry.exa"),  # a prefix of registry hosts
        ("registry.example.com:", "registry.example.com:"),
        ("ci/", "docker.io/ci/"),
        ("ci/ap", "docker.io/ci/ap"),
        ("index.docker.io/ci/", "docker.io/ci/"),
    ],
)
def test_pin_prefixes_normalise_their_gun_part(prefix: str, normalised: str):
    assert parse_gun_prefix(prefix) == normalised


@pytest.mark.parametrize(
    ("prefix", "why"),
    [
        ("../", "is not a valid host[:port]"),
        ("registry.example.com/../", "path component '..'"),
        ("registry.example.com//", "empty component"),
        ("/registry.example.com/", "empty component"),
        ("registry.example.com/-", "path component '-'"),
        ("Registry.example.com/", "must be lowercase"),
        ("-x", "no registry host starts with"),
        ("registry.example.com/c i", "whitespace"),
    ],
)
def test_bad_pin_prefixes_are_refused(prefix: str, why: str):
    with pytest.raises(InvalidName) as raised:
        parse_gun_prefix(prefix)
    assert why in str(raised.value)
