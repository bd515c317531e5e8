"""Docker's Dockerfile shell lexer: variable substitution and quote removal.

The rules of moby/buildkit's `shell/lex.go`, which the classic builder uses for the
instructions that expand variables (FROM, ADD, COPY, ENV, EXPOSE, LABEL, STOPSIGNAL,
USER, VOLUME, WORKDIR, ARG):

    'single'      literal up to the next ', the escape character included
    "double"      $ expands; the escape character escapes only " $ and itself
    \\x           (outside quotes) x literally; the escape character is \\ or `
    $NAME ${NAME} an unset name is the empty string
    ${N:-word}    word if N is unset or empty   ${N-word}  word if N is unset
    ${N:+word}    word if N is set and not empty ${N+word}  word if N is set
    ${N:?msg}     an error if N is unset or empty ${N?msg}  an error if N is unset

`word` is itself expanded (`${A:-$B}`). `$` before anything that cannot start a
name stays a `$`.
"""

from __future__ import annotations

from collections.abc import Mapping

from skiff.errors import InvalidArgument

_SPECIAL = set("@*#?-$!0")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch


class Lexer:
    def __init__(self, escape: str = "\\") -> None:
        self.escape = escape

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """One word: variables expanded, quotes and escapes removed."""
        result, _ = self._process(word, env)
        return result

    def process_words(self, text: str, env: Mapping[str, str]) -> list[str]:
        """Like process_word, then split on unquoted whitespace (EXPOSE, VOLUME)."""
        _, words = self._process(text, env)
        return words

    def _process(self, text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
        w = _Word(_Scanner(text), env, self.escape)
        return w.stop_on("")


class _Word:
    def __init__(self, scanner: _Scanner, env: Mapping[str, str], escape: str) -> None:
        self.s = scanner
        self.env = env
        self.escape = escape

    def stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words: list[str] = []
        word: list[str] = []
        in_word = False  # a quoted empty string still makes a word
        while self.s.peek():
            ch = self.s.peek()
            if stop and ch == stop:
                self.s.next()
                text = "".join(result)
                return text, [*words, "".join(word)] if (word or in_word) else words
            if ch == "'":
                part = self._single()
                result.append(part)
                word.append(part)
                in_word = True
            elif ch == '"':
                part = self._double()
                result.append(part)
                word.append(part)
                in_word = True
            elif ch == "$":
                part = self._dollar()
                result.append(part)
                # an unquoted expansion splits into words on whitespace
                pieces = part.split(" ") if part else []
                for n, piece in enumerate(pieces):
                    if n:
                        if word or in_word:
                            words.append("".join(word))
                        word, in_word = [], False
                    word.append(piece)
            else:
                self.s.next()
                if ch == self.escape:
                    nxt = self.s.next()
                    if not nxt:
                        break
                    result.append(nxt)
                    word.append(nxt)
                    continue
                result.append(ch)
                if ch in " \t\n\r\f\v":
                    if word or in_word:
                        words.append("".join(word))
                    word, in_word = [], False
                else:
                    word.append(ch)
        if stop:
            raise InvalidArgument(f"unexpected end of statement while looking for matching {stop}")
        if word or in_word:
            words.append("".join(word))
        return "".join(result), words

    def _single(self) -> str:
        self.s.next()
        out: list[str] = []
        while True:
            ch = self.s.next()
            if not ch:
                raise InvalidArgument(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def _double(self) -> str:
        self.s.next()
        out: list[str] = []
        while True:
            ch = self.s.peek()
            if not ch:
                raise InvalidArgument(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.s.next()
                return "".join(out)
            if ch == "$":
                out.append(self._dollar())
                continue
            self.s.next()
            if ch == self.escape and self.s.peek() in ('"', "$", self.escape) and self.s.peek():
                ch = self.s.next()
            out.append(ch)

    def _name(self) -> str:
        name: list[str] = []
        while self.s.peek():
            ch = self.s.peek()
            if not name and ch.isdigit():
                while self.s.peek().isdigit() and self.s.peek():
                    name.append(self.s.next())
                return "".join(name)
            if not name and ch in _SPECIAL:
                return self.s.next()
            if not (ch.isalnum() or ch == "_"):
                break
            name.append(self.s.next())
        return "".join(name)

    def _dollar(self) -> str:
        self.s.next()  # the $
        if self.s.peek() != "{":
            name = self._name()
            if not name:
                return "$"
            return self.env.get(name, "")
        self.s.next()  # the {
        name = self._name()
        ch = self.s.next()
        if ch == "}":
            return self.env.get(name, "")
        colon = ch == ":"
        modifier = self.s.next() if colon else ch
        if modifier not in ("-", "+", "?"):
            if not colon:
                if not ch:
                    raise InvalidArgument("syntax error: missing '}'")
                raise InvalidArgument("missing ':' in substitution")
            raise InvalidArgument(f"unsupported modifier ({modifier}) in substitution")
        try:
            word, _ = self.stop_on("}")
        except InvalidArgument:
            if not self.s.peek():
                raise InvalidArgument("syntax error: missing '}'") from None
            raise
        is_set = name in self.env
        value = self.env.get(name, "")
        present = bool(value) if colon else is_set
        if modifier == "-":
            return value if present else word
        if modifier == "+":
            return word if present else ""
        if not present:
            message = word or (
                "is not allowed to be empty" if is_set else "is not allowed to be unset"
            )
            raise InvalidArgument(f"{name}: {message}")
        return value
