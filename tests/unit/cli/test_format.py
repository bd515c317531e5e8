from __future__ import annotations

import pytest

from skiff.cli.format import Template, TemplateError, format_items, tabulate
from skiff.cli.table import render_fields

DATA = {
    "ID": "abc123",
    "Name": "web",
    "Config": {"Image": "busybox", "Labels": {"a": "1", "b": "<2>"}},
    "Ports": [80, 443],
    "Running": True,
    "Nothing": None,
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.ID}}", "abc123"),
        ("id={{ .ID }} name={{.Name}}", "id=abc123 name=web"),
        ("{{.Config.Image}}", "busybox"),
        ("{{.Config.Missing}}", "<no value>"),
        ("{{.Nothing}}", "<nil>"),
        ("{{.Running}}", "true"),
        ("{{.Ports}}", "[80 443]"),
        ("{{.Config.Labels}}", "map[a:1 b:<2>]"),
        ("{{json .Config.Labels}}", '{"a":"1","b":"\\u003c2\\u003e"}'),
        ("{{json .Ports}}", "[80,443]"),
        ("{{json .Nothing}}", "null"),
        ('{{.Name | printf "%-5s|"}}', "web  |"),
        ('{{printf "%s:%d" .Name 7}}', "web:7"),
        ('{{printf "%v" .Ports}}', "[80 443]"),
        ("{{upper .Name}}", "WEB"),
        ('{{join .Ports ","}}', "80,443"),
        ("{{len .Ports}}", "2"),
        ("{{.Name | upper | lower}}", "web"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert Template(template).render(DATA) == expected


def test_json_dot_is_whole_object() -> None:
    assert Template("{{json .}}").render({"A": 1, "B": [True]}) == '{"A":1,"B":[true]}'


@pytest.mark.parametrize(
    "template",
    ["{{range .Ports}}{{.}}{{end}}", "{{if .Running}}x{{end}}", "{{nosuch .X}}", "{{.ID"],
)
def test_unsupported_is_an_error(template: str) -> None:
    with pytest.raises(TemplateError):
        Template(template).render(DATA)


def test_table_has_header_and_aligned_columns() -> None:
    rows = [{"ID": "a", "Name": "first"}, {"ID": "bbbbbbbbbbbbbb", "Name": "x"}]
    out = format_items("table {{.ID}}\\t{{.Name}}", rows, {"ID": "CONTAINER ID"})
    assert out.splitlines() == [
        "CONTAINER ID     NAME",
        "a                first",
        "bbbbbbbbbbbbbb   x",
    ]


def test_default_header_splits_camel_case() -> None:
    out = format_items("table {{.CreatedAt}}", [{"CreatedAt": "now"}])
    assert out == "CREATED AT\nnow\n"


def test_non_table_escapes_and_one_line_per_item() -> None:
    out = format_items("{{.A}}\\t{{.B}}", [{"A": 1, "B": 2}, {"A": 3, "B": 4}])
    assert out == "1\t2\n3\t4\n"


def test_tabulate_like_go_tabwriter() -> None:
    assert tabulate(["a\tb\tc", "dddd\te\tf"]) == ["a         b         c", "dddd      e         f"]


def test_field_only_formats_skip_the_template_engine_with_the_same_output() -> None:
    items = [
        {"Repository": "busybox", "Tag": "latest", "ID": "f6b2f3eabb5c", "CreatedAt": "x"},
        {"Repository": "a-much-longer-repository", "Tag": "", "ID": "0", "CreatedAt": "y"},
    ]
    headers = {"Repository": "REPOSITORY", "ID": "IMAGE ID"}
    for fmt in (
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedAt}}",
        "table {{.Repository}}\\t{{.Tag}}",
        "{{.ID}}",
        "{{.Repository}}\t{{.Tag}}",
    ):
        fast = render_fields(fmt, items, headers)
        assert fast is not None, fmt
        assert fast == format_items(fmt, items, headers), fmt
    for fmt in ("{{.Repository}}:{{.Tag}}", "{{json .}}", "table {{.Missing}}", "{{ .ID }}"):
        assert render_fields(fmt, items, headers) is None, fmt
    assert render_fields("{{.N}}", [{"N": 1}]) is None  # not a string: Go's %v rules
