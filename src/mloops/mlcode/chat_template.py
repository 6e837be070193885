"""Jinja2 chat templates (GGUF metadata, tokenizer_config.json): a program run on every request.

Rendered with a plain ``jinja2.Environment`` instead of the sandbox, a template walks dunder attributes
(``cycler.__init__.__globals__.os``) into the interpreter and runs commands on the inference server
(CVE-2024-34359 in llama-cpp-python, later vLLM and SGLang). The template is parsed, never rendered;
its syntax tree is searched for attribute names that lead to internals, including names built from
string constants, and for statements that load other templates.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import product
from typing import NamedTuple

from jinja2 import TemplateError, nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .. import rules
from ..context import ScanContext
from ..core import Capability, Location, Severity
from ..data import load_toml
from . import template_files

MAX_SOURCE_CHARS = 256 * 1024  # real chat templates stay under 64 KiB; Jinja2 lexes about 150 KiB/s
MAX_NODES = 100_000  # the longest real templates have a few thousand
_MAX_CANDIDATES = 32  # values one expression may take once names and branches are followed
_MAX_FOLD_DEPTH = 40
_MAX_FOLDED_CHARS = 4096
_MAX_FOLDED_ITEMS = 256
_MAX_FORMAT_WIDTH = 64

_DUNDER = re.compile(r"__[A-Za-z]\w*__")
_MANGLED = re.compile(r"_[A-Za-z][A-Za-z0-9]*__\w+")  # self._TemplateReference__context
_FORMAT_FIELD = re.compile(r"\{([^{}!:]*)")
_FIELD_ATTRIBUTE = re.compile(r"\.\s*([A-Za-z_]\w*)")
_PERCENT_SPEC = re.compile(r"%[^a-zA-Z%]*[a-zA-Z%]")
_NUMBER = re.compile(r"\d+")

Value = str | int | float | bool | tuple | None


class Issue(NamedTuple):
    """One problem in a template, independent of where the template came from."""

    kind: str  # "escape" (reaches internals), "load" (loads templates), "unparsable", "limit"
    severity: Severity
    message: str
    line: int | None
    evidence: dict[str, str]


class _Policy(NamedTuple):
    internal: frozenset[str]
    escape_dunders: tuple[str, ...]
    gadgets: frozenset[str]
    format_methods: frozenset[str]
    attribute_functions: frozenset[str]
    attribute_filters: Mapping[str, tuple[tuple[int, ...], tuple[str, ...]]]


@functools.cache
def _policy() -> _Policy:
    table = load_toml("chat_template.toml")
    filters = {
        name: (tuple(spec["positions"]), tuple(spec["keywords"])) for name, spec in table["attribute_filters"].items()
    }
    return _Policy(
        frozenset(table["internal_attributes"]),
        tuple(table["escape_dunders"]),
        frozenset(table["gadget_globals"]),
        frozenset(table["format_methods"]),
        frozenset(table["attribute_functions"]),
        filters,
    )


class GenerationTag(Extension):
    """``{% generation %}…{% endgeneration %}``: transformers' marker around assistant turns."""

    tags = {"generation"}  # noqa: RUF012 - Jinja2's Extension declares tags as a plain set

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


