"""HTML tokens as a browser's parser produces them (WHATWG HTML, "Tokenization"), in one linear pass.

Python's html.parser disagrees with browsers where attackers hide script: ``<!-->`` and ``--!>`` end
comments, the content of ``<noscript>``, ``<iframe>``, ``<style>``, ``<textarea>``, ``<title>``, ``<xmp>``
and friends is text (so a ``</noscript>`` inside an attribute ends it early), ``<style>`` inside ``<svg>``
holds markup, CDATA sections exist only in SVG and MathML, and ``</script>`` does not end a script whose
text opened ``<!-- <script>``. This tokenizer follows the standard's states for all of those, with the few
tree-construction facts that steer it: which elements switch it to raw text, and when foreign (SVG/MathML)
content starts and ends. Scripting is taken as enabled, as in every notebook front end.

Events: ``("start", name, attributes, self_closing)``, ``("end", name)``, ``("text", data)``,
``("comment", data)`` and ``("hidden", where, data)``: the content of a raw-text or RCDATA element, of
``<plaintext>`` or of a CDATA section. Text there is text only if the element is where this tokenizer thinks
it is: the tree builder's namespace games (``<form>``/``<mglyph>``, tables, integration points) can put a
``<style>`` in MathML, where its content is markup. Attribute values have their character references
decoded; text stays raw. A tag cut off by the end of the input is dropped, as browsers drop it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any

Event = tuple[Any, ...]

RCDATA = frozenset({"title", "textarea"})
CDATA = "a CDATA section"  # where a "hidden" event's text came from
RAWTEXT = frozenset({"style", "xmp", "iframe", "noembed", "noframes", "noscript"})
# Start tags that end foreign content (tree construction, "in foreign content"); font only with these.
BREAKOUT = frozenset(
    "b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 h6 head hr i img li listing "
    "menu meta nobr ol p pre ruby s small span strong strike sub sup table tt u ul var".split()
)
FONT_BREAKOUT_ATTRIBUTES = frozenset({"color", "face", "size"})
SVG_HTML_POINTS = frozenset({"foreignobject", "desc", "title"})
MATHML_TEXT_POINTS = frozenset({"mi", "mo", "mn", "ms", "mtext"})
CHECK_EVERY = 4096  # events between time checks

ASCII_WHITESPACE = "\t\n\f\r "  # what HTML strips and splits on (not Unicode spaces)
_TAG_NAME_END = re.compile(r"[\t\n\f\r />]")
_ATTRIBUTE_NAME_END = re.compile(r"[\t\n\f\r />=]")
_UNQUOTED_END = re.compile(r"[\t\n\f\r >]")
_COMMENT_END = re.compile(r"--!?>")
_ALPHA = re.compile(r"[A-Za-z]")


def tokens(text: str, check_time: Callable[[], None] = lambda: None) -> Iterator[Event]:
    """The events of one document; ``check_time`` is called every CHECK_EVERY events."""
    return _Tokenizer(text, check_time).run()


class _Tokenizer:
    def __init__(self, text: str, check_time: Callable[[], None]) -> None:
        self.text = text
        self.pos = 0
        self.check_time = check_time
        # Open SVG/MathML elements and the HTML elements inside their integration points: (name, namespace).
        self.foreign: list[tuple[str, str]] = []

    def run(self) -> Iterator[Event]:
        text, count = self.text, 0
        while self.pos < len(text):
            count += 1
            if not count % CHECK_EVERY:
                self.check_time()
            lt = text.find("<", self.pos)
            if lt < 0:
                yield ("text", text[self.pos :])
                return
            if lt > self.pos:
                yield ("text", text[self.pos : lt])
            self.pos = lt
            yield from self._markup()

    # ------------------------------------------------------------------ after "<" in the data state

    def _markup(self) -> Iterator[Event]:
        text, at = self.text, self.pos
        following = text[at + 1 : at + 2]
        if following == "!":
            yield from self._declaration()
        elif following == "/":
            yield from self._end_tag_open()
        elif following == "?":
            yield from self._bogus_comment(at + 1)
        elif following and _ALPHA.match(following):
            tag = self._tag(at + 1)
            if tag is None:
                self.pos = len(text)  # cut off by the end: dropped
                return
            name, attributes, self_closing, end = tag
            self.pos = end
            yield ("start", name, attributes, self_closing)
            yield from self._after_start_tag(name, attributes, self_closing)
        else:
            yield ("text", "<")
            self.pos = at + 1

    def _declaration(self) -> Iterator[Event]:
        text, at = self.text, self.pos
        if text.startswith("<!--", at):
            yield from self._comment(at + 4)
        elif text[at + 2 : at + 9].upper() == "DOCTYPE":
            end = text.find(">", at)
            self.pos = len(text) if end < 0 else end + 1
        elif text.startswith("[CDATA[", at + 2) and self._in_foreign():
            # At an integration point (SVG <title>, MathML <mtext>) Chrome makes a bogus comment of it, which
            # ends at the first ">" (browser oracle case 640798): only inside foreign content is it CDATA.
            end = text.find("]]>", at + 9)
            yield ("hidden", CDATA, text[at + 9 : end if end >= 0 else len(text)])
            self.pos = len(text) if end < 0 else end + 3
        else:
            yield from self._bogus_comment(at + 2)

    def _comment(self, start: int) -> Iterator[Event]:
        text = self.text
        if text.startswith(">", start) or text.startswith("->", start):  # <!--> and <!--->: abrupt, empty
            yield ("comment", "")
            self.pos = text.index(">", start) + 1
            return
        match = _COMMENT_END.search(text, start)
        yield ("comment", text[start : match.start() if match else len(text)])
        self.pos = match.end() if match else len(text)

    def _bogus_comment(self, start: int) -> Iterator[Event]:
        end = self.text.find(">", start)
        yield ("comment", self.text[start : end if end >= 0 else len(self.text)])
        self.pos = len(self.text) if end < 0 else end + 1

    def _end_tag_open(self) -> Iterator[Event]:
        text, at = self.text, self.pos
        following = text[at + 2 : at + 3]
        if not following:
            yield ("text", "</")
            self.pos = len(text)
        elif following == ">":
            self.pos = at + 3  # "</>" is dropped
        elif not _ALPHA.match(following):
            yield from self._bogus_comment(at + 2)
        else:
            tag = self._tag(at + 2)
            if tag is None:
                self.pos = len(text)
                return
            name, _, _, end = tag
            self.pos = end
            if name in ("p", "br") and self._in_foreign():
                self._leave_foreign()  # "in foreign content": </p> and </br> pop back to HTML (case 175183)
            else:
                self._close_foreign(name)
            yield ("end", name)

    # ------------------------------------------------------------------ tags

    def _tag(self, start: int) -> tuple[str, list[tuple[str, str]], bool, int] | None:
        """Name, attributes (first of each name wins), self-closing flag and end of the tag starting at
        ``start`` (its name's first character); None when the input ends inside it."""
        text, size = self.text, len(self.text)
        match = _TAG_NAME_END.search(text, start)
        if match is None:
            return None
        name = _lower(text[start : match.start()])
        attributes: list[tuple[str, str]] = []
        seen: set[str] = set()
        pos, self_closing = match.start(), False
        while True:
            while pos < size and text[pos] in ASCII_WHITESPACE:
                pos += 1
            if pos >= size:
                return None
            char = text[pos]
            if char == ">":
                return name, attributes, self_closing, pos + 1
            if char == "/":
                pos += 1
                self_closing = text.startswith(">", pos)
                continue
            self_closing = False
            end = _ATTRIBUTE_NAME_END.search(text, pos + 1)  # a leading "=" is part of the name
            if end is None:
                return None
            attribute = _lower(text[pos : end.start()])
            pos = end.start()
            while pos < size and text[pos] in ASCII_WHITESPACE:
                pos += 1
            value = ""
            if text.startswith("=", pos):
                pos += 1
                while pos < size and text[pos] in ASCII_WHITESPACE:
                    pos += 1
                if pos >= size:
                    return None
                quote = text[pos]
                if quote in "\"'":
                    close = text.find(quote, pos + 1)
                    if close < 0:
                        return None
                    value, pos = text[pos + 1 : close], close + 1
                elif quote != ">":
                    stop = _UNQUOTED_END.search(text, pos)
                    if stop is None:
                        return None
                    value, pos = text[pos : stop.start()], stop.start()
            if attribute not in seen:
                seen.add(attribute)
                attributes.append((attribute, unescape(value.replace("\0", "\ufffd"))))

    def _after_start_tag(self, name: str, attributes: list[tuple[str, str]], self_closing: bool) -> Iterator[Event]:
        """Tree-construction facts that steer the tokenizer: foreign content, raw text, script data."""
        if self._in_foreign():
            breakout = name in BREAKOUT or (name == "font" and FONT_BREAKOUT_ATTRIBUTES & {a for a, _ in attributes})
            if breakout:
                self.foreign.clear()  # back to HTML: the tag is an HTML element
            else:
                if not self_closing:
                    namespace = "svg" if name == "svg" else "math" if name == "math" else self.foreign[-1][1]
                    self.foreign.append((name, namespace))
                return
        if name in ("svg", "math"):
            if not self_closing:
                self.foreign.append((name, name))
            return
        if self.foreign and not self_closing and name != "script" and name not in RCDATA | RAWTEXT:
            self.foreign.append((name, "html"))  # an HTML element inside an integration point
        if name == "script":
            yield from self._script_data()
        elif name in RCDATA or name in RAWTEXT:
            yield from self._raw_text(name)
        elif name == "plaintext":
            yield ("hidden", "<plaintext>", self.text[self.pos :])
            self.pos = len(self.text)

    def _in_foreign(self) -> bool:
        """Whether the next token is read in foreign content (outside HTML integration points)."""
        if not self.foreign:
            return False
        name, namespace = self.foreign[-1]
        if namespace == "html":
            return False
        if namespace == "svg" and name in SVG_HTML_POINTS:
            return False
        return not (namespace == "math" and name in MATHML_TEXT_POINTS | {"annotation-xml"})

    def _leave_foreign(self) -> None:
        """Pop foreign elements until an HTML element or an integration point is current."""
        while self._in_foreign():
            self.foreign.pop()

    def _close_foreign(self, name: str) -> None:
        for index in range(len(self.foreign) - 1, -1, -1):
            if self.foreign[index][0] == name:
                del self.foreign[index:]
                return

    # ------------------------------------------------------------------ raw text, RCDATA, script data

    def _end_tag_at(self, name: str, start: int) -> re.Match[str] | None:
        return re.compile(r"</" + re.escape(name) + r"[\t\n\f\r />]", re.IGNORECASE).search(self.text, start)

    def _raw_text(self, name: str) -> Iterator[Event]:
        match = self._end_tag_at(name, self.pos)
        end = match.start() if match else len(self.text)
        if end > self.pos:
            yield ("hidden", f"<{name}>", self.text[self.pos : end])
        self.pos = end  # the end tag is read as markup next

    def _script_data(self) -> Iterator[Event]:
        """Script text up to the ``</script>`` that ends it, through the escaped states (``<!--`` ...
        ``<script>`` ... ``-->``), where a ``</script>`` may only end a double escape."""
        text, start, pos, state = self.text, self.pos, self.pos, "data"
        end_tag = re.compile(r"</script[\t\n\f\r />]", re.IGNORECASE)
        marks = {
            "data": re.compile(r"</script[\t\n\f\r />]|<!--", re.IGNORECASE),
            "escaped": re.compile(r"</script[\t\n\f\r />]|-->|<script[\t\n\f\r />]", re.IGNORECASE),
            "double": re.compile(r"</script[\t\n\f\r />]|-->", re.IGNORECASE),
        }
        while True:
            match = marks[state].search(text, pos)
            if match is None:
                pos = len(text)
                break
            found = match.group(0)
            if end_tag.fullmatch(found):
                if state != "double":
                    pos = match.start()
                    break
                state, pos = "escaped", match.end() - 1  # "</script>" ends the double escape only
            elif found == "<!--":
                state, pos = "escaped", match.start() + 2  # its dashes may close it at once: "<!-->"
            elif found == "-->":
                state, pos = "data", match.end()
            else:
                state, pos = "double", match.end() - 1
        if pos > start:
            yield ("text", text[start:pos])
        self.pos = pos


def _lower(name: str) -> str:
    return name.translate(_ASCII_LOWER).replace("\0", "\ufffd")


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
