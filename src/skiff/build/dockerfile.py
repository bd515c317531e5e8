"""Docker's Dockerfile parser, pure: text in, stages of typed instructions out.

Two passes, as moby/buildkit's `parser` and `instructions` packages:

    text ──lines──▶ Node (keyword, flags, raw arguments, start line, heredocs)
         ──parse──▶ Instruction (validated arguments) grouped in Stage(s) + meta ARGs

Line handling (parser.Parse): parser directives (`# escape=`, `# syntax=`) only before
anything else; a line ending in the escape character continues; comment lines and
empty lines inside a continuation are dropped; `#` starts a comment only at the start
of a line. RUN, COPY and ADD may carry heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`), which
BuildKit accepts and dockerd 20.10's classic builder does not; skiff takes them.

Errors are Docker's: a parser-level error reads "failed to parse Dockerfile: ENV must
have two arguments"; an instruction-level one "dockerfile parse error line 3: unknown
instruction: FORM" (dockerd 20.10's words, checked against it). Everything is checked
here, before any step runs. Variable substitution happens later, in the builder, with
the environment of the step (skiff.build.shell).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from skiff.errors import InvalidArgument


class DockerfileError(InvalidArgument):
    pass


def _line_error(line: int, message: str) -> DockerfileError:
    return DockerfileError(f"dockerfile parse error line {line}: {message}")


def _parser_error(message: str) -> DockerfileError:
    return DockerfileError(f"failed to parse Dockerfile: {message}")


_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_WS = re.compile(r"[\t\v\f\r ]+")
_HEREDOC = re.compile(r"<<(-?)[ \t]*(['\"]?)([A-Za-z0-9_.-]+)\2")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
HEREDOC_KEYWORDS = frozenset({"run", "copy", "add"})

FLAGS: dict[str, frozenset[str]] = {
    "from": frozenset({"platform"}),
    "copy": frozenset({"from", "chown", "chmod"}),
    "add": frozenset({"chown", "chmod"}),
    "healthcheck": frozenset({"interval", "timeout", "start-period", "start-interval", "retries"}),
}
KEYWORDS = frozenset(
    {
        "from", "run", "cmd", "entrypoint", "env", "arg", "label", "expose", "copy", "add",
        "workdir", "user", "volume", "stopsignal", "healthcheck", "shell", "onbuild",
        "maintainer",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Directives:
    escape: str = "\\"
    syntax: str = ""


@dataclass(frozen=True)
class Heredoc:
    name: str
    content: str
    expand: bool  # an unquoted delimiter: variables in the content expand (COPY/ADD)
    chomp: bool  # <<-: leading tabs removed


@dataclass(frozen=True)
class Node:
    keyword: str  # lower case, as written otherwise
    flags: tuple[str, ...]  # "--name=value" as written
    rest: str  # the arguments after the flags, trimmed
    original: str  # the whole instruction, continuations joined
    line: int
    end_line: int
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True)
class Instruction:
    """One validated instruction. Which fields are set depends on `kind`:

    args     RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK CMD: the exec list (json) or [shell text];
             COPY/ADD: sources + dest; EXPOSE/VOLUME: words; USER/WORKDIR/...: [value];
             FROM: [image] ; ONBUILD: [trigger text]
    pairs    ENV/LABEL: (key, raw value); ARG: (name, default or None)
    """

    kind: str  # upper case: "RUN"
    original: str
    line: int
    args: tuple[str, ...] = ()
    json: bool = False
    pairs: tuple[tuple[str, str | None], ...] = ()
    flags: dict[str, str] = field(default_factory=dict)
    heredocs: tuple[Heredoc, ...] = ()
    healthcheck: dict[str, object] | None = None

    def __str__(self) -> str:
        return self.original


@dataclass(frozen=True)
class Stage:
    index: int
    base: str  # unexpanded: may use meta ARGs
    name: str  # "" when unnamed; lower case
    platform: str
    original: str
    line: int
    instructions: tuple[Instruction, ...]


@dataclass(frozen=True)
class Dockerfile:
    directives: Directives
    meta_args: tuple[Instruction, ...]  # ARGs before the first FROM
    stages: tuple[Stage, ...]

    def stage_index(self, name: str) -> int | None:
        lowered = name.lower()
        for stage in self.stages:
            if stage.name and stage.name == lowered:
                return stage.index
        if name.isdigit() and int(name) < len(self.stages):
            return int(name)
        return None


# --- pass 1: lines to nodes --------------------------------------------------------------


def parse_nodes(text: str) -> tuple[Directives, list[Node]]:
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    escape, syntax, directives_done, escape_seen = "\\", "", False, False
    nodes: list[Node] = []
    i = 0
    while i < len(lines):
        raw = lines[i]
        if not directives_done:
            m = _DIRECTIVE.match(raw)
            key = m.group(1).lower() if m else ""
            if m and key == "escape":
                if escape_seen:
                    raise _parser_error("only one escape parser directive can be used")
                escape_seen = True
                value = m.group(2)
                if value not in ("`", "\\"):
                    raise _parser_error(f"invalid ESCAPE '{value}'. Must be ` or \\")
                escape = value
                i += 1
                continue
            if m and key == "syntax":
                syntax = m.group(2)
                i += 1
                continue
            directives_done = True
        continuation = re.compile(re.escape(escape) + r"[ \t]*$")
        i += 1
        start = i
        line = _strip_comment(raw.lstrip(" \t\r\n\v\f"))
        line, done = _trim_continuation(line, continuation)
        if done and not line.strip():
            continue
        while not done and i < len(lines):
            nxt = lines[i]
            i += 1
            stripped = nxt.lstrip(" \t\r\n\v\f")
            if stripped.startswith("#") or not stripped:
                continue  # comments and empty lines inside a continuation are dropped
            part, done = _trim_continuation(nxt, continuation)
            line += part
        node = _node(line, start, i)
        if node.keyword in HEREDOC_KEYWORDS and "<<" in node.rest:
            node, i = _read_heredocs(node, lines, i)
        nodes.append(node)
    if not nodes:
        raise _parser_error("file with no instructions")
    return Directives(escape, syntax), nodes


def _strip_comment(line: str) -> str:
    return "" if line.startswith("#") else line


def _trim_continuation(line: str, continuation: re.Pattern[str]) -> tuple[str, bool]:
    m = continuation.search(line)
    if m:
        return line[: m.start()], False
    return line, True


def _node(line: str, start: int, end: int) -> Node:
    parts = _WS.split(line.strip(), maxsplit=1)
    keyword = parts[0].lower()
    rest, flags = "", list[str]()
    if len(parts) == 2:
        rest, flags = _extract_flags(parts[1])
    return Node(keyword, tuple(flags), rest.strip(), line.strip(), start, end)


def _extract_flags(line: str) -> tuple[str, list[str]]:
    """Leading `--name[=value]` words (quotes and \\ handled), then the rest of the line."""
    words: list[str] = []
    pos = 0
    n = len(line)
    while True:
        while pos < n and line[pos].isspace():
            pos += 1
        if pos >= n:
            return "", words
        if not line.startswith("--", pos):
            return line[pos:], words
        word: list[str] = []
        quote = ""
        while pos < n:
            ch = line[pos]
            if quote:
                if ch == quote:
                    quote = ""
                elif ch == "\\" and pos + 1 < n:
                    pos += 1
                    word.append(line[pos])
                elif ch != "\\":
                    word.append(ch)
            elif ch.isspace():
                break
            elif ch in ("'", '"'):
                quote = ch
            elif ch == "\\":
                if pos + 1 < n:
                    pos += 1
                    word.append(line[pos])
            else:
                word.append(ch)
            pos += 1
        text = "".join(word)
        if text == "--":
            return line[pos:], words
        words.append(text)


def _read_heredocs(node: Node, lines: list[str], i: int) -> tuple[Node, int]:
    docs: list[Heredoc] = []
    for m in _HEREDOC.finditer(node.rest):
        chomp, quote, name = m.group(1) == "-", m.group(2), m.group(3)
        body: list[str] = []
        while True:
            if i >= len(lines):
                raise _line_error(node.line, f"unterminated heredoc {name}")
            text = lines[i]
            i += 1
            if chomp:
                text = text.lstrip("\t")
            if text == name:
                break
            body.append(text + "\n")
        docs.append(Heredoc(name, "".join(body), expand=not quote, chomp=chomp))
    if not docs:
        return node, i
    return Node(node.keyword, node.flags, node.rest, node.original, node.line, i, tuple(docs)), i


# --- pass 2: nodes to instructions --------------------------------------------------------


def parse(text: str) -> Dockerfile:
    directives, nodes = parse_nodes(text)
    meta: list[Instruction] = []
    stages: list[Stage] = []
    current: dict[str, object] | None = None
    body: list[Instruction] = []

    def close() -> None:
        if current is not None:
            stages.append(Stage(instructions=tuple(body), **current))  # type: ignore[arg-type]

    for node in nodes:
        inst = parse_instruction(node, directives)
        if inst.kind == "FROM":
            close()
            body = []
            name = inst.args[2].lower() if len(inst.args) == 3 else ""
            if name and not _STAGE_NAME.match(name):
                raise _line_error(
                    node.line,
                    f'invalid name for build stage: "{inst.args[2]}", name can\'t start '
                    "with a number or contain symbols",
                )
            current = {
                "index": len(stages),
                "base": inst.args[0],
                "name": name,
                "platform": inst.flags.get("platform", ""),
                "original": inst.original,
                "line": inst.line,
            }
        elif current is None:
            if inst.kind != "ARG":
                raise DockerfileError("no build stage in current context")
            meta.append(inst)
        else:
            body.append(inst)
    close()
    return Dockerfile(directives, tuple(meta), tuple(stages))


def parse_instruction(node: Node, directives: Directives) -> Instruction:
    kw = node.keyword
    if kw not in KEYWORDS:
        raise _line_error(node.line, f"unknown instruction: {kw.upper()}")
    flags = _parse_flags(node, FLAGS.get(kw, frozenset()))
    base = {"kind": kw.upper(), "original": node.original, "line": node.line, "flags": flags}
    handler = _HANDLERS[kw]
    return handler(node, directives, base)


def _parse_flags(node: Node, allowed: frozenset[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in node.flags:
        name, eq, value = raw[2:].partition("=")
        if name not in allowed:
            raise _line_error(node.line, f"Unknown flag: {name}")
        if name in out:
            raise _line_error(node.line, f"Duplicate flag specified: {name}")
        if not eq:
            raise _line_error(node.line, f"Missing a value on flag: {name}")
        out[name] = value
    return out


Base = dict[str, object]


def _json_list(rest: str) -> list[str] | None:
    """parseJSON: a JSON array of strings, else None; an array of non-strings is an error."""
    text = rest.lstrip()
    if not text.startswith("["):
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _parser_error(
            "dockerfile: when using JSON array syntax, arrays must be comprised of strings only"
        )
    return value


def _words(rest: str) -> list[str]:
    return [w for w in _WS.split(rest) if w] if rest else []


def parse_words(rest: str, escape: str = "\\") -> list[str]:
    """parseWords: split on whitespace outside quotes, keeping quotes and escapes."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    blank_ok = False
    in_word = False
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if not in_word:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == n:
                    i += 1
                    continue
                word.append(ch)
                i += 1
                ch = rest[i]
            word.append(ch)
            i += 1
            continue
        if ch.isspace():
            if blank_ok or word:
                words.append("".join(word))
            word, blank_ok, in_word = [], False, False
            i += 1
            continue
        if ch in ("'", '"'):
            quote = ch
            blank_ok = True
        elif ch == escape:
            if i + 1 == n:
                i += 1
                continue
            word.append(ch)
            i += 1
            ch = rest[i]
        word.append(ch)
        i += 1
    if in_word and (blank_ok or word):
        words.append("".join(word))
    return words


