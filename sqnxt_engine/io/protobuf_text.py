"""A small reader for the protobuf text format (what Caffe's .prototxt files are written in).

No protobuf dependency and no schema: it reads the syntax and keeps every field, in order, with
its position, and the caller asks for fields by name and type. Supported syntax:

    name { ... }   name: { ... }   name < ... >          nested messages (':' optional)
    name: "str" 'str' "a" "b"                             strings, escapes, adjacent ones joined
    name: 12  -3  0x1F  1.5e-3  2.0f  inf  -nan           numbers
    name: MAX  name: true                                 enum identifiers and booleans
    name: [1, 2, 3]                                       a repeated field written as a list
    # comment                                             to the end of the line
    ';' or ',' after a field                              tolerated

Malformed text raises UserError "file:line:col: expected ..., got ...". Nesting deeper than the
max_nesting limit (limits.py) is refused where it happens: the parser recurses per level. Typed accessors
(`Message.int`, `.float`, `.bool`, `.str`, `.enum`, `.ints`, `.msg`) raise UserError naming the
field's position when a value has the wrong type.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import limits
from ..errors import UserError

_MISSING = object()
_PUNCT = "{}<>:;,[]-"
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
            "\\": "\\", "'": "'", '"': '"', "?": "?"}
_TRUE = {"true", "True", "t"}
_FALSE = {"false", "False", "f"}
_FLOAT_WORDS = {"inf": float("inf"), "infinity": float("inf"), "nan": float("nan")}


@dataclass(frozen=True)
class Token:
    kind: str  # "ident", "number", "string", "punct", "eof"
    text: str  # the decoded value for strings, the source text otherwise
    line: int
    col: int

    def describe(self) -> str:
        if self.kind == "eof":
            return "end of file"
        if self.kind == "string":
            return f"string {self.text!r}"
        return repr(self.text)


@dataclass(frozen=True)
class Scalar:
    """One scalar value as written: kind is "ident", "number" or "string"."""
    kind: str
    text: str
    line: int
    col: int


@dataclass
class Message:
    """A message: its fields in order, as (name, Scalar | Message) pairs, and where it starts."""
    source: str
    line: int = 1
    col: int = 1
    fields: list = field(default_factory=list)
    name: str = ""  # the field name it was given under ("" for the top level)

    def where(self, at=None) -> str:
        at = at or self
        return f"{self.source}:{at.line}:{at.col}"

    def all(self, name: str) -> list:
        return [v for n, v in self.fields if n == name]

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self.fields)

    def names(self) -> list[str]:
        return list(dict.fromkeys(n for n, _ in self.fields))

    def _last(self, name, want_message: bool):
        values = self.all(name)
        if not values:
            return None
        v = values[-1]  # a singular field given twice: the last wins, as in protobuf
        if want_message != isinstance(v, Message):
            raise UserError(f"{self.where(v)}: field {name!r}: expected "
                            f"{'a message { ... }' if want_message else 'a value'}")
        return v

    def msg(self, name: str) -> Message | None:
        return self._last(name, True)

    def msgs(self, name: str) -> list[Message]:
        out = self.all(name)
        for v in out:
            if not isinstance(v, Message):
                raise UserError(f"{self.where(v)}: field {name!r}: expected a message {{ ... }}")
        return out

    def _get(self, name, default, convert):
        v = self._last(name, False)
        if v is None:
            if default is _MISSING:
                raise UserError(f"{self.where()}: {self.name or 'the file'} has no field {name!r}")
            return default
        return convert(self, name, v)

    def _get_all(self, name, convert) -> list:
        out = []
        for v in self.all(name):
            if isinstance(v, Message):
                raise UserError(f"{self.where(v)}: field {name!r}: expected a value")
            out.append(convert(self, name, v))
        return out

    def int(self, name, default=_MISSING) -> int:
        return self._get(name, default, _to_int)

    def ints(self, name) -> list[int]:
        return self._get_all(name, _to_int)

    def float(self, name, default=_MISSING) -> float:
        return self._get(name, default, _to_float)

    def floats(self, name) -> list[float]:
        return self._get_all(name, _to_float)

    def bool(self, name, default=_MISSING) -> bool:
        return self._get(name, default, _to_bool)

    def str(self, name, default=_MISSING) -> str:
        return self._get(name, default, _to_str)

    def strs(self, name) -> list[str]:
        return self._get_all(name, _to_str)

    def enum(self, name, default=_MISSING, numbers: dict[int, str] | None = None) -> str:
        """An enum value's name; `numbers` maps the numeric form (e.g. `pool: 1`) to names."""
        def convert(m, n, v):
            if v.kind == "ident" and v.text not in _TRUE | _FALSE:
                return v.text
            if v.kind == "number" and numbers is not None:
                k = _to_int(m, n, v)
                if k in numbers:
                    return numbers[k]
            raise _bad(m, n, v, "an enum name")
        return self._get(name, default, convert)


