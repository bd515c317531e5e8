"""A subset of Go's text/template, enough for docker's `--format`:

    {{.ID}}  {{.Config.Image}}  {{.}}            fields, nested fields, the value itself
    {{json .}}  {{json .Labels}}                  JSON (compact, Go's HTML escaping)
    {{.Name | printf "%-10s"}}  {{printf "%s:%s" .A .B}}
    {{upper .X}} {{lower .X}} {{title .X}} {{join .List ", "}} {{len .List}} {{println .X}}
    table {{.ID}}\t{{.Name}}                      a header row, then tab-aligned columns

`\t` and `\n` written literally in the format mean tab and newline, as in docker. Data is
JSON-like (dicts, lists, str, int, float, bool, None). No range/if/with: such a template is
an error rather than silently wrong output.
"""

from __future__ import annotations

import json
import re

from skiff.cli.table import default_header, preformat, tabulate

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

__all__ = ["Template", "TemplateError", "default_header", "format_items", "go_json", "tabulate"]

_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.S)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|]+')


class TemplateError(ValueError):
    pass


class _Missing:
    def __str__(self) -> str:
        return "<no value>"


MISSING = _Missing()


# Plain classes rather than dataclasses: dataclasses imports inspect, slow to start.
class _Field:
    __slots__ = ("path",)

    def __init__(self, path: tuple[str, ...]) -> None:
        self.path = path  # () is "." itself


class _Literal:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


_Arg = _Field | _Literal


class _Command:
    __slots__ = ("args", "func")

    def __init__(self, func: str | None, args: tuple[_Arg, ...]) -> None:
        self.func = func  # None: a bare value
        self.args = args


class _Action:
    __slots__ = ("pipeline",)

    def __init__(self, pipeline: tuple[_Command, ...]) -> None:
        self.pipeline = pipeline


_Node = str | _Action


def _parse_arg(token: str) -> _Arg:
    if token == ".":
        return _Field(())
    if token.startswith("."):
        return _Field(tuple(token[1:].split(".")))
    if token.startswith('"'):
        return _Literal(json.loads(token))
    if token.startswith("`"):
        return _Literal(token[1:-1])
    if re.fullmatch(r"-?\d+", token):
        return _Literal(int(token))
    if token in ("true", "false"):
        return _Literal(token == "true")
    raise TemplateError(f'template: function "{token}" not defined')


def _parse_action(text: str) -> _Action:
    tokens = _TOKEN.findall(text)
    if not tokens:
        raise TemplateError("template: missing value for command")
    commands: list[_Command] = []
    current: list[str] = []
    for token in [*tokens, "|"]:
        if token != "|":
            current.append(token)
            continue
        if not current:
            raise TemplateError("template: missing command in pipeline")
        head = current[0]
        if head in FUNCTIONS:
            commands.append(_Command(head, tuple(_parse_arg(t) for t in current[1:])))
        elif head in ("range", "if", "with", "else", "end", "define", "template", "block"):
            raise TemplateError(f"template: {head!r} is not supported by skiff's --format")
        elif len(current) == 1:
            commands.append(_Command(None, (_parse_arg(head),)))
        else:
            raise TemplateError(f"template: can't give argument to non-function {head}")
        current = []
    return _Action(tuple(commands))


def parse(template: str) -> list[_Node]:
    nodes: list[_Node] = []
    pos = 0
    for match in _ACTION.finditer(template):
        if match.start() > pos:
            nodes.append(template[pos : match.start()])
        body = match.group(1)
        if not body.startswith("/*"):
            nodes.append(_parse_action(body))
        pos = match.end()
    rest = template[pos:]
    if "{{" in rest:
        raise TemplateError("template: unclosed action")
    if rest:
        nodes.append(rest)
    return nodes


