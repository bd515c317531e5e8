import pytest

from skiff.build.dockerfile import (
    DockerfileError,
    format_duration,
    parse,
    parse_duration,
    parse_words,
)


def kinds(text: str) -> list[str]:
    df = parse(text)
    return [i.kind for s in df.stages for i in s.instructions]


def test_continuations_and_comments() -> None:
    df = parse('FROM busybox\nRUN echo a \\\n  # a comment\n\n  && echo b\nCMD ["sh"]\n')
    run, cmd = df.stages[0].instructions
    assert run.args == ("echo a   && echo b",)
    assert run.line == 2
    assert cmd.json
    assert cmd.args == ("sh",)
    assert cmd.line == 6


def test_escape_directive() -> None:
    df = parse("# escape=`\nFROM busybox\nRUN echo a `\n b\nWORKDIR c:\\\\x\n")
    assert df.directives.escape == "`"
    assert df.stages[0].instructions[0].args == ("echo a  b",)
    assert df.stages[0].instructions[1].args == ("c:\\\\x",)


def test_directive_only_at_top() -> None:
    df = parse("FROM busybox\n# escape=`\nRUN a \\\n b\n")
    assert df.directives.escape == "\\"
    assert df.stages[0].instructions[0].args == ("a  b",)


def test_syntax_directive_and_bad_escape() -> None:
    assert (
        parse("# syntax=docker/dockerfile:1\nFROM x\n").directives.syntax == "docker/dockerfile:1"
    )
    with pytest.raises(DockerfileError, match="invalid ESCAPE"):
        parse("# escape=x\nFROM x\n")


def test_stages_and_meta_args() -> None:
    df = parse("ARG V=1\nFROM --platform=linux/amd64 busybox:${V} AS Build\nRUN x\nFROM build\n")
    assert [a.pairs for a in df.meta_args] == [(("V", "1"),)]
    assert df.stages[0].name == "build"
    assert df.stages[0].platform == "linux/amd64"
    assert df.stage_index("build") == 0
    assert df.stages[1].base == "build"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "FROM busybox\nENV A=1\nFORM x\n",
            "dockerfile parse error line 3: unknown instruction: FORM",
        ),
        (
            "FROM busybox a b c\n",
            "dockerfile parse error line 1: FROM requires either one or three arguments",
        ),
        ("ENV A=1\nFROM busybox\n", "no build stage in current context"),
        (
            "FROM busybox\nCOPY a\n",
            "dockerfile parse error line 2: COPY requires at least two arguments, but only one was provided. Destination could not be determined",
        ),
        ("FROM busybox\nENV A\n", "failed to parse Dockerfile: ENV must have two arguments"),
        ("# only a comment\n", "failed to parse Dockerfile: file with no instructions"),
        ("FROM b\nSHELL sh -c\n", "SHELL requires the arguments to be in JSON form"),
        ("FROM b\nONBUILD FROM x\n", "FROM isn't allowed as an ONBUILD trigger"),
        ("FROM b\nHEALTHCHECK NONE x\n", "HEALTHCHECK NONE takes no arguments"),
        ("FROM b\nHEALTHCHECK --retries=0 CMD x\n", "--retries must be at least 1"),
        ("FROM b\nCOPY --nope=1 a b\n", "Unknown flag: nope"),
        ("FROM b\nUSER a b\n", "USER requires exactly one argument"),
        ("FROM b AS 1x\n", "invalid name for build stage"),
        ("FROM b\nENV a=1 b\n", "Syntax error - can't find = in"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        parse(text)
    assert message in str(info.value)


def test_env_forms() -> None:
    df = parse('FROM b\nENV A=1 B="x y"\nENV C hello  world\nLABEL "k"=v\n')
    env1, env2, label = df.stages[0].instructions
    assert env1.pairs == (("A", "1"), ("B", '"x y"'))
    assert env2.pairs == (("C", "hello  world"),)
    assert label.pairs == (('"k"', "v"),)


def test_heredocs() -> None:
    df = parse("FROM b\nRUN <<EOF\necho $A\nEOF\nCOPY <<-'X' /f\n\tline\n\tX\nCMD x\n")
    run, copy, cmd = df.stages[0].instructions
    assert run.heredocs[0].content == "echo $A\n"
    assert run.heredocs[0].expand
    assert copy.heredocs[0].content == "line\n"
    assert not copy.heredocs[0].expand
    assert cmd.line == 8


def test_healthcheck() -> None:
    df = parse("FROM b\nHEALTHCHECK --interval=5s --retries=3 CMD curl x\nHEALTHCHECK NONE\n")
    hc, none = df.stages[0].instructions
    assert hc.healthcheck == {"Test": ["CMD-SHELL", "curl x"], "Interval": 5 * 10**9, "Retries": 3}
    assert none.healthcheck == {"Test": ["NONE"]}


def test_onbuild_and_flags() -> None:
    df = parse('FROM b\nONBUILD RUN echo "x"\nCOPY --from=build --chown=1:2 --chmod=600 a b /d/\n')
    onbuild, copy = df.stages[0].instructions
    assert onbuild.args == ('RUN echo "x"',)
    assert copy.flags == {"from": "build", "chown": "1:2", "chmod": "600"}
    assert copy.args == ("a", "b", "/d/")


def test_parse_words() -> None:
    assert parse_words('a="x y" b=\\"z') == ['a="x y"', 'b=\\"z']


def test_durations() -> None:
    assert parse_duration("1m30s") == 90 * 10**9
    assert parse_duration("300ms") == 300 * 10**6
    assert format_duration(30 * 10**9) == "30s"
    assert format_duration(90 * 10**9) == "1m30s"
    assert format_duration(0) == "0s"
