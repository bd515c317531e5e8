"""Command flags the way the docker CLI (cobra/pflag) reads them, without argparse.

argparse would cost every command ~7 ms of start-up (it imports gettext, locale, shutil and
compiles regular expressions while parsing). The subset commands use is small:

    p = parser("images", "List images")
    p.add_argument("reference", nargs="?", help="REPOSITORY[:TAG]")     positional: None, ?, +, ... (the rest)
    p.add_argument("-a", "--all", action="store_true", help="...")       a boolean flag
    p.add_argument("-f", "--filter", action="append", default=[], ...)    repeatable
    p.add_argument("--days", type=int, default=365, ...)                  one value
    ns = p.parse_args(argv)                                               ns.reference, ns.all

As in docker: flags may come before, between or after arguments; `--flag=value`,
`--flag value`, `-fvalue`, `-aq`; `--` ends the flags; `--bool=false`. A bad flag or the
wrong number of arguments prints the error and `See 'skiff CMD --help'.`, exit status 125.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

USAGE_EXIT = 125
_BOOL_TEXT = {"true": True, "1": True, "t": True, "false": False, "0": False, "f": False}


class Namespace:
    """The parsed values, as attributes named by each argument's dest."""

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...

    def __repr__(self) -> str:
        return f"Namespace({vars(self)})"


class _Arg:
    __slots__ = (
        "action",
        "choices",
        "default",
        "dest",
        "flags",
        "help",
        "metavar",
        "nargs",
        "type",
    )

    def __init__(
        self,
        flags: tuple[str, ...],
        dest: str,
        action: str,
        nargs: str | None,
        default: Any,
        type: Callable[[str], Any] | None,
        choices: Sequence[str] | None,
        help: str,
        metavar: str | None,
    ) -> None:
        self.flags = flags  # () for a positional
        self.dest = dest
        self.action = action  # "store", "store_true" or "append"
        self.nargs = nargs  # positionals: None (one), "?" or "+"
        self.default = default
        self.type = type
        self.choices = choices
        self.help = help
        self.metavar = metavar