def _name_val(node: Node, d: Directives, what: str) -> list[tuple[str, str | None]]:
    words = parse_words(node.rest, d.escape)
    if not words:
        raise _line_error(node.line, f"{what} requires at least one argument")
    if "=" not in words[0]:
        parts = _WS.split(node.rest, maxsplit=1)
        if len(parts) < 2:
            raise _parser_error(f"{what} must have two arguments")
        return [(parts[0], parts[1])]
    out: list[tuple[str, str | None]] = []
    for word in words:
        if "=" not in word:
            raise _parser_error(
                f'Syntax error - can\'t find = in "{word}". Must be of the form: name=value'
            )
        key, _, value = word.partition("=")
        if not key:
            raise _line_error(node.line, f"{what} names can not be blank")
        out.append((key, value))
    return out


def _env_like(node: Node, d: Directives, base: Base) -> Instruction:
    return Instruction(pairs=tuple(_name_val(node, d, node.keyword.upper())), **base)  # type: ignore[arg-type]


def _arg(node: Node, d: Directives, base: Base) -> Instruction:
    words = parse_words(node.rest, d.escape)
    if not words:
        raise _line_error(node.line, "ARG requires exactly one argument")
    pairs: list[tuple[str, str | None]] = []
    for word in words:
        if "=" in word:
            key, _, value = word.partition("=")
            if not key:
                raise _line_error(node.line, "ARG names can not be blank")
            pairs.append((key, value))
        else:
            pairs.append((word, None))
    return Instruction(pairs=tuple(pairs), **base)  # type: ignore[arg-type]


