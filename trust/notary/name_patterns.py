"""GUN patterns, for exemptions and root key pins: Docker's name grammar with wildcards.

A pattern is a GUN whose components may hold wildcards: ``*`` (any run of characters) and
``?`` (one character) stay within their component, and a whole component ``**`` stands
for any number of components, none included. The registry host may hold wildcards only
when it still names a host: it has a '.' or ':' and keeps at least one label as written
(``*.example.com``). Short names are normalised as Docker normalises them.

Pure: no Django, no I/O.
"""

import functools
import re

from trust.notary.references import (
    COMPONENT,
    COMPONENT_RULE,
    DEFAULT_DOMAIN,
    DOMAIN,
    LABEL,
    LEGACY_DEFAULT_DOMAIN,
    LOCALHOST,
    NAME_MAX,
    OFFICIAL_NAMESPACE,
    SHOWN_MAX,
    SPACE,
    InvalidName,
    InvalidPattern,
    component_error,
    domain_error,
    is_domain_like,
    shown,
)

WILDCARDS = "*?"
ANY_DEPTH = "**"


def _literal(glob: str) -> str:
    """The glob with each wildcard read as a digit (which a label, a port and a path
    component all take): what the grammar then checks."""
    return glob.replace("*", "0").replace("?", "0")


def _has_wildcard(text: str) -> bool:
    return any(c in text for c in WILDCARDS)


def _pattern_domain_error(domain: str) -> str | None:
    if not _has_wildcard(domain):
        return domain_error(domain)
    if domain.startswith("["):
        return "a wildcard cannot stand in an IPv6 address"
    host = domain.rsplit(":", 1)[0] if ":" in domain else domain
    if not any(LABEL.fullmatch(label) for label in host.split(".")):
        return (
            f"registry host {shown(domain)} must keep at least one label as written, such "
            "as *.example.com"
        )
    return domain_error(_literal(domain))


def _pattern_component_error(component: str) -> str | None:
    if component == ANY_DEPTH:
        return None
    if ANY_DEPTH in component:
        return "** stands alone between slashes, as in registry.example.com/ci/**"
    literal = _literal(component)
    if not component:
        return component_error(component)
    if COMPONENT.fullmatch(literal):
        return None
    if COMPONENT.fullmatch(literal.lower()):
        return "repository name must be lowercase"
    return f"path component {shown(component)} must be {COMPONENT_RULE}, * and ? as wildcards"


def parse_pattern(text: str) -> str:
    """The pattern as Docker's normalisation reads it (``nginx`` →
    ``docker.io/library/nginx``, ``ci/*`` → ``docker.io/ci/*``), or ``InvalidPattern``.

    Refused: a pattern longer than ``NAME_MAX``; one whose first component is all
    wildcards (it would exempt every registry); a wildcard before the first ``/`` that is
    not inside a registry host (``ci-*/app``: write ``docker.io/ci-*/app``); a tag, a
    digest, whitespace, and anything Docker's grammar refuses.
    """
    if not text:
        raise InvalidPattern("give a pattern, such as registry.example.com/sandbox/**")
    if len(text) > NAME_MAX:
        raise InvalidPattern(f"a pattern is at most {NAME_MAX} characters, not {len(text)}")
    if SPACE.search(text):
        raise InvalidPattern("it contains whitespace")
    if "@" in text or text.rfind(":") > text.rfind("/"):
        raise InvalidPattern("a pattern names repositories: drop the tag or digest")
    components = text.split("/")
    first = components[0]
    if first and not first.strip(WILDCARDS):
        raise InvalidPattern(
            "it would match every repository of every registry; name the registry, such "
            "as registry.example.com/sandbox/**"
        )
    if len(components) > 1 and is_domain_like(first):
        domain, path = first, components[1:]
    elif _has_wildcard(first):
        raise InvalidPattern(
            "a wildcard before the first '/' must stay inside a registry host (one with a "
            "'.' or ':', such as *.example.com/**); for Docker Hub start the pattern with "
            f"{DEFAULT_DOMAIN}/"
        )
    elif len(components) == 1 and ("." in first or first == LOCALHOST):
        raise InvalidPattern(
            "a registry alone names no repository: write it as registry.example.com/** for "
            f"all of its repositories (Docker reads a single name as {DEFAULT_DOMAIN}/"
            f"{OFFICIAL_NAMESPACE}/<name>)"
        )
    else:
        domain, path = DEFAULT_DOMAIN, components
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    why = _pattern_domain_error(domain)
    for component in path:
        why = why or _pattern_component_error(component)
    if why is not None:
        raise InvalidPattern(why)
    if domain == DEFAULT_DOMAIN and len(path) == 1 and path[0] != ANY_DEPTH:
        path = [OFFICIAL_NAMESPACE, *path]
    pattern = "/".join([domain, *path])
    if len(pattern) > NAME_MAX:
        raise InvalidPattern(
            f"a pattern is at most {NAME_MAX} characters, and {pattern[:SHOWN_MAX]}… (as "
            f"Docker normalises it) is {len(pattern)}"
        )
    return pattern