@functools.cache
def _environment() -> ImmutableSandboxedEnvironment:
    # The extensions chat-template runtimes enable (transformers: loopcontrols, generation), so that
    # legitimate templates parse; ``do`` as well, since accepting more syntax only means seeing more code.
    return ImmutableSandboxedEnvironment(extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", GenerationTag])


def template_findings(source: str, chat: bool = True) -> list[Issue]:
    """Everything wrong with one template's source, found by parsing it (never rendering).

    ``chat=False`` is for other Jinja2 templates (web pages, code generation): they load their siblings
    and may hold dunder-like strings (``'__NOT_A_NUMBER__'``) by design, so only escapes reached by
    attribute or item access, filters and format strings are reported."""
    if len(source) > MAX_SOURCE_CHARS:
        message = f"template of {len(source)} characters is longer than {MAX_SOURCE_CHARS}; not analysed"
        return [Issue("limit", Severity.HIGH, message, None, {"length": str(len(source))})]
    try:
        tree = _environment().parse(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        return [_unparsable(str(getattr(exc, "message", None) or exc), line)]
    except RecursionError:
        return [_unparsable("nested too deeply to parse", None)]
    except (ValueError, OverflowError) as exc:  # e.g. an integer literal beyond Python's digit limit
        return [_unparsable(str(exc), None)]
    return _Analysis(tree, chat).run()


def names_internal(text: str) -> bool:
    """The string is itself the name of an interpreter internal: ``__globals__``, ``_Context__x``, ``gi_frame``."""
    return bool(_DUNDER.fullmatch(text) or _MANGLED.fullmatch(text)) or ("_" in text and text in _policy().internal)


def report(
    ctx: ScanContext,
    location: Location,
    source: str,
    where: Mapping[str, str],
    start: int | None,
    unparsable: Severity = Severity.MEDIUM,
    chat: bool = True,
) -> None:
    """Turn a template's issues into findings.

    ``where`` goes into every finding's evidence (``key``: the metadata key or JSON field holding the
    template); ``start`` is the template's byte offset in the file, when known; ``unparsable`` is the
    severity of a template Jinja2 cannot parse (lower where the text may be meant for another engine);
    ``chat`` as for template_findings.
    """
    for issue in template_findings(source, chat):
        at = location.at(None if start is None else start + _line_offset(source, issue.line))
        evidence = {**where, **issue.evidence, **({"line": str(issue.line)} if issue.line else {})}
        label = f"chat template {where['key']!r}" if "key" in where else "chat template"
        message = label + (f", line {issue.line}" if issue.line else "") + f": {issue.message}"
        if issue.kind == "unparsable":
            finding = rules.MALFORMED.finding(at, message, evidence, severity=unparsable)
        elif issue.kind == "limit":
            finding = rules.SCAN_LIMIT.finding(at, message, evidence)
        else:
            capability = Capability.FILE_ACCESS if issue.kind == "load" else None
            finding = template_files.TEMPLATE_INJECTION.finding(
                at, message, evidence, severity=issue.severity, capability=capability
            )
        ctx.report(finding)


def _unparsable(reason: str, line: int | None) -> Issue:
    # MEDIUM, not HIGH: Jinja2 refuses to compile the template, so no Jinja2 runtime can render it and
    # the code-execution path this analysis guards is closed. It stays a finding because the template
    # went unanalysed and other engines (minja, minijinja) accept slightly different syntax.
    message = f"Jinja2 cannot parse the template ({reason}); runtimes using Jinja2 reject it, other engines may not"
    return Issue("unparsable", Severity.MEDIUM, message, line, {"parse_error": reason[:200]})


def _line_offset(source: str, line: int | None) -> int:
    if not line or line <= 1:
        return 0
    lines = source.split("\n", line - 1)
    return len("\n".join(lines[: line - 1]).encode("utf-8", "replace")) + 1


def _nodes(tree: nodes.Node) -> tuple[list[nodes.Node], bool]:
    """All nodes in source order, iteratively (templates can nest deeper than Python recursion)."""
    found: list[nodes.Node] = []
    stack = [tree]
    while stack:
        if len(found) >= MAX_NODES:
            return found, True
        node = stack.pop()
        found.append(node)
        stack.extend(reversed(list(node.iter_child_nodes())))
    return found, False


_LOADS = {nodes.Include: "include", nodes.Import: "import", nodes.FromImport: "from-import", nodes.Extends: "extends"}
_CONSTANT = "a string constant"
_COMPUTED = "a computed name"


class _Hit(NamedTuple):
    kind: str
    severity: Severity
    what: str  # the name or statement reported
    via: str
    expression: str


class _Analysis:
    def __init__(self, tree: nodes.Template, chat: bool) -> None:
        self.chat = chat
        self.policy = _policy()
        self.nodes, self.truncated = _nodes(tree)
        self.folder = _Folder(_bindings(self.nodes))
        self.hits: dict[int, list[_Hit]] = {}
        self.calls_format = False  # format walks matter only where .format()/.format_map() is called
        self.format_walks: list[tuple[int, str]] = []

    def run(self) -> list[Issue]:
        for node in self.nodes:
            self._check(node)
        if self.calls_format:
            for line, name in self.format_walks:
                self._hit(line, "escape", Severity.CRITICAL, name, "a format string", f"{{….{name}}}")
        issues = [self._issue(line, hits) for line, hits in sorted(self.hits.items())]
        if self.truncated:
            message = f"template has more than {MAX_NODES} syntax nodes; the rest was not analysed"
            issues.append(Issue("limit", Severity.HIGH, message, None, {}))
        return issues

    def _issue(self, line: int, hits: list[_Hit]) -> Issue:
        """One issue per line: a payload chain names several attributes on the same line."""
        worst = max(hits, key=lambda hit: hit.severity)
        # Where a line names the attribute in place, built constants on it only repeat that name.
        placed = [hit for hit in hits if hit.via != _CONSTANT] or hits
        parts = []
        loads = [hit for hit in placed if hit.kind == "load"]
        if loads:
            parts.append(f"loads another template ({', '.join(dict.fromkeys(hit.what for hit in loads))})")
        computed = [hit for hit in placed if hit.via == _COMPUTED]
        if computed:
            parts.append(f"looks up an attribute whose name is only known at render time ({computed[0].expression})")
        reached = [hit for hit in placed if hit.kind == "escape" and hit.via != _COMPUTED]
        if reached:
            names = ", ".join(dict.fromkeys(hit.what for hit in reached))
            expression = max((hit.expression for hit in reached), key=len)
            parts.append(f"reaches {names} through {reached[0].via} ({expression})")
        evidence = {
            "names": ", ".join(dict.fromkeys(hit.what for hit in placed)),
            "via": ", ".join(dict.fromkeys(hit.via for hit in placed)),
            "expression": max((hit.expression for hit in placed), key=len),
        }
        return Issue(worst.kind, worst.severity, "; ".join(parts), line, evidence)

    def _hit(self, line: int, kind: str, severity: Severity, what: str, via: str, expression: str) -> None:
        if not self.chat and (kind == "load" or via == _CONSTANT):
            return
        self.hits.setdefault(line, []).append(_Hit(kind, severity, what, via, expression[:200]))

    # ------------------------------------------------------------------ per node

    def _check(self, node: nodes.Node) -> None:
        # Jinja2's node classes are leaves (no subclasses): isinstance is exact
        line = node.lineno
        if isinstance(node, nodes.Getattr):
            self._attribute(node.attr, node, "attribute access", item=False)
            return  # its value is looked up, not built: nothing to fold
        if isinstance(node, nodes.Name):
            return
        if isinstance(node, nodes.NSRef):
            self._attribute(node.attr, node, "a namespace assignment", item=False)
        elif isinstance(node, nodes.Getitem):
            keys = self.folder.fold(node.arg)
            if keys is None:
                self._computed_item(node)
            for key in keys or ():
                if isinstance(key, str):
                    self._attribute(key, node, "item access", item=True)
        elif isinstance(node, nodes.Filter) and node.name in self.policy.attribute_filters:
            self._filter(node, node.name, node.args)
        elif isinstance(node, nodes.Call):
            self._call(node)
        elif isinstance(node, nodes.Include | nodes.Import | nodes.FromImport | nodes.Extends):
            statement = _LOADS[type(node)]
            targets = ", ".join(repr(value) for value in self._strings(node.template)) or "a computed name"
            self._hit(line, "load", Severity.HIGH, f"{statement} {targets}", "a template statement", statement)
        elif isinstance(node, nodes.Const | nodes.TemplateData):
            text = node.value if isinstance(node, nodes.Const) else node.data
            if isinstance(text, str):
                self._format_walks(text, line)
        if isinstance(node, nodes.AssignBlock | nodes.Expr):
            for text in self._strings(node):
                self._constant(text, node)

    def _attribute(self, name: str, node: nodes.Node, via: str, item: bool) -> None:
        severity = self._severity(name, item, node)
        if severity is not None:
            self._hit(node.lineno, "escape", severity, name, via, _describe(node))

    def _severity(self, name: str, item: bool, node: nodes.Node | None) -> Severity | None:
        if name.startswith("__") or _MANGLED.fullmatch(name) or name in self.policy.internal:
            return Severity.CRITICAL
        if name.startswith("_") and not item:
            # Private attributes are refused by Jinja2's sandbox and never needed by a chat template.
            return Severity.CRITICAL if node is not None and _root(node) in self.policy.gadgets else Severity.HIGH
        return None

    def _filter(self, node: nodes.Node, name: str, args: list[nodes.Expr]) -> None:
        positions, keywords = self.policy.attribute_filters[name]
        named = [args[index] for index in positions if index < len(args)]
        named += [kw.value for kw in getattr(node, "kwargs", ()) if kw.key in keywords]
        for expression in named:
            self._attribute_names(expression, node, f"the {name} filter")
        if name == "map" and args:  # map("attr", "__class__") applies the named filter to each item
            for inner in self._strings(args[0]):
                if inner in self.policy.attribute_filters:
                    self._filter(node, inner, args[1:])

    def _computed_item(self, node: nodes.Getitem) -> None:
        """``x[key]`` with a key only known at render time: Jinja2 falls back to ``getattr(x, key)``, so the
        key may name a dunder. Reported on gadget objects and on chains of such lookups (the first may
        yield ``__class__``, the next ``__subclasses__``); a message's fields looked up by a loop
        variable stay quiet."""
        target = node.node
        chained = isinstance(target, nodes.Getitem) and self.folder.fold(target.arg) is None
        if chained or _root(node) in self.policy.gadgets:
            self._hit(node.lineno, "escape", Severity.HIGH, "item access", _COMPUTED, _describe(node))

    def _call(self, node: nodes.Call) -> None:
        for keyword in node.kwargs:
            # dict(__init__=1)|join: a keyword's name is a string the template can turn into a key
            if names_internal(keyword.key):
                self._hit(
                    node.lineno, "escape", Severity.CRITICAL, keyword.key, "a keyword-argument name", _describe(node)
                )
        callee = node.node
        if isinstance(callee, nodes.Name) and callee.name in self.policy.attribute_functions and len(node.args) > 1:
            self._attribute_names(node.args[1], node, f"{callee.name}()")
        if self._method_names(callee) & self.policy.format_methods:
            self.calls_format = True

    def _attribute_names(self, expression: nodes.Expr, node: nodes.Node, via: str) -> None:
        """An argument that names attributes: dotted paths and comma lists, or unknown until rendering."""
        values = self.folder.fold(expression)
        if values is None:
            self._hit(node.lineno, "escape", Severity.HIGH, via, _COMPUTED, _describe(node))
            return
        for value in values:
            if isinstance(value, str):
                for part in re.split(r"[.,]", value):
                    self._attribute(part.strip(), node, via, item=False)

    def _method_names(self, callee: nodes.Node) -> set[str]:
        if isinstance(callee, nodes.Getattr):
            return {callee.attr}
        if isinstance(callee, nodes.Filter) and callee.name == "attr" and callee.args:
            return set(self._strings(callee.args[0]))
        return set()

    def _constant(self, text: str, node: nodes.Node) -> None:
        """A string the template computes: exactly an internal name, or an escape dunder inside it."""
        name = text.strip()
        if names_internal(name):
            self._hit(node.lineno, "escape", Severity.CRITICAL, name, _CONSTANT, _describe(node))
            return
        for dunder in self.policy.escape_dunders:
            if dunder in text:
                self._hit(node.lineno, "escape", Severity.HIGH, dunder, _CONSTANT, _describe(node))

    def _format_walks(self, text: str, line: int) -> None:
        """Format fields that walk attributes ("{0.__class__}"); they matter once .format() is called."""
        if "{" not in text:
            return
        for field in _FORMAT_FIELD.findall(text):
            for name in _FIELD_ATTRIBUTE.findall(field):
                if self._severity(name, item=False, node=None) is not None:
                    self.format_walks.append((line, name))

    def _strings(self, node: nodes.Node) -> list[str]:
        return [value for value in self.folder.fold(node) or () if isinstance(value, str)]


def _root(node: nodes.Node) -> str | None:
    """The variable an attribute chain starts from, if the chain is of a sane length."""
    for _ in range(_MAX_FOLD_DEPTH):
        if not isinstance(node, nodes.Getattr | nodes.Getitem | nodes.Call | nodes.Filter) or node.node is None:
            break
        node = node.node
    return node.name if isinstance(node, nodes.Name) else None


def _describe(node: nodes.Node) -> str:
    """A short rendering of an attribute chain: ``cycler.__init__.__globals__.os``."""
    parts: list[str] = []
    while len(parts) < 12:
        if isinstance(node, nodes.Getattr):
            parts.append(f".{node.attr}")
        elif isinstance(node, nodes.Getitem):
            key = node.arg.value if isinstance(node.arg, nodes.Const) else "…"
            parts.append(f"[{key!r}]")
        elif isinstance(node, nodes.Call):
            parts.append("()")
        elif isinstance(node, nodes.Filter):
            parts.append(f"|{node.name}")
        else:
            break
        if node.node is None:
            break
        node = node.node
    else:
        return "…" + "".join(reversed(parts))
    if isinstance(node, nodes.Name):
        head = node.name
    elif isinstance(node, nodes.Const):
        head = repr(node.value)[:40]
    else:
        head = "(…)"
    return head + "".join(reversed(parts))


# ---------------------------------------------------------------------- constant folding


class _Binding(NamedTuple):
    how: str  # "value" (set/with), "each" (a for loop's items), "block" (set … endset), "unknown"
    node: nodes.Node | None


def _bindings(all_nodes: list[nodes.Node]) -> dict[str, list[_Binding]]:
    """Every value a variable (or namespace attribute) is given anywhere, ignoring control flow."""
    bound: dict[str, list[_Binding]] = {}

    def bind(target: nodes.Node, binding: _Binding) -> None:
        if isinstance(target, nodes.Name):
            bound.setdefault(target.name, []).append(binding)
        elif isinstance(target, nodes.NSRef):
            bound.setdefault(f"{target.name}.{target.attr}", []).append(binding)
        elif isinstance(target, nodes.Tuple):
            for item in target.items:
                bind(item, _Binding("unknown", None))

    for node in all_nodes:
        if isinstance(node, nodes.Assign):
            bind(node.target, _Binding("value", node.node))
            value = node.node
            if isinstance(node.target, nodes.Name) and isinstance(value, nodes.Call):
                for keyword in value.kwargs:  # namespace(sep="…") seeds ns.sep
                    bound.setdefault(f"{node.target.name}.{keyword.key}", []).append(_Binding("value", keyword.value))
        elif isinstance(node, nodes.AssignBlock):
            bind(node.target, _Binding("block", node))
        elif isinstance(node, nodes.For):
            bind(node.target, _Binding("each", node.iter))
        elif isinstance(node, nodes.With):
            for target, value in zip(node.targets, node.values, strict=False):
                bind(target, _Binding("value", value))
        elif isinstance(node, nodes.Macro | nodes.CallBlock):
            for argument in node.args:
                bind(argument, _Binding("unknown", None))
        elif isinstance(node, nodes.FromImport):
            for name in node.names:
                bound.setdefault(name if isinstance(name, str) else name[-1], []).append(_Binding("unknown", None))
        elif isinstance(node, nodes.Import):
            bound.setdefault(node.target, []).append(_Binding("unknown", None))
    return bound


class _Unknown(Exception):
    """The value cannot be known without rendering, or computing it would be too costly."""


class _Folder:
    """The values an expression can take when it is built from constants only; None when unknown.

    Follows ``set`` variables, loop items over constant lists, string concatenation, slicing, common
    string filters and methods, and both branches of conditionals, so that ``"__cla" ~ "ss__"`` or
    ``"__SSALC__"|lower|reverse`` is seen as the attribute name it becomes. Bounded in depth, number
    of values and sizes (checked before computing); it never runs template code, only these
    re-implemented operations on str, int and tuple constants.
    """

    def __init__(self, bindings: dict[str, list[_Binding]]) -> None:
        self.bindings = bindings
        self.memo: dict[int, frozenset[Value] | None] = {}
        self.resolving: set[str] = set()

    def fold(self, node: nodes.Node | None, depth: int = 0) -> frozenset[Value] | None:
        if node is None or depth > _MAX_FOLD_DEPTH:
            return None
        key = id(node)
        if key not in self.memo:
            try:
                values = self._fold(node, depth + 1)
            except (_Unknown, TypeError, ValueError, IndexError, KeyError, OverflowError, ZeroDivisionError):
                values = None
            if values is not None and len(values) > _MAX_CANDIDATES:
                values = None
            self.memo[key] = values
        return self.memo[key]

    def _need(self, node: nodes.Node | None, depth: int) -> frozenset[Value]:
        values = self.fold(node, depth)
        if values is None:
            raise _Unknown
        return values

    def _operands(self, parts: Sequence[nodes.Node], depth: int) -> Iterator[tuple[Value, ...]]:
        """Every combination of the parts' values, each small enough to compute with."""
        choices = [self._need(part, depth) for part in parts]
        total = 1
        for choice in choices:
            total *= len(choice)
            if total > _MAX_CANDIDATES or not all(map(_small, choice)):
                raise _Unknown
        return product(*choices)

    def _fold(self, node: nodes.Node, depth: int) -> frozenset[Value] | None:
        if isinstance(node, nodes.Const):
            value = node.value
            return frozenset({value}) if value is None or isinstance(value, str | int | float | bool) else None
        if isinstance(node, nodes.TemplateData):
            return frozenset({node.data})
        if isinstance(node, nodes.List | nodes.Tuple):
            return frozenset(self._operands(node.items, depth))
        if isinstance(node, nodes.Concat):
            return frozenset(_concat(parts) for parts in self._operands(node.nodes, depth))
        if isinstance(node, nodes.Add | nodes.Mul | nodes.Mod):
            pairs = self._operands([node.left, node.right], depth)
            return frozenset(_binary(type(node), left, right) for left, right in pairs)
        if isinstance(node, nodes.Neg):  # '___x___'[1:-1]
            values = self._need(node.node, depth)
            if not all(isinstance(value, int | float) and not isinstance(value, bool) for value in values):
                raise _Unknown
            return frozenset(-value for value in values)  # type: ignore[operator]
        if isinstance(node, nodes.CondExpr):
            values = self._need(node.expr1, depth)
            return values | self._need(node.expr2, depth) if node.expr2 is not None else values
        if isinstance(node, nodes.Getitem):
            return self._getitem(node, depth)
        if isinstance(node, nodes.Filter) and node.node is not None:
            return self._apply(_FILTERS.get(node.name), node.node, node, depth)
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            return self._apply(_METHODS.get(node.node.attr), node.node.node, node, depth)
        if isinstance(node, nodes.Name):
            return self._lookup(node.name, depth)
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            return self._lookup(f"{node.node.name}.{node.attr}", depth)
        if isinstance(node, nodes.AssignBlock):
            return self._block(node, depth)
        return None

    def _lookup(self, name: str, depth: int) -> frozenset[Value] | None:
        if name not in self.bindings or name in self.resolving:
            return None
        self.resolving.add(name)
        try:
            values: set[Value] = set()
            for binding in self.bindings[name]:
                if binding.how == "unknown":
                    raise _Unknown
                found = self._need(binding.node, depth)
                if binding.how == "each":  # a loop variable takes each item of each possible sequence
                    if not all(isinstance(sequence, str | tuple) for sequence in found):
                        raise _Unknown
                    found = frozenset(item for sequence in found for item in sequence)  # type: ignore[union-attr]
                values |= found
                if len(values) > _MAX_CANDIDATES:
                    raise _Unknown
            return frozenset(values)
        finally:
            self.resolving.discard(name)

    def _block(self, node: nodes.AssignBlock, depth: int) -> frozenset[Value]:
        if node.filter is not None or not all(isinstance(part, nodes.Output) for part in node.body):
            raise _Unknown
        pieces = [piece for part in node.body if isinstance(part, nodes.Output) for piece in part.nodes]
        texts = {_concat(values) for values in self._operands(pieces, depth)}
        return frozenset(texts | {text.strip() for text in texts})  # trim_blocks may strip the edges

    def _getitem(self, node: nodes.Getitem, depth: int) -> frozenset[Value]:
        (containers,) = zip(*self._operands([node.node], depth), strict=True)
        if isinstance(node.arg, nodes.Slice):
            parts = [node.arg.start, node.arg.stop, node.arg.step]
            bounds = [self._need(part, depth) if part is not None else frozenset({None}) for part in parts]
            keys: list[object] = [slice(*bound) for bound in product(*bounds)]
        else:
            keys = [key for key in self._need(node.arg, depth) if isinstance(key, int)]
        if not keys or not all(isinstance(container, str | tuple) for container in containers):
            raise _Unknown
        return frozenset(container[key] for container in containers for key in keys)  # type: ignore[index]

    def _apply(
        self, function: _Operation | None, subject: nodes.Node, call: nodes.Filter | nodes.Call, depth: int
    ) -> frozenset[Value]:
        if function is None or call.dyn_args is not None or call.dyn_kwargs is not None:
            raise _Unknown
        keys = [keyword.key for keyword in call.kwargs if isinstance(keyword, nodes.Keyword)]
        results = set()
        arguments = [subject, *call.args, *(keyword.value for keyword in call.kwargs)]
        for values in self._operands(arguments, depth):
            positional = values[1 : 1 + len(call.args)]
            named = dict(zip(keys, values[1 + len(call.args) :], strict=True))
            results.add(_bounded(function(values[0], *positional, **named)))
        return frozenset(results)


_Operation = Callable[..., Value]


def _small(value: Value) -> bool:
    """Small enough to be an operand: results are then bounded before they are computed."""
    if isinstance(value, str):
        return len(value) <= _MAX_FOLDED_CHARS
    if isinstance(value, tuple):
        return len(value) <= _MAX_FOLDED_ITEMS and all(map(_small, value))
    return True


def _bounded(value: object) -> Value:
    if isinstance(value, list):
        value = tuple(value)
    if not (value is None or isinstance(value, str | int | float | bool | tuple)) or not _small(value):
        raise _Unknown
    return value


def _text(value: Value) -> str:
    """What ``~`` makes of a value (Jinja2 converts with str(); lists print with brackets)."""
    if isinstance(value, tuple):
        return "[" + ", ".join(repr(item) for item in value) + "]"
    return str(value)


def _concat(values: tuple[Value, ...]) -> str:
    texts = [_text(value) for value in values]
    if sum(map(len, texts)) > _MAX_FOLDED_CHARS:
        raise _Unknown
    return "".join(texts)


def _binary(operator: type, left: Value, right: Value) -> Value:
    if operator is nodes.Mod:
        return _percent(left, right if isinstance(right, tuple) else (right,))
    if operator is nodes.Add:
        if (isinstance(left, str) and isinstance(right, str)) or (isinstance(left, tuple) and isinstance(right, tuple)):
            return _bounded(left + right)  # type: ignore[operator]
        if isinstance(left, int | float) and isinstance(right, int | float):
            return left + right
        raise _Unknown
    sequence, count = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(sequence, str | tuple) and isinstance(count, int) and not isinstance(count, bool):
        if len(sequence) * count > _MAX_FOLDED_CHARS:
            raise _Unknown
        return sequence * count
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left * right
    raise _Unknown


def _expansion_check(template: str, fields: int, args: tuple[Value, ...]) -> None:
    longest = max((len(_text(arg)) for arg in args), default=0)
    if len(template) + fields * longest > _MAX_FOLDED_CHARS:
        raise _Unknown


def _percent(template: Value, args: tuple[Value, ...]) -> Value:
    """``"%s" % x`` and the ``format`` filter; a width could make the result huge, so none is allowed."""
    if not isinstance(template, str):
        raise _Unknown
    specs = _PERCENT_SPEC.findall(template)
    if any(int(number) > _MAX_FORMAT_WIDTH for spec in specs for number in _NUMBER.findall(spec)):
        raise _Unknown
    _expansion_check(template, len(specs), args)
    return template % args


def _format(template: Value, *args: Value, **kwargs: Value) -> Value:
    """``str.format`` with plain fields only: attribute walks and nested or wide specs stay unknown."""
    if not isinstance(template, str):
        raise _Unknown
    fields = 0
    for _, field, spec, _ in string.Formatter().parse(template):
        if field is None or spec is None:
            continue
        fields += 1
        if "." in field or "[" in field or "{" in spec:
            raise _Unknown
        if any(int(number) > _MAX_FORMAT_WIDTH for number in _NUMBER.findall(spec)):
            raise _Unknown
    _expansion_check(template, fields, (*args, *kwargs.values()))
    return template.format(*args, **kwargs)


def _join(value: Value, separator: Value = "", attribute: Value = None) -> Value:
    if attribute is not None or not isinstance(value, str | tuple) or not isinstance(separator, str):
        raise _Unknown
    texts = [_text(item) for item in value]
    if sum(map(len, texts)) + len(separator) * len(texts) > _MAX_FOLDED_CHARS:
        raise _Unknown
    return separator.join(texts)


def _joined_by(separator: Value, value: Value) -> Value:
    """``sep.join(items)``: the method form of the join filter."""
    if not isinstance(value, tuple) or not all(isinstance(item, str) for item in value):
        raise _Unknown
    return _join(value, separator)


def _replace(value: Value, old: Value, new: Value, count: Value = -1) -> Value:
    if not (isinstance(value, str) and isinstance(old, str) and isinstance(new, str) and isinstance(count, int)):
        raise _Unknown
    matches = value.count(old) if old else len(value) + 1
    if len(value) + matches * len(new) > _MAX_FOLDED_CHARS:
        raise _Unknown
    return value.replace(old, new, count)


def _text_method(name: str) -> _Operation:
    """A str method whose result is no longer than a few times its input."""
    method = getattr(str, name)

    def apply(value: Value, *args: Value) -> Value:
        if not isinstance(value, str) or not all(isinstance(arg, str | int | None) for arg in args):
            raise _Unknown
        return method(value, *args)

    return apply


def _sequence(function: Callable[[str | tuple], Value]) -> _Operation:
    def apply(value: Value) -> Value:
        if not isinstance(value, str | tuple):
            raise _Unknown
        return function(value)

    return apply


def _same(value: Value, *args: Value, **kwargs: Value) -> Value:
    return value  # default(...) and safe: a folded value is always defined


_CASE_AND_TRIM = ("lower", "upper", "capitalize", "title", "casefold", "swapcase", "strip", "lstrip", "rstrip")

# Jinja2 filters, re-implemented for constants only.
_FILTERS: dict[str, _Operation] = {
    **{name: _text_method(name) for name in ("lower", "upper", "capitalize", "title")},
    "trim": _text_method("strip"),
    "replace": _replace,
    "string": _text,
    "reverse": _sequence(lambda value: value[::-1]),
    "first": _sequence(lambda value: value[0]),
    "last": _sequence(lambda value: value[-1]),
    "list": _sequence(tuple),
    "join": _join,
    "format": lambda value, *args: _percent(value, args),
    "default": _same,
    "d": _same,
    "safe": _same,
}
# Python str methods a template can call on a constant.
_METHODS: dict[str, _Operation] = {
    **{name: _text_method(name) for name in (*_CASE_AND_TRIM, "split", "rsplit", "removeprefix", "removesuffix")},
    "replace": _replace,
    "join": _joined_by,
    "format": _format,
}
