"""`docker import --change` / `docker commit --change`: Dockerfile lines applied to a config.

As dockerd's BuildFromConfig, only these instructions are valid: CMD, ENTRYPOINT, ENV,
EXPOSE, HEALTHCHECK (NONE only), LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR.
Exec form (`["a", "b"]`) is kept as is; shell form becomes `["/bin/sh", "-c", "..."]`.
ENTRYPOINT clears a CMD that was not set by the same list of changes (as a build does).
"""

from __future__ import annotations

import json
import posixpath
import shlex
from dataclasses import replace

from skiff.errors import InvalidArgument
from skiff.oci.image import ImageConfig

VALID = frozenset(
    {
        "cmd",
        "entrypoint",
        "env",
        "expose",
        "healthcheck",
        "label",
        "onbuild",
        "stopsignal",
        "user",
        "volume",
        "workdir",
    }
)


def apply_changes(config: ImageConfig, changes: list[str]) -> ImageConfig:
    cmd_set = False
    for raw in changes:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if "\t" in word:
            word, _, more = word.partition("\t")
            rest = more + " " + rest
        instruction, rest = word.lower(), rest.strip()
        if instruction not in VALID:
            if instruction in ("from", "run", "copy", "add", "arg", "shell", "maintainer"):
                raise InvalidArgument(f"{instruction} is not a valid change command")
            raise InvalidArgument(
                f"dockerfile parse error on line 1: unknown instruction: {word.upper()}"
            )
        config = _apply(config, instruction, rest)
        if instruction == "cmd":
            cmd_set = True
        elif instruction == "entrypoint" and not cmd_set:
            config = replace(config, cmd=None)
    return config


def _apply(c: ImageConfig, instruction: str, rest: str) -> ImageConfig:
    name = instruction.upper()
    if instruction in ("cmd", "entrypoint"):
        args = _command(rest, c.shell)
        return replace(c, cmd=args) if instruction == "cmd" else replace(c, entrypoint=args)
    if instruction == "env":
        env = list(c.env)
        for key, value in _pairs(rest, name):
            env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
        return replace(c, env=env)
    if instruction == "label":
        labels = dict(c.labels)
        labels.update(_pairs(rest, name))
        return replace(c, labels=labels)
    if instruction == "expose":
        ports = dict(c.exposed_ports)
        for port in _words(rest, name):
            number, _, proto = port.partition("/")
            proto = proto.lower() or "tcp"
            if not number or proto not in ("tcp", "udp", "sctp"):
                raise InvalidArgument(f"invalid containerPort: {port}")
            for p in _port_range(number):
                ports[f"{p}/{proto}"] = {}
        return replace(c, exposed_ports=ports)
    if instruction == "volume":
        volumes = dict(c.volumes)
        for v in _json_or_words(rest, name):
            if not v:
                raise InvalidArgument("VOLUME specified can not be an empty string")
            volumes[v] = {}
        return replace(c, volumes=volumes)
    if instruction == "user":
        return replace(c, user=_one(rest, name))
    if instruction == "workdir":
        wd = _one(rest, name)
        return replace(c, working_dir=posixpath.join(c.working_dir or "/", wd))
    if instruction == "stopsignal":
        return replace(c, stop_signal=_one(rest, name))
    if instruction == "onbuild":
        trigger = rest.split(None, 1)[0].upper() if rest else ""
        if trigger in ("ONBUILD", "FROM", "MAINTAINER"):
            raise InvalidArgument(f"{trigger} isn't allowed as an ONBUILD trigger")
        if not rest:
            raise InvalidArgument("ONBUILD requires at least one argument")
        return replace(c, on_build=[*c.on_build, rest])
    # healthcheck
    if rest.strip().upper() == "NONE":
        return replace(c, healthcheck={"Test": ["NONE"]})
    raise InvalidArgument("HEALTHCHECK in --change supports only NONE")


def _command(rest: str, shell: list[str] | None) -> list[str]:
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return [*(shell or ["/bin/sh", "-c"]), rest]


def _words(rest: str, name: str) -> list[str]:
    try:
        words = shlex.split(rest, posix=True)
    except ValueError as e:
        raise InvalidArgument(f"{name}: {e}") from None
    if not words:
        raise InvalidArgument(f"{name} requires at least one argument")
    return words


def _json_or_words(rest: str, name: str) -> list[str]:
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return _words(rest, name)


def _one(rest: str, name: str) -> str:
    words = _words(rest, name)
    if len(words) != 1:
        raise InvalidArgument(f"{name} requires exactly one argument")
    return words[0]


def _pairs(rest: str, name: str) -> list[tuple[str, str]]:
    words = _words(rest, name)
    if "=" not in words[0]:
        # The legacy form: `ENV KEY value with spaces`.
        key, _, value = rest.strip().partition(" ")
        if not value.strip() and name == "ENV":
            raise InvalidArgument("ENV must have two arguments")
        return [(key, value.strip())]
    out = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidArgument(
                f"{name} names can not be blank" if not key else f"{name}: {word}"
            )
        out.append((key, value))
    return out


def _port_range(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    try:
        start, end = int(lo), int(hi or lo)
    except ValueError:
        raise InvalidArgument(f"invalid containerPort: {text}") from None
    if not 0 < start <= end <= 65535:
        raise InvalidArgument(f"invalid containerPort: {text}")
    return list(range(start, end + 1))
