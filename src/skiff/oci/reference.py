"""Docker image references, normalised as `docker` and dockerd do (distribution/reference).

    busybox                    -> docker.io/library/busybox:latest   familiar: busybox:latest
    alice/app:1                -> docker.io/alice/app:1              familiar: alice/app:1
    localhost:5000/a/b:t       -> localhost:5000/a/b:t
    busybox@sha256:<hex>       -> docker.io/library/busybox@sha256:<hex>

Grammar (reference.go):

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := host [":" port]         (a first component with "." or ":", or "localhost",
                                           or with upper case, is a domain)
    component  := [a-z0-9]+ ((\\.|_|__|-+) [a-z0-9]+)*
    tag        := [\\w][\\w.-]{0,127}

Errors carry Docker's wording ("invalid reference format", "invalid reference
format: repository name (library/Busybox) must be lowercase"), as InvalidReference
(an InvalidArgument: 400 at the API).
"""

from __future__ import annotations

import re

from skiff.errors import InvalidArgument
from skiff.oci.digest import Digest, InvalidDigest

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"

_REFERENCE_RE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?")
_TAG_RE = re.compile(_TAG)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")
_SHORT_IDENTIFIER_RE = re.compile(r"[a-f0-9]{6,64}")


class InvalidReference(InvalidArgument):
    pass


class Reference:
    """A normalised reference: `domain/path`, an optional tag, an optional digest."""

    __slots__ = ("digest", "domain", "path", "tag")

    domain: str
    path: str
    tag: str | None
    digest: Digest | None

    def __init__(self, domain: str, path: str, tag: str | None, digest: Digest | None) -> None:
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest

    @property
    def name(self) -> str:
        """`docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """`busybox`, `alice/app`, `localhost:5000/a/b`, as `docker images` shows it."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in path[len(OFFICIAL_REPO_PREFIX) :]:
            return path[len(OFFICIAL_REPO_PREFIX) :]
        return path

    def with_default_tag(self) -> Reference:
        """Add `:latest` when there is neither a tag nor a digest (TagNameOnly)."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG, None)
        return self

    def with_tag(self, tag: str) -> Reference:
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReference("invalid tag format")
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: Digest) -> Reference:
        return Reference(self.domain, self.path, None, digest)

    def familiar(self) -> str:
        """`busybox:latest`, `busybox@sha256:...`: the display form."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag is not None else ""
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    def __str__(self) -> str:
        return self.name + self._suffix()

    def __repr__(self) -> str:
        return f"Reference({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


def split_domain(name: str) -> tuple[str, str]:
    """distribution's splitDockerDomain: (domain, path) with docker.io defaults."""
    i = name.find("/")
    first = name[:i]
    if i == -1 or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[i + 1 :]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse_normalized(text: str) -> Reference:
    """ParseNormalizedNamed: a familiar or full reference; no defaults added."""
    if _IDENTIFIER_RE.fullmatch(text):
        raise InvalidReference(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = split_domain(text)
    # The tag or digest is what follows the last ':' or '@' outside the domain.
    name_part = re.split(r"[:@]", remainder, maxsplit=1)[0]
    if name_part.lower() != name_part:
        raise InvalidReference(
            f"invalid reference format: repository name ({name_part}) must be lowercase"
        )
    return parse(f"{domain}/{remainder}")


def parse(text: str) -> Reference:
    """Parse a full reference (`domain/path[:tag][@digest]`) strictly."""
    m = _REFERENCE_RE.fullmatch(text)
    if m is None:
        if not text:
            raise InvalidReference(
                "invalid reference format: repository name must have at least one component"
            )
        raise InvalidReference("invalid reference format")
    name, tag, digest_text = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            f"invalid reference format: repository name must not be more than "
            f"{NAME_TOTAL_LENGTH_MAX} characters"
        )
    digest = None
    if digest_text is not None:
        try:
            digest = Digest.parse(digest_text)
        except InvalidDigest:
            raise InvalidReference("invalid reference format") from None
    domain, path = split_domain(name)
    return Reference(domain, path, tag, digest)


def parse_familiar(text: str, *, default_tag: bool = True) -> Reference:
    """What every command does with a user's image name: normalise, add `:latest`."""
    ref = parse_normalized(text)
    return ref.with_default_tag() if default_tag else ref


def familiar(text: str) -> str:
    """The display form of a stored full reference."""
    return parse(text).familiar()


def is_id_like(text: str) -> bool:
    """A full or short image id (`sha256:abc...`, `abc123`): Docker tries ids too."""
    hexpart = text[7:] if text.startswith("sha256:") else text
    return bool(_SHORT_IDENTIFIER_RE.fullmatch(hexpart)) or (
        text.startswith("sha256:") and bool(re.fullmatch(r"[a-f0-9]{1,64}", hexpart))
    )


def is_tag(text: str) -> bool:
    return bool(_TAG_RE.fullmatch(text))