def _command(node: Node, d: Directives, base: Base) -> Instruction:
    """RUN, CMD, ENTRYPOINT, SHELL: exec form (JSON) or shell form."""
    kw = node.keyword.upper()
    exec_form = _json_list(node.rest)
    if exec_form is not None:
        args, is_json = tuple(exec_form), True
    else:
        args, is_json = ((node.rest,) if node.rest else ()), False
    if kw == "SHELL":
        if not args:
            raise _line_error(node.line, "SHELL requires at least one argument")
        if not is_json:
            raise _line_error(node.line, "SHELL requires the arguments to be in JSON form")
    return Instruction(args=args, json=is_json, heredocs=node.heredocs, **base)  # type: ignore[arg-type]


def _from(node: Node, d: Directives, base: Base) -> Instruction:
    args = _words(node.rest)
    if len(args) not in (1, 3) or (len(args) == 3 and args[1].lower() != "as"):
        raise _line_error(node.line, "FROM requires either one or three arguments")
    return Instruction(args=tuple(args), **base)  # type: ignore[arg-type]


def _copy(node: Node, d: Directives, base: Base) -> Instruction:
    listed = _json_list(node.rest)
    is_json = listed is not None
    args = listed if listed is not None else _words(node.rest)
    if len(args) < 2:
        raise _line_error(
            node.line,
            f"{node.keyword.upper()} requires at least two arguments, but only one was "
            "provided. Destination could not be determined",
        )
    return Instruction(args=tuple(args), json=is_json, heredocs=node.heredocs, **base)  # type: ignore[arg-type]


