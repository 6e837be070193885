"""skops (.skops): a ZIP whose schema.json names every type and function to rebuild the model.

skops refuses types outside its default trusted set unless the caller trusts them, and callers
routinely pass whatever ``skops.io.get_untrusted_types`` reports. A trusted name is imported and
called with arguments from the file (a ConstructorFromReduceNode of ``os.system`` runs a command),
so every type skops would report is reported here, found by the same per-node rules skops 0.16
applies; known dangerous primitives are critical. The schema is parsed, never loaded.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, NamedTuple

from .. import rules
from ..context import Handler, Item, ScanContext
from ..core import AttackClass, Capability, Rule, Severity
from ..data import read_text
from ..limits import MiB
from ..picklevm import policy as pickle_policy
from ..registry import Format, Layout

SKOPS_UNTRUSTED_TYPE = Rule(
    id="MLO180",
    name="skops-untrusted-type",
    title="skops file needs a type outside skops' trusted set",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "skops refuses to load such types unless the caller trusts them. Users routinely pass every reported "
        "type to trusted=..., which hands the file the power to import and call them."
    ),
    remediation="Review each listed type; trust only those from libraries you already depend on.",
    summary=("A skops type outside skops' trusted set (critical for known primitives, medium for allowlisted ones)."),
)


SCHEMA_MEMBER = "schema.json"
MAX_SCHEMA_BYTES = 64 * MiB
CURRENT_PROTOCOL = 2  # the newest schema protocol skops 0.16 reads; skops refuses newer ones
# skops builds its tree recursively and, at Python's default recursion limit, fails between 200
# and 250 levels; deeper schemas are reported, not followed.
MAX_NODE_DEPTH = 256
_PATH_CHARS = 240
_NAME_CHARS = 300

# Nodes whose get_unsafe_set is always empty: JSON literals and slices hold no type to import.
NEVER_AUDITED = frozenset({"JsonNode", "SliceNode"})
# ReduceNodes whose constructor is fixed by skops rather than read from the file.
FIXED_CONSTRUCTORS = {
    "TreeNode": ("sklearn.tree._tree", "Tree"),
    "QuantileForestNode": ("quantile_forest._quantile_forest_fast", "QuantileForest"),
}
# What a node does with its own __module__.__class__ when loading: ObjectNode creates an instance
# with __new__ and gives it state; these others never import the name (a fixed constructor, the
# scipy reader, the bound object's own node). Every other node imports the name and calls it.
_SELF_USE = {
    "ObjectNode": "build",
    "SparseMatrixNode": "unused",
    "TreeNode": "unused",
    "QuantileForestNode": "unused",
    "MethodNode": "unused",
}

Name = tuple[str, str]  # (module, qualified name), as skops joins them with a dot


@functools.cache
def trusted_types() -> dict[str, frozenset[str]]:
    """Default trusted names per loader ("Loader" or "Loader@protocol"), from the reviewed data file."""
    text = read_text("skops_trusted.txt")
    sections: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], set())
        elif line and current is not None:
            current.add(line)
    return {key: frozenset(names) for key, names in sections.items()}


def member_handler(name: str) -> Handler | None:
    """skops reads schema.json as the object tree; its other members are arrays, sniffed as usual."""
    return analyze_schema if name == SCHEMA_MEMBER else None


class _Broken(Exception):
    """The schema breaks a rule skops enforces while building its tree: loading stops there."""


class _Parts(NamedTuple):
    children: list[tuple[str, Any]]  # (path segment, child state), in the order skops builds them
    checked: Name | None = None  # the name checked instead of __module__.__class__
    extra: tuple[Name, ...] = ()  # names skops reports whatever the trusted lists say
    constructor: Name | None = None  # ReduceNode constructor, checked as a TypeNode


class _Path(NamedTuple):
    """A JSON path kept as a chain, so a wide tree does not copy long prefixes."""

    parent: _Path | None
    segment: str

    def __str__(self) -> str:
        parts: list[str] = []
        length = 0
        node: _Path | None = self
        while node is not None and length < _PATH_CHARS:
            parts.append(node.segment)
            length += len(node.segment)
            node = node.parent
        text = "".join(reversed(parts))
        return text if node is None else "..." + text[-_PATH_CHARS:]


class _Untrusted:
    def __init__(self, name: Name, loader: str, path: _Path) -> None:
        self.name = name
        self.loader = loader
        self.path = path
        self.uses: set[str] = set()


def analyze_schema(ctx: ScanContext, item: Item) -> None:
    item.stream.seek(0)
    raw = item.stream.read(MAX_SCHEMA_BYTES + 1)
    if len(raw) > MAX_SCHEMA_BYTES:
        ctx.record(item, "skops-schema")
        message = f"skops schema.json is larger than {MAX_SCHEMA_BYTES} bytes; its types were not checked"
        ctx.report(rules.SCAN_LIMIT.finding(item.location, message))
        return
    walk = _Walk(ctx, item)
    schema = walk.parse(raw)
    if schema is not None and "__loader__" not in schema and "protocol" not in schema:
        ctx.record(item, "other")  # another tool's schema.json: skops cannot load it
        return
    ctx.record(item, "skops-schema")
    if schema is not None:
        walk.check_protocol(schema)
        walk.run(schema)
    walk.report()


class _Walk:
    """Rebuilds skops' node tree on paper (get_tree) and collects what get_unsafe_set would report."""

    def __init__(self, ctx: ScanContext, item: Item) -> None:
        self.ctx = ctx
        self.item = item
        self.trusted = trusted_types()
        self.protocol = CURRENT_PROTOCOL
        self.memo: dict[Any, Name] = {}  # __id__ -> the node skops built first under that id
        self.untrusted: dict[str, _Untrusted] = {}
        self.problems: list[tuple[str, _Path | None]] = []

    def parse(self, raw: bytes) -> dict[str, Any] | None:
        try:
            schema = json.loads(raw)  # as skops reads it: bytes, encoding detected the same way
        except ValueError as exc:
            self.problems.append((f"schema.json is not valid JSON: {exc}", None))
            return None
        except RecursionError:
            self.problems.append(("schema.json is nested too deeply to parse", None))
            return None
        if not isinstance(schema, dict):
            self.problems.append((f"schema.json holds a JSON {_json_type(schema)}, not an object", None))
            return None
        return schema

    def check_protocol(self, schema: dict[str, Any]) -> None:
        protocol = schema.get("protocol")
        if type(protocol) is not int or not 0 <= protocol <= CURRENT_PROTOCOL:
            # skops refuses the file before building anything; read it with today's rules anyway.
            self.problems.append((f"skops refuses protocol {_preview(protocol)} (it reads 0 to 2)", None))
        else:
            self.protocol = protocol

    def run(self, schema: dict[str, Any]) -> None:
        stack: list[tuple[Any, _Path, frozenset[str], int]] = [(schema, _Path(None, "$"), frozenset(), 0)]
        visited = 0
        while stack:
            state, path, inherited, depth = stack.pop()
            visited += 1
            if visited % 4096 == 0:
                self.ctx.budget.check_time()
            if depth > MAX_NODE_DEPTH:
                self.problems.append((f"objects nested deeper than {MAX_NODE_DEPTH} levels; not followed", path))
                continue
            try:
                children = self._visit(state, path, inherited)
            except _Broken as exc:
                self.problems.append((str(exc), path))
                continue
            for segment, child_state, child_inherited in reversed(children):
                stack.append((child_state, _Path(path, segment), child_inherited, depth + 1))

    def _visit(self, state: Any, path: _Path, inherited: frozenset[str]) -> list[tuple[str, Any, frozenset[str]]]:
        if not isinstance(state, dict):
            raise _Broken(f"a node is a JSON {_json_type(state)}, not an object")
        node_id = state.get("__id__")
        try:
            if node_id in self.memo:
                return []  # skops reuses the node built first under this id and ignores this state
        except TypeError:
            raise _Broken(f"node id {_preview(node_id)} cannot be looked up") from None
        loader = state.get("__loader__")
        key = self._section(loader)
        if key is None or not isinstance(loader, str):  # _section knows only string loaders
            raise _Broken(f"unknown loader {_preview(loader)}: skops cannot build this node")
        module, cls = state.get("__module__"), state.get("__class__")
        if not isinstance(module, str) or not isinstance(cls, str):
            raise _Broken("node lacks a string __module__ and __class__")
        if node_id and loader != "CachedNode":
            self.memo[node_id] = (module, cls)
        parts = _HANDLERS[loader](self, key, state)
        own = self.trusted[key]
        if loader not in NEVER_AUDITED:
            name = parts.checked or (module, cls)
            dotted = _dotted(name)
            if dotted not in own and (loader == "DefaultDictNode" or dotted not in inherited):
                self._add(name, loader, path, _SELF_USE.get(loader, "call"))
        for name in parts.extra:
            self._add(name, loader, path, "call")
        # A LossNode hands its trusted losses down to everything below it.
        below = inherited | own if loader == "LossNode" and own else inherited
        if parts.constructor is not None:
            dotted = _dotted(parts.constructor)
            if dotted not in self.trusted["TypeNode"] and dotted not in below:
                self._add(parts.constructor, "TypeNode", path, "call")
        return [(segment, child, below) for segment, child in parts.children]

    def _section(self, loader: Any) -> str | None:
        if not isinstance(loader, str) or loader not in _HANDLERS:
            return None
        versioned = f"{loader}@{self.protocol}"
        return versioned if versioned in self.trusted else loader if loader in self.trusted else None

    def identity(self, state: Any) -> Name | None:
        """The (module, class) skops will see for a child state about to be built."""
        if not isinstance(state, dict):
            return None
        try:
            known = self.memo.get(state.get("__id__"))
        except TypeError:
            return None
        if known is not None:
            return known
        module, cls = state.get("__module__"), state.get("__class__")
        return (module, cls) if isinstance(module, str) and isinstance(cls, str) else None

    def _add(self, name: Name, loader: str, path: _Path, use: str) -> None:
        entry = self.untrusted.setdefault(_dotted(name), _Untrusted(name, loader, path))
        entry.uses.add(use)

    def report(self) -> None:
        for message, path in self.problems:
            evidence = {"path": str(path)} if path is not None else {}
            self.ctx.report(rules.MALFORMED.finding(self.item.location, f"skops schema: {message}", evidence))
        for dotted in sorted(self.untrusted):
            self._report_type(dotted, self.untrusted[dotted])

    def _report_type(self, dotted: str, entry: _Untrusted) -> None:
        policy = self.ctx.policy
        verdict = policy.judge(policy.canonical(*entry.name))
        shown = _printable(dotted[:_NAME_CHARS])
        evidence = {"type": shown, "loader": entry.loader, "path": str(entry.path)}
        base = f"skops needs {shown} ({entry.loader}), which it does not trust by default"
        if verdict.category is not None:
            evidence["category"] = verdict.category.key
            message = f"{base}; it {verdict.category.why}"
            severity, capability = verdict.category.severity, verdict.category.capability
        elif verdict.status == pickle_policy.SAFE or (
            verdict.status == pickle_policy.BUILD_ONLY and entry.uses <= {"build", "unused"}
        ):
            # Library types skops leaves untrusted for their content (tree node indices, say), not their code.
            message = (
                f"{base}; it is a library type on mloops' reviewed allowlist, so trusting it imports no "
                "foreign code, but skops cannot vouch for the values the file gives it"
            )
            severity, capability = Severity.MEDIUM, None
        else:
            message = f"{base}; trusting it lets the file import and call it"
            severity, capability = None, None
        self.ctx.report(
            SKOPS_UNTRUSTED_TYPE.finding(
                self.item.location, message, evidence, severity=severity, capability=capability
            )
        )


