"""The scalar values of chosen mapping keys in YAML text, found without a YAML library.

Enough of YAML to see what a loader reads under a key: plain, single- and double-quoted
scalars (escapes decoded, line breaks folded), flow collections, values on the following
more-indented lines, block scalars, tags, anchors and aliases. A value that cannot be known
statically is reported as unknown with the reason, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from ..core import ParseError

_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r",
    "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85", "_": "\xa0", "L": "\u2028",
    "P": "\u2029",
}  # fmt: skip
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_FLOW_STOP = set(",[]{}")
_NAME = re.compile(r"[^\s,\[\]{}]+")
_BLOCK_HEADER = re.compile(r"[|>][-+0-9]*(?=\s|$)")


class Token(NamedTuple):
    kind: str  # scalar, colon, comma, open, close, dash, question, anchor, alias, tag, block, newline
    text: str  # the decoded scalar, or the anchor/alias/tag name
    line: int
    indent: int  # of the line the token starts on (for a newline token: of the line it starts)


class KeyValue(NamedTuple):
    key: str
    value: str | None  # the decoded scalar; None when it cannot be known statically
    line: int
    problem: str | None = None  # why the value is unknown, or what else was odd


class YamlError(ParseError, ValueError):
    """Text no YAML loader accepts (an unterminated quoted scalar)."""


def find_keys(text: str, keys: frozenset[str]) -> Iterator[KeyValue]:
    """Every mapping entry whose key is one of ``keys``, in document order, and every other
    scalar spelled like one of them (a key in a form this reader does not follow)."""
    tokens = list(tokenize(text))
    anchors: dict[str, str | None] = {}
    for index, token in enumerate(tokens):
        if token.kind == "anchor":
            anchors[token.text] = _anchored_scalar(tokens, index + 1)
        if token.kind != "scalar" or token.text not in keys:
            continue
        if index + 1 < len(tokens) and tokens[index + 1].kind == "colon":
            yield _value(tokens, index, anchors)
        else:
            yield KeyValue(token.text, None, token.line, "written where no mapping key is recognised")


def _anchored_scalar(tokens: list[Token], index: int) -> str | None:
    while index < len(tokens) and tokens[index].kind == "tag":
        index += 1
    if index < len(tokens) and tokens[index].kind in ("scalar", "block"):
        if index + 1 >= len(tokens) or tokens[index + 1].kind != "colon":
            return tokens[index].text
    return None  # an anchored collection, or an anchored key


def _value(tokens: list[Token], key_index: int, anchors: dict[str, str | None]) -> KeyValue:
    key = tokens[key_index]
    indent = key.indent
    index = _skip_properties(tokens, key_index + 2)
    if index >= len(tokens):
        return KeyValue(key.text, "", key.line)
    if tokens[index].kind == "newline":  # the value, if any, is on the next, more indented line
        deeper = tokens[index].indent > indent
        index = _skip_properties(tokens, index + 1)
        if index >= len(tokens) or tokens[index].kind == "newline":
            return KeyValue(key.text, "", key.line)
        if not deeper and tokens[index].kind != "dash":
            return KeyValue(key.text, "", key.line)  # the next line is a sibling: the value is empty
    token = tokens[index]
    if token.kind in ("scalar", "block") and (index + 1 >= len(tokens) or tokens[index + 1].kind != "colon"):
        return KeyValue(key.text, _continued(tokens, index, indent), key.line)
    if token.kind == "alias":
        value = anchors.get(token.text)
        if value is None:
            return KeyValue(key.text, None, key.line, f"alias *{token.text} names no scalar anchored before it")
        return KeyValue(key.text, value, key.line, f"given through alias *{token.text}")
    if token.kind in ("comma", "close"):
        return KeyValue(key.text, "", key.line)
    return KeyValue(key.text, None, key.line, "its value is a mapping or a list")


def _skip_properties(tokens: list[Token], index: int) -> int:
    """Past the tags and anchors written before a value."""
    while index < len(tokens) and tokens[index].kind in ("tag", "anchor"):
        index += 1
    return index


def _continued(tokens: list[Token], index: int, indent: int) -> str:
    """A plain scalar folded over following lines that are indented deeper than its key."""
    parts = [tokens[index].text]
    while (
        index + 2 < len(tokens)
        and tokens[index + 1].kind == "newline"
        and tokens[index + 1].indent > indent
        and tokens[index + 2].kind == "scalar"
        and (index + 3 >= len(tokens) or tokens[index + 3].kind != "colon")
    ):
        parts.append(tokens[index + 2].text)
        index += 2
    return " ".join(parts)


def tokenize(text: str) -> Iterator[Token]:
    pos, line, depth, length = 0, 1, 0, len(text)
    line_start, after_quoted, indent = True, False, _indent_at(text, 0)
    while pos < length:
        char = text[pos]
        if char == "\n":
            pos += 1
            line += 1
            indent = _indent_at(text, pos)
            if depth == 0:
                yield Token("newline", "", line, indent)
            line_start = True
            continue
        if char in " \t\r\ufeff":
            pos += 1
            continue
        if char == "#" and (line_start or text[pos - 1] in " \t"):
            end = text.find("\n", pos)
            pos = length if end < 0 else end
            continue
        at_line_start, line_start = line_start, False
        quoted, after_quoted = after_quoted, False
        nxt = text[pos + 1] if pos + 1 < length else "\n"
        if char in "\"'":
            value, end = _quoted(text, pos)
            yield Token("scalar", value, line, indent)
            line += text.count("\n", pos, end)
            pos, after_quoted = end, True
        elif char in "{[":
            depth += 1
            yield Token("open", char, line, indent)
            pos += 1
        elif char in "}]":
            depth = max(0, depth - 1)
            yield Token("close", char, line, indent)
            pos += 1
        elif char == "," and depth:
            yield Token("comma", char, line, indent)
            pos += 1
        elif char == ":" and (quoted or nxt in " \t\r\n" or (depth and nxt in _FLOW_STOP)):
            yield Token("colon", char, line, indent)  # after a quoted key the colon needs no space (JSON style)
            pos += 1
        elif char in "-?" and nxt in " \t\r\n" and not (at_line_start and text.startswith("---", pos)):
            yield Token("dash" if char == "-" else "question", char, line, indent)
            pos += 1
        elif char in "&*!":
            match = _NAME.match(text, pos + 1)
            name = match.group() if match else ""
            yield Token({"&": "anchor", "*": "alias", "!": "tag"}[char], name, line, indent)
            pos += 1 + len(name)
        elif char in "|>" and depth == 0 and _BLOCK_HEADER.match(text, pos):
            value, end = _block(text, pos)
            yield Token("block", value, line, indent)
            line += text.count("\n", pos, end)
            pos = end
        else:
            value, pos = _plain(text, pos, depth)
            yield Token("scalar", value, line, indent)


def _plain(text: str, pos: int, depth: int) -> tuple[str, int]:
    """A plain scalar up to the end of its line, a ': ' or ' #', and in flow context ',[]{}'."""
    start = pos
    while pos < len(text):
        char = text[pos]
        nxt = text[pos + 1] if pos + 1 < len(text) else "\n"
        if char == "\n" or (char == "#" and text[pos - 1] in " \t"):
            break
        if char == ":" and (nxt in " \t\r\n" or (depth and nxt in _FLOW_STOP)):
            break
        if depth and char in _FLOW_STOP:
            break
        pos += 1
    return text[start:pos].strip(), pos


def _quoted(text: str, pos: int) -> tuple[str, int]:
    quote = text[pos]
    out: list[str] = []
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == quote:
            if quote == "'" and text.startswith("''", pos):
                out.append("'")
                pos += 2
                continue
            return "".join(out), pos + 1
        if char == "\\" and quote == '"':
            pos = _escape(text, pos + 1, out)
        elif char == "\n":
            pos = _fold(text, pos, out)
        else:
            out.append(char)
            pos += 1
    raise YamlError(f"quoted scalar opened with {quote} is never closed")


def _escape(text: str, pos: int, out: list[str]) -> int:
    code = text[pos] if pos < len(text) else ""
    if code in _HEX_ESCAPES:
        digits = text[pos + 1 : pos + 1 + _HEX_ESCAPES[code]]
        try:
            out.append(chr(int(digits, 16)))
        except (ValueError, OverflowError):
            raise YamlError(f"bad escape \\{code}{digits}") from None
        return pos + 1 + len(digits)
    if code == "\n":  # an escaped line break joins the lines without a space
        pos += 1
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        return pos
    if code not in _ESCAPES:
        raise YamlError(f"unknown escape \\{code}")
    out.append(_ESCAPES[code])
    return pos + 1


def _fold(text: str, pos: int, out: list[str]) -> int:
    """A line break inside a quoted scalar: one space, or one newline per empty line."""
    while out and out[-1] in " \t":
        out.pop()
    breaks = 0
    while pos < len(text) and text[pos] in " \t\r\n":
        breaks += text[pos] == "\n"
        pos += 1
    out.append("\n" * (breaks - 1) if breaks > 1 else " ")
    return pos


def _block(text: str, pos: int) -> tuple[str, int]:
    """A literal or folded block scalar: the following lines indented deeper than the key's line.
    Returns the text and the position of the line break that ends it."""
    line_start = text.rfind("\n", 0, pos) + 1
    parent = _indent_at(text, line_start)
    end = text.find("\n", pos)
    if end < 0:
        return "", len(text)
    lines: list[str] = []
    while end < len(text):
        start = end + 1
        stop = text.find("\n", start)
        stop = len(text) if stop < 0 else stop
        row = text[start:stop]
        if row.strip() and _indent_at(row, 0) <= parent:
            break
        lines.append(row.strip())
        end = stop
    return "\n".join(lines).strip(), end


def _indent_at(text: str, pos: int) -> int:
    end = pos
    while end < len(text) and text[end] == " ":
        end += 1
    return end - pos