def to_text(value: Any) -> str:
    """Go's default formatting of a value (fmt's %v)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{to_text(v)}" for k, v in sorted(value.items()))
        return f"map[{inner}]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(to_text(v) for v in value) + "]"
    return str(value)


def go_json(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _printf(fmt: str, *args: Any) -> str:
    # Go verbs onto Python's: %v and %s -> text, %q -> quoted, %d as is.
    out: list[str] = []
    values = list(args)
    pieces = re.split(r"(%[-+# 0]*\d*(?:\.\d+)?[a-zA-Z%])", fmt)
    for piece in pieces:
        if not piece.startswith("%") or len(piece) < 2:
            out.append(piece)
            continue
        verb, flags = piece[-1], piece[1:-1]
        if verb == "%":
            out.append("%")
            continue
        value = values.pop(0) if values else MISSING
        if verb in "vs":
            out.append(("%" + flags + "s") % to_text(value))
        elif verb == "q":
            out.append(("%" + flags + "s") % json.dumps(to_text(value)))
        elif (verb in "dxXo" and isinstance(value, int)) or (
            verb in "fge" and isinstance(value, int | float)
        ):
            out.append(("%" + flags + verb) % value)
        else:
            out.append(f"%!{verb}({to_text(value)})")
    return "".join(out)


def _join(items: Any, sep: str) -> str:
    return sep.join(to_text(i) for i in items or [])


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": go_json,
    "printf": _printf,
    "print": lambda *a: "".join(to_text(x) for x in a),
    "println": lambda *a: " ".join(to_text(x) for x in a) + "\n",
    "upper": lambda s: to_text(s).upper(),
    "lower": lambda s: to_text(s).lower(),
    "title": lambda s: to_text(s).title(),
    "join": _join,
    "len": lambda x: len(x) if x is not None else 0,
}


def _lookup(data: Any, path: tuple[str, ...]) -> Any:
    value = data
    for name in path:
        if isinstance(value, dict):
            if name not in value:
                return MISSING
            value = value[name]
        elif value is None or value is MISSING:
            return MISSING
        else:
            raise TemplateError(f"template: can't evaluate field {name} in type {type(value)}")
    return value


class Template:
    def __init__(self, text: str) -> None:
        self.nodes = parse(text)

    def _eval_arg(self, arg: _Arg, data: Any, header: Callable[[str], str] | None) -> Any:
        if isinstance(arg, _Literal):
            return arg.value
        if header is not None:
            return header(arg.path[-1]) if arg.path else ""
        return _lookup(data, arg.path)

    def _eval(self, action: _Action, data: Any, header: Callable[[str], str] | None) -> Any:
        result: Any = MISSING
        for index, command in enumerate(action.pipeline):
            args = [self._eval_arg(a, data, header) for a in command.args]
            if index > 0:
                args.append(result)
            if command.func is None:
                result = args[0]
            elif header is not None and command.func in ("json", "len"):
                result = args[0] if args else ""
            else:
                try:
                    result = FUNCTIONS[command.func](*args)
                except TypeError as exc:
                    raise TemplateError(f"template: error calling {command.func}: {exc}") from None
        return result

    def render(self, data: Any, header: Callable[[str], str] | None = None) -> str:
        out: list[str] = []
        for node in self.nodes:
            if isinstance(node, str):
                out.append(node)
            else:
                value = self._eval(node, data, header)
                out.append(value if isinstance(value, str) else to_text(value))
        return "".join(out)


def format_items(fmt: str, items: Sequence[Any], headers: Mapping[str, str] | None = None) -> str:
    """Render each item with a docker --format string; with `table`, add a header row."""
    text, is_table = preformat(fmt)
    template = Template(text)
    lines: list[str] = []
    if is_table:
        names = headers or {}
        lines.append(template.render(None, header=lambda f: names.get(f, default_header(f))))
    lines.extend(template.render(item) for item in items)
    if is_table:
        lines = tabulate(lines)
    return "".join(line + "\n" for line in lines)