# ------------------------------------------------------------------ one reader per skops node


def _field(value: Any, key: str) -> Any:
    if not isinstance(value, dict):
        raise _Broken(f"expected an object holding {key!r}, found a JSON {_json_type(value)}")
    if key not in value:
        raise _Broken(f"node lacks {key!r}")
    return value[key]


def _items(value: Any, segment: str) -> list[tuple[str, Any]]:
    if not isinstance(value, list):
        raise _Broken(f"{segment} is a JSON {_json_type(value)}, not an array")
    return [(f"{segment}[{index}]", child) for index, child in enumerate(value)]


def _named(state: Any, *keys: str) -> list[tuple[str, Any]]:
    content = _field(state, "content")
    return [(f".content.{key}", _field(content, key)) for key in keys]


def _dict_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    key_types = _field(state, "key_types")
    content = _field(state, "content")
    if not isinstance(content, dict):
        raise _Broken(f"content is a JSON {_json_type(content)}, not an object")
    children = [(".key_types", key_types)]
    children += [(f".content[{json.dumps(name)[:40]}]", child) for name, child in content.items()]
    return _Parts(children)


def _sequence_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    return _Parts(_items(_field(state, "content"), ".content"))


def _file_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    _field(state, "file")  # the member itself is scanned as its own content
    return _Parts([])


