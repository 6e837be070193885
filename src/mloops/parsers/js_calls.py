"""Scripts made only of calls to reviewed functions with data arguments, recognized without running them.

Libraries such as folium write their page script as a sequence of element snippets: ``var marker_<hex> =
L.marker([52.0, 10.0], {...}).addTo(map_<hex>);``. No fixed template covers every combination, but each
statement is a call to one of the library's factory functions or methods, with literals as arguments. This
module accepts a script only when every token fits that subset of JavaScript:

    statement  := ("var" | "let" | "const") NAME "=" expr | GLOBAL "=" literal | call   (";" optional)
    expr       := primary ( "." NAME | "(" args ")" | "[" number "]" )*
    primary    := string | template-without-${} | number | true | false | null | [..] | {..} | NAME | PATH
                | "new" PATH "(" args ")"

A call's callee is a reviewed function path (``L.map``), or a reviewed method on a value of the script; a
property is read only as a reviewed constant (``L.CRS.EPSG3857``) or as a key the script itself wrote in an
object literal it declared (never an inherited one such as ``constructor``). Declared names must match the library's
naming pattern, so no ``var location = ...`` assigns a window property. Function literals, operators, ``new``,
computed keys, ``__proto__`` keys and ``${...}`` are outside the subset: the script is then unknown. Strings
are returned decoded, since the library writes some of them into the page as HTML.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

MAX_NESTING = 64  # brackets inside brackets; deeper data is not accepted
_TOKEN = re.compile(
    r"""(?P<space>[ \t\n\r\f\v\u00a0\ufeff\u2028\u2029]+|//[^\n\r\u2028\u2029]*|/\*.*?\*/)
      | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
      | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<string>"(?:[^"\\\n\r]|\\[\s\S])*"|'(?:[^'\\\n\r]|\\[\s\S])*')
      | (?P<template>`(?:[^`\\$]|\\[\s\S]|\$(?!\{))*`)
      | (?P<punct>\.\.\.|[()[\]{},:;.=-])""",
    re.S | re.X,
)
_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]{1,6}\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|\r\n|[\s\S])")
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_CONTINUATION = ("\n", "\r", "\r\n", "\u2028", "\u2029")
_LITERAL_NAMES = frozenset({"true", "false", "null", "NaN", "Infinity", "undefined"})
_FORBIDDEN_KEYS = frozenset({"__proto__", "constructor", "prototype"})


class Grammar(NamedTuple):
    """What one library's scripts may call and name (from its renderer entry, reviewed data)."""

    functions: frozenset[str]  # dotted paths called as functions: "L.map", "$"
    string_only: frozenset[str]  # functions called with one string literal and nothing else: "$"
    methods: frozenset[str]  # method names called on the script's own values
    constants: frozenset[str]  # dotted paths read as values: "L.CRS.EPSG3857"
    globals: frozenset[str]  # names a statement may set to a literal: "L_NO_TOUCH"
    declared: re.Pattern[str]  # the names "var" may declare


class _Outside(Exception):
    """The script leaves the subset."""


class _Tokens:
    def __init__(self, script: str, check_time: Callable[[], None]) -> None:
        self.items: list[tuple[str, str]] = []
        position = 0
        for count, match in enumerate(_TOKEN.finditer(script)):
            if match.start() != position:
                raise _Outside
            position = match.end()
            kind = match.lastgroup or ""
            if kind != "space":
                self.items.append((kind, match.group()))
            if count % 65536 == 0:
                check_time()
        if position != len(script):
            raise _Outside
        self.index = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.index + offset
        return self.items[index] if index < len(self.items) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        if self.take()[1] != text:
            raise _Outside


class _Reader:
    def __init__(self, tokens: _Tokens, grammar: Grammar, check_time: Callable[[], None]) -> None:
        self.tokens = tokens
        self.grammar = grammar
        self.check_time = check_time
        self.names: set[str] = set()
        self.records: dict[str, set[str]] = {}  # names declared as object literals: their keys
        self.strings: list[str] = []

    def program(self) -> None:
        tokens = self.tokens
        while tokens.peek()[0] != "end":
            self.check_time()
            kind, text = tokens.peek()
            if text == ";":
                tokens.take()
            elif text in ("var", "let", "const"):
                tokens.take()
                name = tokens.take()[1]
                if self.grammar.declared.fullmatch(name) is None or name in self.names:
                    raise _Outside
                tokens.expect("=")
                keys = self.record() if tokens.peek()[1] == "{" else None
                if keys is None:
                    self.expression(0)
                else:
                    self.records[name] = keys
                self.names.add(name)
            elif kind == "name" and text in self.grammar.globals and tokens.peek(1)[1] == "=":
                tokens.take()
                tokens.take()
                if not self.literal():
                    raise _Outside
            elif not self.expression(0):  # a statement of its own is a call, never a bare value
                raise _Outside

    def record(self) -> set[str] | None:
        """Reads an object literal that is the whole value: its keys; None (nothing read) when more follows."""
        start, strings = self.tokens.index, len(self.strings)
        keys: set[str] = set()
        self.items(0, "}", lambda depth: keys.add(self.property(depth)))
        if self.tokens.peek()[1] in (".", "(", "["):
            self.tokens.index = start
            del self.strings[strings:]
            return None
        return keys - {""}

    def literal(self) -> bool:
        kind, text = self.tokens.take()
        if kind == "string" or kind == "template":
            self.strings.append(unescape_string(text[1:-1]))
            return True
        return kind == "number" or text in _LITERAL_NAMES

    def expression(self, depth: int) -> bool:
        """Reads one expression; whether it ends in a call."""
        if depth > MAX_NESTING:
            raise _Outside
        tokens = self.tokens
        kind, text = tokens.peek()
        path: str | None = None  # the dotted path read so far from a global, until it is called
        if text == "[":
            self.items(depth, "]", self.element)
        elif text == "{":
            self.items(depth, "}", self.property)
        elif text == "-" and tokens.peek(1)[0] == "number":
            tokens.take()
            tokens.take()
        elif text == "new" and tokens.peek(1)[0] == "name":
            tokens.take()
            path = tokens.take()[1]
            while tokens.peek()[1] == "." and tokens.peek(1)[0] == "name":
                tokens.take()
                path = f"{path}.{tokens.take()[1]}"
            if path not in self.grammar.functions or tokens.peek()[1] != "(":
                raise _Outside
        elif kind == "name" and text not in _LITERAL_NAMES and text not in self.names:
            tokens.take()
            path = text
        elif kind == "name" and text in self.records and tokens.peek(1)[1] == ".":
            tokens.take(), tokens.take()
            if tokens.take()[1] not in self.records[text]:
                raise _Outside
        elif kind == "name" and text in self.names:
            tokens.take()
        elif not self.literal():
            raise _Outside
        called = method = False
        while True:
            text = tokens.peek()[1]
            if text == "." and tokens.peek(1)[0] == "name":
                tokens.take()
                member = tokens.take()[1]
                if path is not None:
                    path = f"{path}.{member}"
                elif tokens.peek()[1] != "(" or member not in self.grammar.methods:
                    raise _Outside
                method = path is None
                continue
            if text == "(":  # only a reviewed function or method is called, never a value
                if not method and (path is None or path not in self.grammar.functions):
                    raise _Outside
                if path in self.grammar.string_only:
                    self.one_string()
                else:
                    self.items(depth, ")", self.element)
                path, method = None, False
                called = True
            elif text == "[" and tokens.peek(1)[0] == "number" and tokens.peek(2)[1] == "]" and path is None:
                tokens.take(), tokens.take(), tokens.take()
                called = False
            else:
                break
        if path is not None and path not in self.grammar.constants:
            raise _Outside
        return called

    def items(self, depth: int, close: str, read: Callable[[int], object]) -> None:
        tokens = self.tokens
        tokens.take()
        while tokens.peek()[1] != close:
            read(depth + 1)
            if tokens.peek()[1] != ",":
                break
            tokens.take()  # a trailing comma is allowed, as JavaScript allows it
        tokens.expect(close)

    def one_string(self) -> None:
        """ "(" string ")": jQuery given an object as well sets attributes from it, inline handlers included."""
        self.tokens.expect("(")
        if self.tokens.peek()[0] not in ("string", "template"):
            raise _Outside
        self.literal()
        self.tokens.expect(")")

    def element(self, depth: int) -> None:
        self.expression(depth)

    def property(self, depth: int) -> str:
        """Reads one property; its key ("" for a spread)."""
        tokens = self.tokens
        if tokens.peek()[1] == "...":
            tokens.take()
            if tokens.peek()[1] != "{":
                raise _Outside
            self.expression(depth)
            return ""
        kind, text = tokens.take()
        if kind == "string":
            key = unescape_string(text[1:-1])
            self.strings.append(key)  # Leaflet writes some keys into the page too (layer names)
        elif kind in ("name", "number"):
            key = text
        else:
            raise _Outside
        if key in _FORBIDDEN_KEYS:
            raise _Outside
        tokens.expect(":")
        self.expression(depth)
        return key


def unescape_string(body: str) -> str:
    """The text a JavaScript string or template literal body holds once its escapes are read."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in _CONTINUATION:
            return ""
        if code.startswith("u{"):
            return chr(min(int(code[2:-1], 16), 0x10FFFF))
        if code[0] in "ux" and len(code) > 1:
            return chr(int(code[1:], 16))
        return _SIMPLE.get(code, code)

    return _ESCAPE.sub(one, body)


def recognize(script: str, grammar: Grammar, check_time: Callable[[], None]) -> list[str] | None:
    """The decoded string literals of ``script`` when all of it is in ``grammar``'s subset, else None."""
    try:
        reader = _Reader(_Tokens(script, check_time), grammar, check_time)
        reader.program()
    except (_Outside, RecursionError):
        return None
    return reader.strings