def _exactly_one(node: Node, d: Directives, base: Base) -> Instruction:
    kw = node.keyword.upper()
    if kw in ("USER", "WORKDIR", "STOPSIGNAL"):
        args = _words(node.rest)
        if len(args) != 1:
            raise _line_error(node.line, f"{kw} requires exactly one argument")
        # parseString keeps the whole rest (WORKDIR "/a b" is one argument)
        return Instruction(args=(node.rest,), **base)  # type: ignore[arg-type]
    if not node.rest:
        raise _line_error(node.line, f"{kw} requires exactly one argument")
    return Instruction(args=(node.rest,), **base)  # type: ignore[arg-type]


def _list(node: Node, d: Directives, base: Base) -> Instruction:
    kw = node.keyword.upper()
    listed = _json_list(node.rest)
    args = listed if listed is not None else _words(node.rest)
    if not args:
        raise _line_error(node.line, f"{kw} requires at least one argument")
    if kw == "VOLUME" and any(not a.strip() for a in args):
        raise _line_error(node.line, "VOLUME specified can not be an empty string")
    return Instruction(args=tuple(args), json=listed is not None, **base)  # type: ignore[arg-type]


def _onbuild(node: Node, d: Directives, base: Base) -> Instruction:
    if not node.rest:
        raise _line_error(node.line, "ONBUILD requires at least one argument")
    trigger = _WS.split(node.rest.strip(), maxsplit=1)[0].upper()
    if trigger == "ONBUILD":
        raise _line_error(node.line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("FROM", "MAINTAINER"):
        raise _line_error(node.line, f"{trigger} isn't allowed as an ONBUILD trigger")
    inner = _node(node.rest, node.line, node.end_line)
    parse_instruction(inner, d)  # the trigger must itself be valid
    expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original)
    return Instruction(args=(expression,), **base)  # type: ignore[arg-type]


