"""Platforms (`linux/amd64`, `linux/arm/v7`) and matching them, as containerd's platforms.

`normalize` folds the aliases (x86_64 -> amd64, aarch64 -> arm64, armhf -> arm/v7) and
the default variants (arm64 -> v8, arm -> v7) so two platforms compare by value.
"""

from __future__ import annotations

import platform as _platform
from typing import NamedTuple

from skiff.errors import InvalidArgument

_ARCH_ALIASES = {
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
}


class Platform(NamedTuple):
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        out = f"{self.os}/{self.architecture}"
        return f"{out}/{self.variant}" if self.variant else out


def normalize(p: Platform) -> Platform:
    os_ = p.os.lower() or "linux"
    arch, variant = p.architecture.lower(), p.variant.lower()
    if arch in _ARCH_ALIASES:
        arch, alias_variant = _ARCH_ALIASES[arch]
        variant = variant or alias_variant
    if arch == "arm64" and variant in ("8", "v8"):
        variant = ""
    elif arch == "arm" and variant in ("", "7"):
        variant = "v7"
    elif arch == "arm" and variant in ("5", "6", "8"):
        variant = "v" + variant
    elif arch == "amd64" and variant == "v1":
        variant = ""
    return Platform(os_, arch, variant)


def parse(text: str) -> Platform:
    """`os/arch[/variant]` or `arch`; InvalidArgument as Docker words it."""
    parts = text.strip().split("/")
    if not text or len(parts) > 3 or any(not part for part in parts):
        raise InvalidArgument(f'"{text}": unknown operating system or architecture')
    if len(parts) == 1:
        return normalize(Platform("linux", parts[0]))
    return normalize(Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else ""))


def host() -> Platform:
    return normalize(Platform("linux", _platform.machine()))


def matches(want: Platform, have: Platform) -> bool:
    """Whether an image of platform `have` runs where `want` is asked for."""
    w, h = normalize(want), normalize(have)
    if (w.os, w.architecture) != (h.os, h.architecture):
        return False
    return not w.variant or not h.variant or w.variant == h.variant