def _component_regex(glob: str) -> str:
    """One component (and the ``/`` after it), its wildcards kept within it."""
    if glob == ANY_DEPTH:
        return "(?:[^/]+/)*"
    return (
        "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in glob) + "/"
    )


@functools.lru_cache(maxsize=4096)
def pattern_matcher(pattern: str) -> re.Pattern[str] | None:
    """What matches ``gun + "/"`` when ``pattern`` matches ``gun``; None for a pattern the
    grammar refuses (one stored by an earlier version), which then matches nothing."""
    try:
        normalised = parse_pattern(pattern)
    except InvalidPattern:
        return None
    return re.compile("".join(_component_regex(c) for c in normalised.split("/")))


# Other names of registries: Docker Hub's API host, and any host with https's own port.
REGISTRY_ALIASES = {"registry-1.docker.io": DEFAULT_DOMAIN}
HTTPS_PORT = ":443"


def matched_name(gun: str) -> str:
    """The GUN as patterns match it: ``host:443/...`` is ``host/...`` and
    ``registry-1.docker.io/...`` is ``docker.io/...``, since each reaches the same registry,
    so another spelling cannot slip an image past a rule. Trust data is still read under
    the GUN as written: Notary keeps each spelling apart."""
    host, slash, path = gun.partition("/")
    if host.endswith(HTTPS_PORT):
        host = host.removesuffix(HTTPS_PORT)
    return REGISTRY_ALIASES.get(host, host) + slash + path


def pattern_matches(pattern: str, gun: str) -> bool:
    """Whether ``pattern`` (normalised or not) matches the GUN, component by component."""
    matcher = pattern_matcher(pattern)
    return matcher is not None and matcher.fullmatch(matched_name(gun) + "/") is not None


# --- Root key pin prefixes --------------------------------------------------------------
#
# Root key pins keep Notary's own rule (an exact GUN, or a plain string prefix ending in
# ``*``); only the GUN part is read by this grammar.


def _domain_prefix_ok(prefix: str) -> bool:
    """Whether some valid registry host[:port] starts with ``prefix``."""
    return any(DOMAIN.fullmatch(prefix + end) for end in ("", "a", "0", "]", "a]"))


def parse_gun_prefix(prefix: str) -> str:
    """A GUN prefix (a pin pattern without its ``*``), normalised as Docker would the
    GUNs it is a prefix of: ``ci/`` → ``docker.io/ci/``. Without a ``/`` it is a prefix of
    registry hosts, kept as it is. ``InvalidName`` says what is wrong."""
    if not prefix:
        raise InvalidName("the prefix is empty")
    if SPACE.search(prefix):
        raise InvalidName("it contains whitespace")
    first, slash, rest = prefix.partition("/")
    if not slash:
        if not _domain_prefix_ok(prefix):
            if _domain_prefix_ok(prefix.lower()):
                raise InvalidName("a registry host must be lowercase")
            raise InvalidName(f"no registry host starts with {shown(prefix)}")
        return prefix
    if is_domain_like(first):
        domain, path = first, rest
        why = domain_error(domain)
        if why is not None:
            raise InvalidName(why)
        if domain == LEGACY_DEFAULT_DOMAIN:
            domain = DEFAULT_DOMAIN
    else:
        domain, path = DEFAULT_DOMAIN, prefix
    *whole, last = path.split("/")
    for component in whole:
        why = component_error(component)
        if why is not None:
            raise InvalidName(why)
    if last and not any(COMPONENT.fullmatch(last + end) for end in ("", "a")):
        raise InvalidName(component_error(last) or "")
    normalised = f"{domain}/{path}"
    if len(normalised) >= NAME_MAX:
        raise InvalidName(
            f"as Docker normalises it ({shown(normalised)}) the pattern is longer than "
            f"{NAME_MAX} characters"
        )
    return normalised
