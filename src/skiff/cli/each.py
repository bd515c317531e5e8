"""Commands that act on each of several names, as docker's `inspect` and `rm` do.

Every name is tried in turn and a failure does not stop the rest; the exit status is 1
if any name failed. `inspect` prints what it found first and the errors after it;
`rm` echoes each name it removed, and each error as it happens.
"""

from __future__ import annotations

import sys

from skiff.client import ApiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any


def daemon_message(name: str, exc: ApiError) -> str:
    """The daemon's own words: "Error response from daemon: ..."."""
    return str(exc)


def inspect_each(
    names: Sequence[str],
    inspect: Callable[[str], Any],
    fmt: str,
    describe: Callable[[str, ApiError], str] = daemon_message,
) -> int:
    """What was found, as indented JSON or through --format; then the errors on stderr."""
    from skiff.cli.commands.inspect import indent_json

    found, errors = [], []
    for name in names:
        try:
            found.append(inspect(name))
        except ApiError as exc:
            errors.append(describe(name, exc))
    if fmt:
        from skiff.cli.format import format_items

        if found:  # docker's inspect renders its template per item: none, nothing
            sys.stdout.write(format_items(fmt, found))
    else:
        print(indent_json(found))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    return 0


def remove_each(
    names: Sequence[str], remove: Callable[[str], object], missing_ok: bool = False
) -> int:
    """Each name removed and echoed on stdout; each error on stderr as it happens.
    With `missing_ok` (`network rm -f`) a name that does not exist is passed over."""
    status = 0
    for name in names:
        try:
            remove(name)
        except ApiError as exc:
            if not (missing_ok and exc.status == 404):
                print(str(exc), file=sys.stderr)
                status = 1
            continue
        print(name)
    return status


def print_deleted(what: str, names: Sequence[str]) -> None:
    """A prune's report: "Deleted Volumes:", a name a line and a blank line; nothing if none."""
    if names:
        print(f"Deleted {what}:")
        for name in names:
            print(name)
        print()