def _slice_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    _named(state, "start", "stop", "step")  # raw values, never built as nodes
    return _Parts([])


def _leaf_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    return _Parts([])


def _json_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    _field(state, "content")
    return _Parts([])


def _function_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    if key != "FunctionNode@0":
        return _Parts([])
    # Protocol 0 named the function in its content, and skops checks that name alone.
    content = _field(state, "content")
    module, function = _field(content, "module_path"), _field(content, "function")
    if not isinstance(module, str) or not isinstance(function, str):
        raise _Broken("function reference is not a pair of strings")
    return _Parts([], checked=(module, function))


def _method_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    content = _field(state, "content")
    owner, func = _field(content, "obj"), _field(content, "func")
    if not isinstance(func, str):
        raise _Broken(f"method name is a JSON {_json_type(func)}, not a string")
    identity = walk.identity(owner)
    if identity is None or identity != (state["__module__"], state["__class__"]):
        raise _Broken("method is bound to an object of another type; skops refuses it")
    # skops always reports the method itself: owner type, then the attribute fetched from it.
    return _Parts([(".content.obj", owner)], extra=((identity[0], f"{identity[1]}.{func}"),))


def _object_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    content = state.get("content")
    return _Parts([] if content is None else [(".content", content)])


def _content_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    return _Parts([(".content", _field(state, "content"))])


