"""Docker's grammar of repository names and image references: the one parser
that decides, for trust (repositories, root key pins) and policy (evaluation, exemptions),
what a name is and what it means. GUN patterns build on it in ``name_patterns``.

A Notary GUN is a repository name as Docker normalises it: ``[domain/]path``, where a first
component is a domain only when it has a ``.`` or a ``:`` or is ``localhost`` (or has an
uppercase letter, which a domain then refuses), and otherwise the name is Docker Hub's:
``app`` is ``docker.io/library/app`` and ``ci/app`` is ``docker.io/ci/app``. Docker asks
Notary for the normalised name, so that is the GUN everywhere in Gatehouse.

The grammar is Docker's (its ``reference`` package), lowercase throughout:

* a domain is dot-separated labels of letters, digits and inner dashes, or a simple IPv6
  address in brackets, with an optional ``:port``;
* a path component is ``[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*``;
* the whole name is at most 255 characters, once normalised.

Leading and trailing whitespace around an image reference is dropped (``image_text``), as
the evaluate API and admission both read images through ``parse_reference``; whitespace
inside one is refused.

Pure: no Django, no I/O.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_NAMESPACE = "library"
LOCALHOST = "localhost"
DEFAULT_TAG = "latest"
NAME_MAX = 255  # Docker's limit on the whole name, domain included
SHOWN_MAX = 40  # characters of a bad input repeated in a message


SPACE = re.compile(r"\s")
_LABEL = r"(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])"
DOMAIN = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[a-f0-9:]+\])(?::[0-9]+)?")
LABEL = re.compile(_LABEL)
COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_HEX = re.compile(r"[0-9a-f]*")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_URL_SAFE_COMPONENT = re.compile(r"[A-Za-z0-9._:\[\]-]+")

COMPONENT_RULE = "lowercase letters and digits separated by '.', '_', '__' or dashes"


class InvalidName(ValueError):
    """Not a repository name Docker accepts. The message says why, without the name."""


class InvalidReference(ValueError):
    """The text is not an image reference Docker would accept."""


class InvalidPattern(ValueError):
    """Not a GUN pattern. The message says why, without repeating the whole pattern."""


def shown(text: str, limit: int = SHOWN_MAX) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters with "…"."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def image_text(text: str) -> str:
    """An image as written, without the whitespace around it: what both the evaluate API
    and admission evaluate (a Kubernetes API server refuses such an image anyway, so
    dropping it never lets a different image through)."""
    return text.strip()


# --- Names ------------------------------------------------------------------------------


def is_domain_like(first: str) -> bool:
    """Docker's test of a name's first component, given a ``/`` follows it."""
    return any(c in first for c in ".:") or first == LOCALHOST or first.lower() != first


def split_name(name: str) -> tuple[str, str]:
    """Domain and path as Docker splits and normalises them (``splitDockerDomain``): a
    first component is a domain only when it looks like one; Docker Hub's names are
    ``docker.io/…``, its single names ``docker.io/library/…``. Nothing is validated."""
    first, slash, rest = name.partition("/")
    if slash and is_domain_like(first):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"{OFFICIAL_NAMESPACE}/{path}"
    return domain, path


def domain_error(domain: str) -> str | None:
    if DOMAIN.fullmatch(domain):
        return None
    if DOMAIN.fullmatch(domain.lower()):
        return f"registry host {shown(domain)} must be lowercase"
    return f"registry {shown(domain)} is not a valid host[:port]"


def component_error(component: str) -> str | None:
    if not component:
        return "the repository path has an empty component"
    if COMPONENT.fullmatch(component):
        return None
    if COMPONENT.fullmatch(component.lower()):
        return "repository name must be lowercase"
    return f"path component {shown(component)} must be {COMPONENT_RULE}"


def _name_error(name: str) -> tuple[str, str | None]:
    """The normalised name and what is wrong with it, if anything."""
    if not name:
        return name, "the repository name is missing"
    if SPACE.search(name):
        return name, "it contains whitespace"
    if _HEX64.fullmatch(name):
        return name, "a 64-hex-digit name is an image ID, not a repository"
    domain, path = split_name(name)
    why = domain_error(domain)
    for component in path.split("/"):
        why = why or component_error(component)
    gun = f"{domain}/{path}"
    if why is None and len(gun) > NAME_MAX:
        why = f"the name is longer than {NAME_MAX} characters"
    return gun, why


def parse_name(text: str) -> str:
    """The GUN that Docker makes of a repository name (``app`` → ``docker.io/library/app``).

    ``InvalidName`` says what is wrong; a tag or digest is refused, since a GUN names a
    repository, not an image.
    """
    if not text:
        raise InvalidName("the repository name is missing")
    if SPACE.search(text):
        raise InvalidName("it contains whitespace")
    if "://" in text:
        raise InvalidName("drop the scheme; a name starts with the registry host")
    if "@" in text:
        raise InvalidName("a GUN names a repository: drop the digest")
    colon = text.rfind(":")
    if colon > text.rfind("/"):
        raise InvalidName(f"a GUN names a repository: drop the tag {shown(text[colon:])}")
    gun, why = _name_error(text)
    if why is not None:
        raise InvalidName(why)
    return gun


def is_gun(text: str) -> bool:
    """Whether ``text`` is a GUN as Docker normalises it (a full name, not a short one)."""
    try:
        return parse_name(text) == text
    except InvalidName:
        return False


def notary_addressable(gun: str) -> bool:
    """Whether a request for ``gun`` reaches that GUN's trust data on Notary: no empty,
    ``.`` or ``..`` component (which the server's path cleaning would redirect, or send
    elsewhere) and nothing a URL path would need escaped. Every name Docker accepts is;
    names earlier versions stored without Docker's grammar may not be."""
    return all(
        component not in ("", ".", "..") and _URL_SAFE_COMPONENT.fullmatch(component)
        for component in gun.split("/")
    )


# --- Image references -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed image reference: the GUN, and the tag and/or digest as written (none
    defaulted)."""

    gun: str
    tag: str | None
    digest: str | None


def parse_reference(text: str) -> Reference:
    """Parse an image reference with Docker's normalisation (``nginx:1`` →
    ``docker.io/library/nginx``, tag ``1``), after dropping the whitespace around it.

    ``InvalidReference`` says what is wrong, naming the text as written.
    """

    def invalid(why: str) -> InvalidReference:
        return InvalidReference(f"{text!r} is not a valid image reference: {why}")

    image = image_text(text)
    if not image:
        raise invalid("it is empty")
    if SPACE.search(image):
        raise invalid("it contains whitespace")
    if "://" in image:
        raise invalid("drop the scheme; a reference starts with the registry host")
    name, at, digest_text = image.partition("@")
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
    gun, why = _name_error(name)
    if why is not None:
        raise invalid(why)
    return Reference(gun=gun, tag=tag, digest=digest)


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
