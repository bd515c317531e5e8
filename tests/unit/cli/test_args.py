"""skiff.cli.args reads flags as the docker CLI does (pflag's rules)."""

from __future__ import annotations

import pytest

from skiff.cli.args import ArgumentParser, add_format, parse_filters, parser
from skiff.errors import InvalidArgument


def images_parser() -> ArgumentParser:
    p = parser("images", "List images")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-a", "--all", action="store_true", help="show all images")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.add_argument("-f", "--filter", action="append", default=[], help="filter output")
    p.add_argument("--days", type=int, default=365, help="validity in days")
    add_format(p, short=False)
    return p


def test_defaults() -> None:
    ns = images_parser().parse_args([])
    assert (ns.reference, ns.all, ns.quiet, ns.no_trunc) == (None, False, False, False)
    assert (ns.filter, ns.days, ns.format) == ([], 365, "")


def test_flag_spellings_and_interspersed_arguments() -> None:
    ns = images_parser().parse_args(
        ["-aq", "busybox", "--filter=a=b", "-f", "c=d", "-fe=f", "--format", "{{.ID}}"]
    )
    assert (ns.all, ns.quiet, ns.reference) == (True, True, "busybox")
    assert ns.filter == ["a=b", "c=d", "e=f"]
    assert ns.format == "{{.ID}}"
    ns = images_parser().parse_args(["--all=false", "--no-trunc", "--days", "7", "--", "-x"])
    assert (ns.all, ns.no_trunc, ns.days, ns.reference) == (False, True, 7, "-x")


def test_positional_counts() -> None:
    p = parser("import", "Import")
    p.add_argument("file", metavar="file|URL|-")
    p.add_argument("reference", nargs="?")
    p.add_argument("names", nargs="+", metavar="NAME")
    ns = p.parse_args(["-", "a"])
    assert (ns.file, ns.reference, ns.names) == ("-", None, ["a"])
    ns = p.parse_args(["f", "r", "a", "b"])
    assert (ns.file, ns.reference, ns.names) == ("f", "r", ["a", "b"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus"], "unknown flag: --bogus"),
        (["-z"], "unknown shorthand flag: 'z' in -z"),
        (["--format"], "flag needs an argument: --format"),
        (["--days", "many"], 'invalid argument "many" for "--days" flag'),
        (["--all=maybe"], 'invalid argument "maybe" for "--all" flag'),
        (["a", "b"], '"skiff images" accepts at most 1 argument.'),
    ],
)
def test_errors_exit_125_as_docker_does(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        images_parser().parse_args(argv)
    assert info.value.code == 125
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.endswith("See 'skiff images --help'.\n")


def test_required_arguments_message(capsys: pytest.CaptureFixture[str]) -> None:
    p = parser("tag", "Tag")
    p.add_argument("source")
    p.add_argument("target")
    with pytest.raises(SystemExit):
        p.parse_args(["a"])
    assert '"skiff tag" requires exactly 2 arguments.' in capsys.readouterr().err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        images_parser().parse_args(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage:  skiff images [OPTIONS] [REPOSITORY[:TAG]]\n\nList images\n")
    assert "  -a, --all             show all images\n" in out
    assert "      --days int        validity in days (default 365)\n" in out


def test_filters() -> None:
    assert parse_filters(["Dangling=true", "label=a=b"]) == {
        "dangling": ["true"],
        "label": ["a=b"],
    }
    with pytest.raises(InvalidArgument):
        parse_filters(["nokey"])
