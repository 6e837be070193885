"""PMML (Predictive Model Markup Language): an XML document whose root element is ``PMML``.

PMML describes models declaratively and has no scripting. The danger is the XML around it: a
DOCTYPE can declare external entities that make a resolving parser read local files or fetch URLs
(XXE), or nested entities that expand until memory runs out (billion laughs). Model tools never
write a DOCTYPE, so any is reported. The prolog is scanned here as text; no XML parser sees the file.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .. import rules
from ..context import Item, ScanContext
from ..core import AttackClass, Capability, Rule, Severity
from ..limits import LimitExceeded
from ..registry import Format

XML_EXTERNAL_ENTITY = Rule(
    id="MLO190",
    name="xml-external-entity",
    title="XML model declares a DOCTYPE or external entity",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.FILE_ACCESS,
    description=(
        "A DOCTYPE with entities lets the file make the parser read local files or fetch URLs (XXE), or "
        "expand entities until memory runs out. PMML written by model tools never needs one."
    ),
    remediation="Do not load the file with a parser that resolves entities; regenerate it from the training tool.",
    summary="A PMML/XML model declares a DOCTYPE or entities (XXE, entity expansion).",
)


MAX_PROLOG = 1 << 20  # everything before the root element; real PMML prologs are one line
TAIL = 4096
PROBE = 256  # characters in which a document must reach its first "<"
SHOWN = 10  # names listed in evidence

# Byte-order marks and BOM-less starts of "<" in the encodings XML parsers detect on their own.
_ENCODINGS = (
    (b"\x00\x00\xfe\xff", "utf-32-be", 4),
    (b"\xff\xfe\x00\x00", "utf-32-le", 4),
    (b"\xef\xbb\xbf", "utf-8", 3),
    (b"\xfe\xff", "utf-16-be", 2),
    (b"\xff\xfe", "utf-16-le", 2),
    (b"\x00\x00\x00<", "utf-32-be", 0),
    (b"<\x00\x00\x00", "utf-32-le", 0),
    (b"\x00<", "utf-16-be", 0),
    (b"<\x00", "utf-16-le", 0),
)
_UNIT = {"utf-8": 1, "utf-16-be": 2, "utf-16-le": 2, "utf-32-be": 4, "utf-32-le": 4}

_QUOTED = r"(?:\"[^\"]*\"|'[^']*')"
_DOCTYPE = re.compile(
    r"<!DOCTYPE\s+(?P<name>[^\s\[>]+)(?:\s+(?P<kind>SYSTEM|PUBLIC)(?P<ids>(?:\s*" + _QUOTED + r"){1,2}))?\s*"
)
_ENTITY = re.compile(
    r"<!ENTITY\s+(?P<pe>%\s+)?(?P<name>[^\s>]+)\s+"
    r"(?:(?P<value>" + _QUOTED + r")|(?:SYSTEM|PUBLIC)(?P<ids>(?:\s*" + _QUOTED + r"){1,2})(?:\s+NDATA\s+[^\s>]+)?)"
    r"\s*>"
)
_DECLARATION = re.compile(r"<!(?:ELEMENT|ATTLIST|NOTATION)(?:[^>\"']|" + _QUOTED + r")*>")
_REFERENCE = re.compile(r"[&%]([^\s;&%]+);")
_PREDEFINED = {"lt", "gt", "amp", "apos", "quot"}
_ROOT = re.compile(r"<([^\s/>!?]+)")
_END = re.compile(r"</(?:[^\s>]+:)?PMML\s*>(?:\s|<!--.*?-->|<\?.*?\?>)*\Z", re.DOTALL)


class Doctype(NamedTuple):
    at: int  # character offset in the decoded prolog
    name: str
    external_dtd: str | None
    external: list[tuple[str, str]]  # (entity, URI or public id)
    parameter: list[str]
    nested: list[str]  # entities whose value refers to other entities
    declared: int
    subset_complete: bool


class Prolog(NamedTuple):
    root: str | None
    doctype: Doctype | None
    problem: str | None  # the prolog breaks XML's rules (or the sample ended inside it)
    problem_at: int  # where the problem is, or where the root element starts


def detect(head: bytes, name: str) -> bool:
    decoded = _decode(head)
    if decoded is None or "PMML" not in decoded[0]:
        return False
    prolog = _scan_prolog(decoded[0])
    named = [prolog.root, prolog.doctype.name if prolog.doctype else None]
    return any(local is not None and local.rpartition(":")[2] == "PMML" for local in named)


def analyze(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "pmml")
    item.stream.seek(0)
    head = item.stream.read(MAX_PROLOG)
    complete = len(head) < MAX_PROLOG
    text, codec, bom = _decode(head) or (head.decode("utf-8", "replace"), "utf-8", 0)
    prolog = _scan_prolog(text)
    if prolog.doctype is not None:
        _report_doctype(ctx, item, prolog.doctype, _byte_offset(text, prolog.doctype.at, codec, bom))
    where = item.location.at(_byte_offset(text, prolog.problem_at, codec, bom))
    if prolog.root is None:
        if not complete:
            raise LimitExceeded(f"PMML prolog longer than {MAX_PROLOG} bytes")
        ctx.report(rules.MALFORMED.finding(where, f"PMML document has no root element: {prolog.problem}"))
        return
    if prolog.root.rpartition(":")[2] != "PMML":
        ctx.report(rules.MALFORMED.finding(where, f"XML root element is {prolog.root[:100]!r}, not PMML"))
        return
    size = item.size if item.size is not None else item.stream.seek(0, 2)
    if not _ends_with_root(item, size, codec, bom):
        message = "PMML document does not end with </PMML>: truncated"
        ctx.report(rules.MALFORMED.finding(item.location.at(size), message))


def _decode(head: bytes) -> tuple[str, str, int] | None:
    """The sample as text, its encoding and BOM length; None unless it starts with markup."""
    codec, bom = "utf-8", 0
    for mark, name, length in _ENCODINGS:
        if head.startswith(mark):
            codec, bom = name, length
            break
    unit = _UNIT[codec]
    errors = "surrogateescape" if codec == "utf-8" else "replace"
    if not head[bom : bom + PROBE * unit].decode(codec, errors).lstrip().startswith("<"):
        return None  # settled on a few bytes, so binary files cost nothing
    return head[bom : bom + (len(head) - bom) // unit * unit].decode(codec, errors), codec, bom


def _byte_offset(text: str, index: int, codec: str, bom: int) -> int:
    errors = "surrogateescape" if codec == "utf-8" else "replace"
    return bom + len(text[:index].encode(codec, errors))


def _scan_prolog(text: str) -> Prolog:
    """Walk declarations, comments and processing instructions up to the root element."""
    doctype = None
    i = 0
    while True:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        if i >= len(text):
            return Prolog(None, doctype, "the document ends before its root element", i)
        if text.startswith("<?", i) or text.startswith("<!--", i):
            close = "?>" if text[i + 1] == "?" else "-->"
            end = text.find(close, i + 2)
            if end < 0:
                return Prolog(None, doctype, "a comment or processing instruction does not end", i)
            i = end + len(close)
        elif text.startswith("<!DOCTYPE", i) and doctype is None:
            doctype, i = _scan_doctype(text, i)
            if i < 0:
                return Prolog(None, doctype, "the DOCTYPE does not end", doctype.at)
        elif (root := _ROOT.match(text, i)) is not None:
            return Prolog(root.group(1), doctype, None, i)
        else:
            return Prolog(None, doctype, "text or markup that cannot precede the root element", i)


def _scan_doctype(text: str, start: int) -> tuple[Doctype, int]:
    """Read a DOCTYPE and its internal subset; the index after it, or -1 when it does not end."""
    head = _DOCTYPE.match(text, start)
    if head is None:
        return Doctype(start, "", None, [], [], [], 0, False), -1
    external_dtd = _last_literal(head.group("ids")) if head.group("kind") else None
    external: list[tuple[str, str]] = []
    parameter: list[str] = []
    nested: list[str] = []
    declared = 0
    i = head.end()
    complete = True
    if i < len(text) and text[i] == "[":
        i, complete = i + 1, False
        while i < len(text):
            if text[i] in " \t\r\n":
                i += 1
            elif text[i] == "]":
                i, complete = i + 1, True
                break
            elif (entity := _ENTITY.match(text, i)) is not None:
                declared += 1
                name = entity.group("name")
                if entity.group("pe"):
                    parameter.append(name)
                if entity.group("ids") is not None:
                    external.append((name, _last_literal(entity.group("ids"))))
                elif _refers_to_entities(entity.group("value")):
                    nested.append(name)
                i = entity.end()
            elif (other := _DECLARATION.match(text, i)) is not None:
                i = other.end()
            elif text.startswith("<!--", i) or text.startswith("<?", i):
                close = "-->" if text[i + 1] == "!" else "?>"
                end = text.find(close, i)
                i = len(text) if end < 0 else end + len(close)
            elif (reference := _REFERENCE.match(text, i)) is not None and text[i] == "%":
                parameter.append(f"%{reference.group(1)}; (reference)")
                i = reference.end()
            else:
                break  # something no DTD holds: report what was read so far
    doctype = Doctype(start, head.group("name"), external_dtd, external, parameter, nested, declared, complete)
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    if not complete or i >= len(text) or text[i] != ">":
        return doctype, -1
    return doctype, i + 1


def _refers_to_entities(value: str) -> bool:
    """Whether an entity's value expands other declared entities (not &lt; or &#60;)."""
    return any(ref not in _PREDEFINED and not ref.startswith("#") for ref in _REFERENCE.findall(value))