def _healthcheck(node: Node, d: Directives, base: Base) -> Instruction:
    rest = node.rest
    parts = rest.split(None, 1)
    if not parts:
        raise _line_error(node.line, "HEALTHCHECK requires at least one argument")
    typ = parts[0].upper()
    after = parts[1] if len(parts) > 1 else ""
    flags: dict[str, str] = base["flags"]  # type: ignore[assignment]
    if typ == "NONE":
        if after.strip():
            raise _line_error(node.line, "HEALTHCHECK NONE takes no arguments")
        return Instruction(healthcheck={"Test": ["NONE"]}, **base)  # type: ignore[arg-type]
    if typ != "CMD":
        raise _line_error(node.line, f'Unknown type "{typ}" in HEALTHCHECK (try CMD)')
    listed = _json_list(after)
    cmd = listed if listed is not None else ([after] if after else [])
    if not cmd:
        raise _line_error(node.line, "Missing command after HEALTHCHECK CMD")
    test = ["CMD" if listed is not None else "CMD-SHELL", *cmd]
    health: dict[str, object] = {"Test": test}
    for flag, key in (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
        ("start-interval", "StartInterval"),
    ):
        value = flags.get(flag, "")
        if value:
            try:
                ns = parse_duration(value)
            except ValueError as e:
                raise _line_error(node.line, str(e)) from None
            if ns < 1_000_000:
                raise _line_error(node.line, f'Interval "{flag}" cannot be less than 1ms')
            health[key] = ns
    retries = flags.get("retries", "")
    if retries:
        try:
            count = int(retries)
        except ValueError:
            raise _line_error(
                node.line, f'strconv.ParseInt: parsing "{retries}": invalid syntax'
            ) from None
        if count < 1:
            raise _line_error(node.line, f"--retries must be at least 1 (not {count})")
        health["Retries"] = count
    return Instruction(args=tuple(cmd), json=listed is not None, healthcheck=health, **base)  # type: ignore[arg-type]


_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "μs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9}
_UNITS["h"] = 3600 * 10**9
_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds."""
    s = text
    sign = 1
    if s[:1] in "+-" and s:
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    pos, total = 0, 0.0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    while pos < len(s):
        m = _DURATION.match(s, pos)
        if m is None:
            if re.match(r"[0-9.]+$", s[pos:]):
                raise ValueError(f'time: missing unit in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * round(total)


def format_duration(ns: int) -> str:
    """Go's Duration.String() for the values a Dockerfile can give."""
    if ns == 0:
        return "0s"
    out = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 1000), ("ns", 1)):
            if ns >= size:
                return out + _trim(ns / size) + unit
    hours, rem = divmod(ns, 3600 * 10**9)
    minutes, rem = divmod(rem, 60 * 10**9)
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + _trim(rem / 10**9) + "s"


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"


_HANDLERS = {
    "from": _from,
    "run": _command,
    "cmd": _command,
    "entrypoint": _command,
    "shell": _command,
    "env": _env_like,
    "label": _env_like,
    "arg": _arg,
    "copy": _copy,
    "add": _copy,
    "expose": _list,
    "volume": _list,
    "user": _exactly_one,
    "workdir": _exactly_one,
    "stopsignal": _exactly_one,
    "maintainer": _exactly_one,
    "onbuild": _onbuild,
    "healthcheck": _healthcheck,
}