class ArgumentParser:
    def __init__(self, prog: str, description: str = "", add_help: bool = True) -> None:
        self.prog = prog
        self.description = description
        # False when a command uses -h itself (`run -h HOSTNAME`): only --help helps.
        self.add_help = add_help
        self._positionals: list[_Arg] = []
        self._flags: dict[str, _Arg] = {}  # "-a" and "--all" -> the same _Arg
        self._ordered: list[_Arg] = []

    def add_argument(
        self,
        *names: str,
        action: str = "store",
        nargs: str | None = None,
        default: Any = None,
        type: Callable[[str], Any] | None = None,  # argparse's names
        choices: Sequence[str] | None = None,
        dest: str | None = None,
        help: str = "",
        metavar: str | None = None,
    ) -> None:
        if action not in ("store", "store_true", "append"):
            raise ValueError(f"unsupported action {action!r}")
        if not names[0].startswith("-"):
            if nargs not in (None, "?", "+", "..."):
                raise ValueError(f"unsupported nargs {nargs!r}")
            arg = _Arg((), dest or names[0], action, nargs, default, type, choices, help, metavar)
            self._positionals.append(arg)
            return
        longs = [n for n in names if n.startswith("--")]
        name = dest or (longs[0] if longs else names[0]).lstrip("-").replace("-", "_")
        if action == "store_true":
            default = bool(default)
        arg = _Arg(names, name, action, None, default, type, choices, help, metavar)
        self._ordered.append(arg)
        for flag in names:
            self._flags[flag] = arg

    def error(self, message: str) -> NoReturn:
        print(f"{message}\nSee '{self.prog} --help'.", file=sys.stderr)
        sys.exit(USAGE_EXIT)

    def parse_args(self, argv: Sequence[str]) -> Namespace:
        ns = Namespace()
        for arg in self._ordered:
            default = arg.default
            setattr(ns, arg.dest, list(default or []) if arg.action == "append" else default)
        values: list[str] = []
        args = list(argv)
        while args:
            token = args.pop(0)
            if token == "--":
                values += args
                break
            if token == "--help" or (token == "-h" and self.add_help):
                self.print_help()
                sys.exit(0)
            if self._remainder_starts(values) and token != "-":
                # `run IMAGE CMD ARGS...`: from the command on, nothing is a flag of ours.
                values += [token, *args]
                break
            if token.startswith("--"):
                name, eq, inline = token.partition("=")
                self._take(ns, name, inline if eq else None, args)
            elif token.startswith("-") and token != "-":
                self._take_shorts(ns, token, args)
            else:
                values.append(token)
        self._assign(ns, values)
        return ns

    def _remainder_starts(self, values: list[str]) -> bool:
        """True when the next positional is a `...` one and the ones before it are filled."""
        for i, pos in enumerate(self._positionals):
            if pos.nargs == "...":
                return len(values) >= i
        return False

    def _take_shorts(self, ns: Namespace, token: str, args: list[str]) -> None:
        """-a, -aq (booleans together), -f value, -fvalue."""
        for i, letter in enumerate(token[1:], start=1):
            arg = self._flags.get("-" + letter)
            if arg is None:
                self.error(f"unknown shorthand flag: '{letter}' in {token}")
            if arg.action == "store_true":
                setattr(ns, arg.dest, True)
                continue
            rest = token[i + 1 :]
            self._take(ns, "-" + letter, rest or None, args)
            return

    def _take(self, ns: Namespace, name: str, inline: str | None, args: list[str]) -> None:
        arg = self._flags.get(name)
        if arg is None:
            self.error(f"unknown flag: {name}")
        if arg.action == "store_true":
            value = True if inline is None else _BOOL_TEXT.get(inline.lower())
            if value is None:
                self.error(f'invalid argument "{inline}" for "{name}" flag: not a boolean')
            setattr(ns, arg.dest, value)
            return
        if inline is None:
            if not args:
                self.error(f"flag needs an argument: {name}")
            inline = args.pop(0)
        converted = self._convert(arg, inline, f'"{name}" flag')
        if arg.action == "append":
            getattr(ns, arg.dest).append(converted)
        else:
            setattr(ns, arg.dest, converted)

    def _convert(self, arg: _Arg, text: str, what: str) -> Any:
        if arg.choices is not None and text not in arg.choices:
            self.error(f'invalid argument "{text}" for {what}: one of {", ".join(arg.choices)}')
        if arg.type is None:
            return text
        try:
            return arg.type(text)
        except ValueError:
            self.error(f'invalid argument "{text}" for {what}')

    def _assign(self, ns: Namespace, values: list[str]) -> None:
        """Share the arguments out in order: one each, `?` one if to spare, `+` the rest."""
        least = [0 if p.nargs in ("?", "...") else 1 for p in self._positionals]
        unbounded = any(p.nargs in ("+", "...") for p in self._positionals)
        if len(values) < sum(least) or (not unbounded and len(values) > len(least)):
            self.error(self._count_message(sum(least), len(least), unbounded))
        for i, pos in enumerate(self._positionals):
            spare = len(values) - sum(least[i + 1 :])
            value: Any
            if pos.nargs == "...":
                setattr(ns, pos.dest, list(values))
                values = []
                continue
            if pos.nargs == "+":
                taken, values = values[:spare], values[spare:]
                value = [self._convert(pos, v, f'"{pos.dest}"') for v in taken]
            elif pos.nargs == "?" and spare < 1:
                value = pos.default
            else:
                value = self._convert(pos, values.pop(0), f'"{pos.dest}"')
            setattr(ns, pos.dest, value)

    def _count_message(self, least: int, most: int, unbounded: bool) -> str:
        def plural(n: int) -> str:
            return f"{n} argument" + ("" if n == 1 else "s")

        if unbounded:
            return f'"{self.prog}" requires at least {plural(least)}.'
        if least == most:
            return f'"{self.prog}" requires exactly {plural(least)}.'
        if least == 0:
            return f'"{self.prog}" accepts at most {plural(most)}.'
        return f'"{self.prog}" requires at least {plural(least)} and at most {plural(most)}.'

    def format_help(self) -> str:
        words = [self.prog, "[OPTIONS]"] if self._ordered else [self.prog]
        for pos in self._positionals:
            word = pos.metavar or pos.dest.upper()
            words.append({"?": f"[{word}]", "+": f"{word} [{word}...]"}.get(pos.nargs or "", word))
        lines = [f"Usage:  {' '.join(words)}", "", self.description, ""]
        if self._ordered:
            lines.append("Options:")
            cells = []
            for arg in self._ordered:
                short = next((f for f in arg.flags if len(f) == 2), "")
                long = next((f for f in arg.flags if f.startswith("--")), "")
                left = f"{short + ', ' if short and long else short:4}{long}"
                if arg.action != "store_true":
                    left += " " + (arg.metavar or ("int" if arg.type is int else "string"))
                shown = arg.default not in (None, "", [], False)
                cells.append((left, f"{arg.help} (default {arg.default})" if shown else arg.help))
            width = max(len(left) for left, _ in cells) + 3
            lines += [f"  {left:<{width}}{text}".rstrip() for left, text in cells]
        return "\n".join(lines).rstrip("\n") + "\n"

    def print_help(self) -> None:
        sys.stdout.write(self.format_help())


def parser(command: str, description: str) -> ArgumentParser:
    return ArgumentParser(prog=f"skiff {command}", description=description)


def parse_filters(values: list[str]) -> dict[str, list[str]]:
    """Repeated `--filter key=value` flags -> {"key": ["value", ...]}, keys lowercased."""
    from skiff.errors import InvalidArgument

    filters: dict[str, list[str]] = {}
    for value in values:
        key, sep, arg = value.partition("=")
        if not sep:
            raise InvalidArgument(f"bad format of filter (expected name=value): {value}")
        filters.setdefault(key.strip().lower(), []).append(arg)
    return filters


def add_format(p: ArgumentParser, *, short: bool = True) -> None:
    flags = ["-f", "--format"] if short else ["--format"]
    p.add_argument(*flags, dest="format", default="", help="format output with a Go template")