def _last_literal(ids: str) -> str:
    literals = re.findall(_QUOTED, ids)
    return literals[-1][1:-1] if literals else ""


def _report_doctype(ctx: ScanContext, item: Item, doctype: Doctype, offset: int) -> None:
    evidence = {"doctype": doctype.name[:100], "entities_declared": str(doctype.declared)}
    what = []
    if doctype.external_dtd is not None:
        evidence["external_dtd"] = doctype.external_dtd[:200]
        what.append(f"loads an external DTD from {doctype.external_dtd[:100]!r}")
    if doctype.external:
        evidence["external_entities"] = ", ".join(f"{name}={uri[:100]}" for name, uri in doctype.external[:SHOWN])
        name, uri = doctype.external[0]
        what.append(f"declares external entities ({name} -> {uri[:100]!r})")
    if doctype.parameter:
        evidence["parameter_entities"] = ", ".join(doctype.parameter[:SHOWN])
        what.append("uses parameter entities")
    if doctype.nested:
        evidence["nested_entities"] = ", ".join(doctype.nested[:SHOWN])
        what.append(f"nests entities inside entities ({len(doctype.nested)}): an entity-expansion bomb")
    if not doctype.subset_complete:
        evidence["internal_subset"] = f"not fully read (first {MAX_PROLOG} bytes)"
    summary = "; ".join(what) if what else f"with {doctype.declared} entity declaration(s)"
    message = f"PMML file has a DOCTYPE that {summary}" if what else f"PMML file has a DOCTYPE {summary}"
    ctx.report(XML_EXTERNAL_ENTITY.finding(item.location.at(offset), message, evidence))


def _ends_with_root(item: Item, size: int, codec: str, bom: int) -> bool:
    unit = _UNIT[codec]
    start = max(bom, size - TAIL)
    start -= (start - bom) % unit
    item.stream.seek(start)
    tail = item.stream.read(size - start)
    tail = tail[: len(tail) // unit * unit]
    return _END.search(tail.decode(codec, "replace")) is not None


FORMATS = (Format("pmml", "safe", "PMML", handler=analyze, detect=detect, order=60),)