def _operator_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    if state["__module__"] != "operator":
        raise _Broken("operator function outside the operator module; skops refuses it")
    return _Parts([(".attrs", _field(state, "attrs"))])


def _array_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    kind = _field(state, "type")
    if kind == "numpy":
        _field(state, "file")
        return _Parts([])
    if kind == "json":
        items = _items(_field(state, "content"), ".content")
        return _Parts([*items, (".shape", _field(state, "shape"))])
    raise _Broken(f"unknown array storage {_preview(kind)}")


def _sparse_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    if _field(state, "type") != "scipy":
        raise _Broken("sparse matrix not stored by scipy; skops refuses it")
    _field(state, "file")
    return _Parts([])


def _generator_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    content = _field(state, "content")
    bit_generator = _field(content, "bit_generator")
    if key == "RandomGeneratorNode@0":
        # Protocol 0 kept the state as raw JSON, which skops cannot audit unless it is empty.
        if bit_generator != {}:
            raise _Broken("protocol 0 random generator state cannot be audited; skops refuses it")
        return _Parts([])
    # numpy rebuilds the bit generator from a class name inside the state: skops reports that name.
    try:
        name = json.loads(bit_generator["content"]["bit_generator"]["content"])
    except (KeyError, TypeError, ValueError, RecursionError):
        name = None
    if not isinstance(name, str):
        raise _Broken("random generator state does not name its bit generator")
    children = [(".content.bit_generator", bit_generator)]
    if key == "RandomGeneratorNode":
        children.append((".content.seed_seq", _field(content, "seed_seq")))
    extra = () if f"numpy.random.{name}" in walk.trusted["bit-generators"] else (("numpy.random", name),)
    return _Parts(children, extra=extra)


def _reduce_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    reduce = _field(state, "__reduce__")
    children = [(".content", _field(state, "content")), (".__reduce__.args", _field(reduce, "args"))]
    loader = key.split("@")[0]
    constructor = FIXED_CONSTRUCTORS.get(loader, (state["__module__"], state["__class__"]))
    return _Parts(children, constructor=constructor)


def _cached_node(walk: _Walk, key: str, state: dict[str, Any]) -> _Parts:
    # Reached only when the id was not built before: skops raises on the unknown reference.
    raise _Broken(f"cached node refers to unknown object id {_preview(state.get('__id__'))}")


_HANDLERS: dict[str, Callable[[_Walk, str, dict[str, Any]], _Parts]] = {
    "DictNode": _dict_node,
    "DefaultDictNode": lambda walk, key, state: _Parts(_named(state, "main", "default_factory")),
    "ListNode": _sequence_node,
    "SetNode": _sequence_node,
    "TupleNode": _sequence_node,
    "BytesNode": _file_node,
    "BytearrayNode": _file_node,
    "SliceNode": _slice_node,
    "FunctionNode": _function_node,
    "MethodNode": _method_node,
    "PartialNode": lambda walk, key, state: _Parts(_named(state, "func", "args", "kwds", "namespace")),
    "TypeNode": _leaf_node,
    "ConstructorFromReduceNode": _content_node,
    "ObjectNode": _object_node,
    "JsonNode": _json_node,
    "OperatorFuncNode": _operator_node,
    "NdArrayNode": _array_node,
    "MaskedArrayNode": lambda walk, key, state: _Parts(_named(state, "data", "mask")),
    "DTypeNode": _content_node,
    "RandomStateNode": _content_node,
    "RandomGeneratorNode": _generator_node,
    "SparseMatrixNode": _sparse_node,
    "LossNode": _reduce_node,
    "TreeNode": _reduce_node,
    "QuantileForestNode": _reduce_node,
    "CachedNode": _cached_node,
}


def _dotted(name: Name) -> str:
    return f"{name[0]}.{name[1]}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _preview(value: Any) -> str:
    text = repr(value) if isinstance(value, str | int | float | bool) or value is None else _json_type(value)
    return _printable(text[:80])


def _printable(text: str) -> str:
    """Lone surrogates from JSON escapes would break UTF-8 reports."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


FORMATS = (
    # skops.load reads schema.json from any ZIP
    Format(
        "skops",
        "code",
        "skops",
        extensions=(".skops",),
        layout=Layout("zip", 50, lambda names: SCHEMA_MEMBER in names, member_handler),
    ),
    Format("skops-schema", "code", "skops schema"),
)