def _bad(m: Message, name: str, v: Scalar, expected: str) -> UserError:
    shown = repr(v.text) if v.kind == "string" else v.text
    return UserError(f"{m.where(v)}: field {name!r}: expected {expected}, got {shown}")


def _to_int(m, name, v: Scalar) -> int:
    if v.kind == "number":
        t = v.text.lower()
        sign, digits = (-1, t[1:]) if t.startswith("-") else (1, t)
        try:
            if digits.startswith("0x"):
                return sign * int(digits[2:], 16)
            if len(digits) > 1 and digits.startswith("0") and digits.isdigit():
                return sign * int(digits, 8)
            if digits.isdigit():
                return sign * int(digits)
        except ValueError:
            pass
    raise _bad(m, name, v, "an integer")


def _to_float(m, name, v: Scalar) -> float:
    t = v.text.lower()
    if v.kind == "number" and "_" not in t:
        body = t.lstrip("-")
        if body.startswith("0x") or (len(body) > 1 and body[0] == "0" and body.isdigit()):
            return float(_to_int(m, name, v))
        if body in _FLOAT_WORDS:
            return -_FLOAT_WORDS[body] if t.startswith("-") else _FLOAT_WORDS[body]
        try:
            return float(t[:-1] if t.endswith("f") else t)
        except ValueError:
            pass
    if v.kind == "ident" and t in _FLOAT_WORDS:
        return _FLOAT_WORDS[t]
    raise _bad(m, name, v, "a number")


def _to_bool(m, name, v: Scalar) -> bool:
    if v.kind == "ident" and v.text in _TRUE | _FALSE:
        return v.text in _TRUE
    if v.kind == "number" and v.text in ("0", "1"):
        return v.text == "1"
    raise _bad(m, name, v, "true or false")


def _to_str(m, name, v: Scalar) -> str:
    if v.kind == "string":
        return v.text
    raise _bad(m, name, v, "a quoted string")


class _Lexer:
    def __init__(self, text: str, source: str):
        self.text, self.source = text, source
        self.i, self.line, self.col = 0, 1, 1

    def error(self, msg: str, line=None, col=None) -> UserError:
        return UserError(f"{self.source}:{line or self.line}:{col or self.col}: {msg}")

    def _advance(self, n: int = 1) -> None:
        for _ in range(n):
            if self.text[self.i] == "\n":
                self.line, self.col = self.line + 1, 1
            else:
                self.col += 1
            self.i += 1

    def tokens(self):
        text = self.text
        while True:
            while self.i < len(text):  # whitespace and comments
                ch = text[self.i]
                if ch.isspace():
                    self._advance()
                elif ch == "#":
                    while self.i < len(text) and text[self.i] != "\n":
                        self._advance()
                else:
                    break
            if self.i >= len(text):
                yield Token("eof", "", self.line, self.col)
                return
            line, col, ch = self.line, self.col, text[self.i]
            if ch in "\"'":
                yield Token("string", self._string(ch), line, col)
            elif ch.isalnum() or ch in "_." or (ch == "-" and self._starts_number(self.i + 1)):
                start, numeric = self.i, not (ch.isalpha() or ch == "_")
                self._advance()
                while self.i < len(text) and (text[self.i].isalnum() or text[self.i] in "_.+-"):
                    if text[self.i] in "+-" and not (numeric and text[self.i - 1] in "eE"):
                        break
                    self._advance()
                word = text[start:self.i]
                yield Token("number" if numeric else "ident", word, line, col)
            elif ch in _PUNCT:
                self._advance()
                yield Token("punct", ch, line, col)
            else:
                raise self.error(f"unexpected character {ch!r}")

    def _starts_number(self, j: int) -> bool:
        return j < len(self.text) and (self.text[j].isdigit() or self.text[j] == ".")

    def _string(self, quote: str) -> str:
        text, out = self.text, []
        line, col = self.line, self.col
        self._advance()
        while True:
            if self.i >= len(text) or text[self.i] == "\n":
                raise self.error(f"string opened at {line}:{col} is not closed on its line", line, col)
            ch = text[self.i]
            if ch == quote:
                self._advance()
                return "".join(out)
            if ch != "\\":
                out.append(ch)
                self._advance()
                continue
            self._advance()
            if self.i >= len(text):
                continue  # reported as an unclosed string
            e = text[self.i]
            if e in _ESCAPES:
                out.append(_ESCAPES[e])
                self._advance()
            elif e in "xXuU01234567":
                if e in "xX":
                    base, width, j = 16, 2, self.i + 1
                elif e in "uU":
                    base, width, j = 16, (4 if e == "u" else 8), self.i + 1
                else:
                    base, width, j = 8, 3, self.i
                digits = ""
                valid = "0123456789abcdefABCDEF" if base == 16 else "01234567"
                while len(digits) < width and j < len(text) and text[j] in valid:
                    digits += text[j]
                    j += 1
                if not digits:
                    raise self.error(f"bad escape '\\{e}' in string")
                out.append(chr(int(digits, base)))
                self._advance(j - self.i)
            else:
                raise self.error(f"unknown escape '\\{e}' in string")


