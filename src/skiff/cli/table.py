"""docker's table output, without the template engine.

Most output is a format made only of fields, like every command's default

    table {{.Repository}}\t{{.Tag}}\t{{.ID}}

so it is rendered here directly: a header row, one row per item, aligned as Go's tabwriter
aligns them. Anything richer (functions, pipelines, literal text) goes to skiff.cli.format,
which needs `re` and costs start-up time.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

TABLE_PREFIX = "table"


def preformat(fmt: str) -> tuple[str, bool]:
    """Strip the `table` prefix and turn literal \\t and \\n into tab and newline."""
    is_table = fmt.startswith(TABLE_PREFIX) and (
        len(fmt) == len(TABLE_PREFIX) or fmt[len(TABLE_PREFIX)].isspace()
    )
    if is_table:
        fmt = fmt[len(TABLE_PREFIX) :]
    fmt = fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    return fmt, is_table


def default_header(field: str) -> str:
    """CreatedAt -> CREATED AT, ID -> ID (what docker's headers look like)."""
    out: list[str] = []
    for i, ch in enumerate(field):
        before = field[i - 1] if i else ""
        if "A" <= ch <= "Z" and ("a" <= before <= "z" or "0" <= before <= "9"):
            out.append(" ")
        out.append(ch)
    return "".join(out).upper()


def tabulate(lines: Sequence[str], minwidth: int = 10, padding: int = 3) -> list[str]:
    """Align tab-separated cells like Go's tabwriter as docker uses it (10, 1, 3, ' ')."""
    rows = [line.split("\t") for line in lines]
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row[:-1]):  # the cell after the last tab is not aligned
            if i >= len(widths):
                widths.append(0)
            widths[i] = max(widths[i], len(cell) + padding, minwidth)
    out = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        out.append(("".join(cells) + row[-1]).rstrip(" ") if row else "")
    return out


def field_columns(template: str) -> list[str] | None:
    """["Repository", "Tag"] for "{{.Repository}}\\t{{.Tag}}"; None unless every cell is
    exactly one top-level field."""
    fields = []
    for cell in template.split("\t"):
        name = cell.removeprefix("{{.").removesuffix("}}")
        if len(name) != len(cell) - 5 or not name.isidentifier():
            return None
        fields.append(name)
    return fields


def render_fields(
    fmt: str, items: Sequence[Any], headers: Mapping[str, str] | None = None
) -> str | None:
    """The output of `fmt` when it is made only of fields whose values are all strings;
    None when it needs the template engine."""
    template, is_table = preformat(fmt)
    fields = field_columns(template)
    if fields is None:
        return None
    lines: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            return None
        values: list[str] = []
        for field in fields:
            value = item.get(field)
            if not isinstance(value, str):
                return None
            values.append(value)
        lines.append("\t".join(values))
    if is_table:
        names = headers or {}
        lines.insert(0, "\t".join(names[f] if f in names else default_header(f) for f in fields))
        lines = tabulate(lines)
    return "".join(line + "\n" for line in lines)
