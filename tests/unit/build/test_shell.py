import pytest

from skiff.build.shell import Lexer
from skiff.errors import InvalidArgument

ENV = {"A": "a", "EMPTY": "", "SP": "x y"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "a"),
        ("${A}", "a"),
        ("pre${A}post", "prepost".replace("prepost", "preapost")),
        ("$NOPE", ""),
        ("${NOPE:-def}", "def"),
        ("${EMPTY:-def}", "def"),
        ("${EMPTY-def}", ""),
        ("${NOPE-def}", "def"),
        ("${A:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${NOPE:-$A}", "a"),
        ("'$A'", "$A"),
        ('"$A"', "a"),
        ('"\\$A"', "$A"),
        ("\\$A", "$A"),
        ('"a\\b"', "a\\b"),
        ("a\\ b", "a b"),
        ("$", "$"),
        ("$1x", "x"),
        ('"${SP}"', "x y"),
        ("${NOPE:-a b}", "a b"),
    ],
)
def test_process_word(word: str, expected: str) -> None:
    assert Lexer().process_word(word, ENV) == expected


def test_backtick_escape() -> None:
    assert Lexer("`").process_word("`$A\\x", ENV) == "$A\\x"


def test_words_split_outside_quotes() -> None:
    assert Lexer().process_words('80 "a b" $SP', ENV) == ["80", "a b", "x", "y"]


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${A", "syntax error: missing '}'"),
        ("${NOPE:?}", "NOPE: is not allowed to be unset"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ("${NOPE?custom}", "NOPE: custom"),
        ("${A:%x}", "unsupported modifier (%) in substitution"),
        ("'open", "unexpected end of statement while looking for matching single-quote"),
    ],
)
def test_errors(word: str, message: str) -> None:
    with pytest.raises(
        InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")
    ):
        Lexer().process_word(word, ENV)