class _Parser:
    def __init__(self, text: str, source: str):
        self.lexer = _Lexer(text, source)
        self.source = source
        self.tokens = self.lexer.tokens()
        self.tok = next(self.tokens)
        self.depth = 0

    def error(self, expected: str, tok: Token | None = None) -> UserError:
        tok = tok or self.tok
        return UserError(f"{self.source}:{tok.line}:{tok.col}: expected {expected}, got {tok.describe()}")

    def take(self) -> Token:
        tok, self.tok = self.tok, next(self.tokens)
        return tok

    def at(self, *punct: str) -> bool:
        return self.tok.kind == "punct" and self.tok.text in punct

    def parse(self) -> Message:
        root = Message(self.source)
        self.body(root, None)
        return root

    def body(self, msg: Message, close: tuple[str, Token, str] | None) -> None:
        """Fields until `close` (the closing bracket, the opening token and the field's name) or EOF."""
        while True:
            if close and self.at(close[0]):
                self.take()
                return
            if close and (self.tok.kind == "eof" or self.at("}", ">")):
                ch, opened, name = close
                raise self.error(f"{ch!r} to close {name!r} opened at {opened.line}:{opened.col}")
            if self.tok.kind == "eof":
                return
            if self.tok.kind != "ident":
                if self.at("}", ">"):
                    raise UserError(f"{self.source}:{self.tok.line}:{self.tok.col}: "
                                    f"{self.tok.text!r} closes no open bracket")
                raise self.error("a field name" + (f" or {close[0]!r}" if close else ""))
            name_tok = self.take()
            self.field(msg, name_tok)
            if self.at(";", ","):
                self.take()

    def field(self, msg: Message, name_tok: Token) -> None:
        name = name_tok.text
        colon = self.at(":")
        if colon:
            self.take()
        if self.at("{", "<"):
            opened = self.take()
            if self.depth >= limits.current().max_nesting:
                raise limits.exceeded(f"{self.source}:{opened.line}:{opened.col}: nesting depth",
                                      self.depth + 1, "max_nesting")
            sub = Message(self.source, name_tok.line, name_tok.col, name=name)
            self.depth += 1
            self.body(sub, ("}" if opened.text == "{" else ">", opened, name))
            self.depth -= 1
            msg.fields.append((name, sub))
            return
        if not colon:
            raise self.error(f"':' or '{{' after field name {name!r}")
        if self.at("["):
            self.take()
            while not self.at("]"):
                if self.at("{", "<"):
                    self.field(msg, name_tok)  # a list of messages: name: [{...}, {...}]
                else:
                    msg.fields.append((name, self.scalar(name)))
                if self.at(","):
                    self.take()
                elif not self.at("]"):
                    raise self.error(f"',' or ']' in the list of {name!r}")
            self.take()
            return
        msg.fields.append((name, self.scalar(name)))

    def scalar(self, name: str) -> Scalar:
        tok = self.tok
        if tok.kind == "string":
            parts = []
            while self.tok.kind == "string":  # "a" "b" is "ab"
                parts.append(self.take().text)
            return Scalar("string", "".join(parts), tok.line, tok.col)
        if tok.kind in ("number", "ident"):
            self.take()
            return Scalar(tok.kind, tok.text, tok.line, tok.col)
        if self.at("-"):  # - 5, -inf, -nan
            self.take()
            if self.tok.kind == "number" and not self.tok.text.startswith("-") or (
                    self.tok.kind == "ident" and self.tok.text.lower() in _FLOAT_WORDS):
                return Scalar("number", "-" + self.take().text, tok.line, tok.col)
        raise self.error(f"a value for field {name!r}", self.tok)


def parse(text: str, source: str = "<text>") -> Message:
    """Parse protobuf text into its top-level Message. `source` names the text in errors."""
    return _Parser(text, source).parse()
