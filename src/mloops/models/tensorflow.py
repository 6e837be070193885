"""TensorFlow SavedModel, frozen GraphDef and Keras SavedModel metadata: protobuf-encoded programs.

A graph's operations run whenever the model is served or called, with the serving process's
privileges. Nearly all are tensor math; a few read or write files, open connections or call into
Python. Every node of the graph and of its function library is read, and op types on the reviewed
list (data/tensorflow_ops.toml) are judged. Keras metadata holds each layer's config, where a Lambda
layer carries Python bytecode.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterator
from typing import NamedTuple

from .. import rules
from ..context import Item, ScanContext
from ..core import AttackClass, Capability, Rule, Severity
from ..data import load_toml
from ..limits import LimitExceeded
from ..parsers import protobuf
from ..parsers.protobuf import LEN, VARINT, DecodeError, Message
from ..registry import Format
from ..sources import escapes_extraction
from . import keras_config

TENSORFLOW_DANGEROUS_OP = Rule(
    id="MLO140",
    name="tensorflow-dangerous-op",
    title="TensorFlow graph contains an operation that reaches files, processes or Python",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.FILE_ACCESS,
    description=(
        "Graph operations such as ReadFile, WriteFile, MatchingFiles or PyFunc run with the privileges of "
        "the serving process whenever the graph executes: they read secrets, overwrite files or call into "
        "Python. Benign inference graphs do not need them."
    ),
    remediation=(
        "Do not serve the model. Re-export it from trusted code, and serve it where the process can reach "
        "no secrets or writable paths."
    ),
    summary=(
        "A TensorFlow (or TFLite Flex) op that reads or writes files, calls Python or opens connections; severity per"
        " op in `data/tensorflow_ops.toml`."
    ),
)


SAVED_MODEL = "tensorflow-savedmodel"
GRAPH_DEF = "tensorflow-graphdef"
KERAS_METADATA = "keras-metadata"
COMPANION = "tensorflow-metadata"  # fingerprint.pb and tfhub_module.pb: hashes and a format number, no graph
# Their fields and wire types: FingerprintDef (hashes 1-5, version 6, uuid 7) and hub's ModuleDef (format 1).
COMPANION_FIELDS: dict[str, dict[int, tuple[int, ...]]] = {
    "fingerprint.pb": {
        1: (VARINT,),
        2: (VARINT,),
        3: (VARINT,),
        4: (VARINT,),
        5: (VARINT,),
        6: (VARINT, LEN),
        7: (LEN,),
    },
    "tfhub_module.pb": {1: (VARINT,)},
}

MAX_INDEXED_NODES = 1_000_000  # nodes held in memory at once to follow where a path comes from
MAX_TRACED_NODES = 10_000  # ancestors followed for one path input; benign savers need a dozen
MAX_KEPT_NODES = 1_000_000  # call sites and path operations kept for judging
MAX_INPUTS = 100_000  # inputs of one node
MAX_ATTRS = 10_000  # attributes of one node
MAX_ATTR_STRINGS = 64  # the first strings of an attribute are enough to judge it
MAX_ATTR_FUNCS = 4096
MAX_CONST_STRINGS = 64
MAX_STRING = 4096
HEAD_BYTES = 64 * 1024  # what sniffing saw; detection is repeated on it to tell the three messages apart

DT_STRING = 7
# Ops whose value is fed by the caller (signature inputs); a PlaceholderWithDefault also has the file's default.
FED_OPS = frozenset({"Placeholder", "PlaceholderV2"})
DEFAULTED_OPS = frozenset({"PlaceholderWithDefault"})
VARIABLE_OPS = frozenset({"VarHandleOp", "VariableV2", "Variable"})
ASSIGN_OPS = frozenset({"AssignVariableOp", "Assign"})
# Function-calling ops: the attributes naming the callee, and the first input passed as its argument 0.
CALL_ATTRS: dict[str, tuple[tuple[str, ...], int]] = {
    "PartitionedCall": (("f",), 0),
    "StatefulPartitionedCall": (("f",), 0),
    "If": (("then_branch", "else_branch"), 1),
    "StatelessIf": (("then_branch", "else_branch"), 1),
    "Case": (("branches",), 1),
    "StatelessCase": (("branches",), 1),
}
# TF1 SavedModel collections that list asset tensors the loader feeds with paths inside assets/.
ASSET_COLLECTIONS = frozenset({"saved_model_assets", "asset_filepaths"})

_CAPABILITIES = {capability.slug: capability for capability in Capability}


class OpRule(NamedTuple):
    judge: str  # "always", "path" or "attribute"
    severity: Severity
    capability: Capability
    why: str
    path_inputs: tuple[int, ...]
    attr: str
    safe_prefixes: tuple[str, ...]


@functools.cache
def op_rules() -> dict[str, OpRule]:
    table = load_toml("tensorflow_ops.toml")["ops"]
    return {
        op: OpRule(
            spec["judge"],
            Severity.parse(spec["severity"]),
            _CAPABILITIES[spec["capability"]],
            spec["why"],
            tuple(spec.get("path_inputs", ())),
            spec.get("attr", ""),
            tuple(spec.get("safe_prefixes", ())),
        )
        for op, spec in table.items()
    }


# --- detection ---


def detect(head: bytes, name: str) -> bool:
    return _kind(head, name) is not None


def _kind(head: bytes, name: str) -> str | None:
    """Protobuf has no magic: a .pb name is required, and the first bytes must decode as the message."""
    base = _base_name(name)
    if not base.endswith(".pb"):
        return None
    fields, clean = protobuf.prefix_fields(head)
    if not clean or not fields:
        return None
    if base in COMPANION_FIELDS:
        allowed = COMPANION_FIELDS[base]
        return COMPANION if all(e.field.wire in allowed.get(e.field.number, ()) for e in fields) else None
    if base == "keras_metadata.pb":
        saved_object = {2: VARINT, 3: LEN, 4: LEN, 5: LEN, 6: LEN}
        return KERAS_METADATA if _looks_like(head, fields, {1: LEN}, saved_object) else None
    # SavedModel: saved_model_schema_version (written by TensorFlow, but optional to the loader, which
    # reads saved_model.pb as a SavedModel whatever it holds) and MetaGraphDefs.
    meta_graph = dict.fromkeys(range(1, 8), LEN)
    versioned = fields[0].field.number == 1 and fields[0].field.wire == VARINT
    if versioned or base == "saved_model.pb":
        if _looks_like(head, fields, {1: VARINT, 2: LEN}, meta_graph, inner_of=2):
            return SAVED_MODEL
        if versioned:
            return None
    # GraphDef: nodes first (name, op, inputs, ...), or only a function library and versions.
    graph_fields = {1: LEN, 2: LEN, 3: VARINT, 4: LEN, 5: LEN}
    if fields[0].field.number == 1:
        return GRAPH_DEF if _first_node_has_op(head, fields, graph_fields) else None
    return GRAPH_DEF if _looks_like(head, fields, graph_fields, {1: LEN, 2: LEN, 3: LEN}, inner_of=2) else None


def _base_name(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1].lower()


def _looks_like(
    head: bytes, fields: list[protobuf.PrefixField], outer: dict[int, int], inner: dict[int, int], inner_of: int = 1
) -> bool:
    if any(outer.get(entry.field.number) != entry.field.wire for entry in fields):
        return False
    first = next((entry.field for entry in fields if entry.field.number == inner_of), None)
    if first is None:
        return False
    nested, clean = protobuf.prefix_fields(head[first.offset : first.offset + first.value], limit=16)
    return clean and bool(nested) and all(inner.get(entry.field.number) == entry.field.wire for entry in nested)


def _first_node_has_op(head: bytes, fields: list[protobuf.PrefixField], graph_fields: dict[int, int]) -> bool:
    """The first NodeDef starts with known fields and names an op; damage after that is for analysis to report."""
    if any(graph_fields.get(entry.field.number) != entry.field.wire for entry in fields):
        return False
    node = fields[0].field
    nested, _ = protobuf.prefix_fields(head[node.offset : node.offset + node.value], limit=16)
    op = None
    for entry in nested:
        if entry.field.wire != LEN or not 1 <= entry.field.number <= 7:
            return False
        if entry.field.number == 2 and entry.complete:
            op = entry.field
            break
    if op is None or not 0 < op.value <= 256:
        return False
    text = head[node.offset + op.offset : node.offset + op.offset + op.value]
    return text.isascii() and all(chr(byte).isalnum() or chr(byte) in "_>.-/" for byte in text)


# --- analysis ---


def analyze(ctx: ScanContext, item: Item) -> None:
    item.stream.seek(0)
    kind = _kind(item.stream.read(HEAD_BYTES), item.name) or GRAPH_DEF
    ctx.record(item, kind)
    size = item.size if item.size is not None else item.stream.seek(0, 2)
    try:
        root = Message.load(item.stream, size, ctx.budget.check_time)
        if kind == COMPANION:
            _companion(ctx, item, root)
        elif kind == KERAS_METADATA:
            _keras_metadata(ctx, item, root)
        elif kind == SAVED_MODEL:
            for field in root.fields():
                if field.number == 2 and field.wire == LEN:
                    _meta_graph(ctx, item, root.child(field))
        else:
            _Program(ctx, item, root, frozenset()).run()
    except DecodeError as exc:
        message = f"{kind} protobuf is malformed: {exc.reason}; TensorFlow refuses the file"
        ctx.report(rules.MALFORMED.finding(item.location.at(exc.offset), message, {"offset": str(exc.offset)}))


def _companion(ctx: ScanContext, item: Item, msg: Message) -> None:
    """The whole file must keep to its small schema: a name alone lets nothing else through."""
    allowed = COMPANION_FIELDS[_base_name(item.name)]
    for field in msg.fields():
        if field.wire not in allowed.get(field.number, ()):
            message = f"{item.name} holds field {field.number}, which its schema does not have"
            ctx.report(rules.MALFORMED.finding(item.location.at(field.offset), message, {"field": str(field.number)}))
            return


def _meta_graph(ctx: ScanContext, item: Item, msg: Message) -> None:
    """A MetaGraphDef: its graph, and the tensors the loader feeds (saver filename, asset paths)."""
    graph: Message | None = None
    fed: set[str] = set()
    broken: DecodeError | None = None
    try:
        for field in msg.fields():
            if field.wire != LEN:
                continue
            if field.number == 2:
                graph = msg.child(field)
            elif field.number == 3:  # SaverDef.filename_tensor_name
                fed.update(_strings_of(msg.child(field), 1))
            elif field.number == 6:  # AssetFileDef.tensor_info.name
                fed.update(_asset_tensor(msg.child(field)))
            elif field.number == 4:
                fed.update(_asset_collection(msg.child(field)))
    except DecodeError as exc:
        broken = exc  # a graph read before the break is still judged
    if graph is not None:
        _Program(ctx, item, graph, frozenset(_node_name(name) for name in fed)).run()
    if broken is not None:
        raise broken


def _strings_of(msg: Message, number: int) -> Iterator[str]:
    for field in msg.fields():
        if field.number == number and field.wire == LEN:
            yield msg.text(field, MAX_STRING)


def _child_of(msg: Message, number: int) -> Iterator[Message]:
    for field in msg.fields():
        if field.number == number and field.wire == LEN:
            yield msg.child(field)


def _asset_tensor(asset_file_def: Message) -> Iterator[str]:
    for tensor_info in _child_of(asset_file_def, 1):
        yield from _strings_of(tensor_info, 1)


def _asset_collection(entry: Message) -> Iterator[str]:
    """collection_def map entry: TF1 lists asset tensors in 'saved_model_assets' or 'asset_filepaths'."""
    key = next(_strings_of(entry, 1), "")
    if key not in ASSET_COLLECTIONS:
        return
    for collection in _child_of(entry, 2):
        for node_list in _child_of(collection, 1):  # CollectionDef.node_list
            yield from _strings_of(node_list, 1)
        for any_list in _child_of(collection, 5):  # CollectionDef.any_list of packed AssetFileDefs
            for any_value in _child_of(any_list, 1):
                for asset in _child_of(any_value, 2):
                    yield from _asset_tensor(asset)


def _node_name(reference: str) -> str:
    """'save/Const:0' and '^save/Const' name the node 'save/Const'."""
    return reference.lstrip("^").split(":", 1)[0]


# --- graph nodes ---


class _Attr(NamedTuple):
    strings: tuple[str, ...]
    funcs: tuple[str, ...]
    tensor: Message | None


class _Node(NamedTuple):
    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: dict[str, _Attr]
    offset: int

    def data_inputs(self) -> list[str]:
        return [name for name in self.inputs if not name.startswith("^")]


_NO_ATTR = _Attr((), (), None)


def _parse_node(msg: Message) -> _Node:
    """NodeDef: name 1, op 2, input 3, attr 5 (map<string, AttrValue>)."""
    name = op = ""
    inputs: list[str] = []
    attrs: dict[str, _Attr] = {}
    for field in msg.fields():
        if field.wire != LEN:
            continue
        if field.number == 1:
            name = msg.text(field, MAX_STRING)
        elif field.number == 2:
            op = sys.intern(msg.text(field, MAX_STRING))
        elif field.number == 3:
            if len(inputs) >= MAX_INPUTS:
                raise LimitExceeded(f"a graph node with more than {MAX_INPUTS} inputs")
            inputs.append(msg.text(field, MAX_STRING))
        elif field.number == 5:
            if len(attrs) >= MAX_ATTRS:
                raise LimitExceeded(f"a graph node with more than {MAX_ATTRS} attributes")
            key, attr = _parse_attr_entry(msg.child(field))
            attrs[key] = attr
    return _Node(name, op, tuple(inputs), attrs, msg.start)


def _parse_attr_entry(msg: Message) -> tuple[str, _Attr]:
    key, attr = "", _NO_ATTR
    for field in msg.fields():
        if field.wire == LEN and field.number == 1:
            key = msg.text(field, MAX_STRING)
        elif field.wire == LEN and field.number == 2:
            attr = _parse_attr_value(msg.child(field))
    return key, attr


def _parse_attr_value(msg: Message) -> _Attr:
    """AttrValue: s 2, tensor 8, func 10 (NameAttrList), list 1 (s 2, func 9)."""
    strings: list[str] = []
    funcs: list[str] = []
    tensor = None
    for field in msg.fields():
        if field.wire != LEN:
            continue
        if field.number == 2 and len(strings) < MAX_ATTR_STRINGS:
            strings.append(msg.text(field, MAX_STRING))
        elif field.number == 10:
            funcs.extend(_function_names(msg.child(field)))
        elif field.number == 8:
            tensor = msg.child(field)
        elif field.number == 1:
            values = msg.child(field)
            for item in values.fields():
                if item.wire == LEN and item.number == 2 and len(strings) < MAX_ATTR_STRINGS:
                    strings.append(values.text(item, MAX_STRING))
                elif item.wire == LEN and item.number == 9:
                    funcs.extend(_function_names(values.child(item)))
        if len(funcs) > MAX_ATTR_FUNCS:
            raise LimitExceeded(f"an attribute naming more than {MAX_ATTR_FUNCS} functions")
    return _Attr(tuple(strings), tuple(funcs), tensor)


def _function_names(name_attr_list: Message) -> Iterator[str]:
    """NameAttrList: the function's name 1, and functions named in its own attrs 2 (nested, depth-bounded)."""
    for field in name_attr_list.fields():
        if field.wire == LEN and field.number == 1:
            yield name_attr_list.text(field, MAX_STRING)
        elif field.wire == LEN and field.number == 2:
            yield from _parse_attr_entry(name_attr_list.child(field))[1].funcs


def _const_strings(node: _Node) -> list[str] | None:
    """The strings of a string Const (TensorProto: dtype 1, string_val 8); None when too large to judge."""
    tensor = node.attrs.get("value", _NO_ATTR).tensor
    if tensor is None:
        return []
    dtype = 0
    values: list[str] = []
    for field in tensor.fields():
        if field.number == 1 and field.wire == VARINT:
            dtype = field.value
        elif field.number == 8 and field.wire == LEN:
            if len(values) >= MAX_CONST_STRINGS or field.value > MAX_STRING:
                return None
            values.append(tensor.text(field, MAX_STRING))
    return values if dtype == DT_STRING else []


class _Scope:
    """The main graph or one library function: its nodes, read again on demand."""

    def __init__(self, label: str, function: str, msg: Message, node_field: int, args: tuple[str, ...]) -> None:
        self.label = label
        self.function = function  # "" for the main graph
        self.msg = msg
        self.node_field = node_field
        self.args = args
        self.fed: frozenset[str] = frozenset()
        self.index: dict[str, _Node] | None = None
        self.assigns: dict[str, list[str]] = {}

    def nodes(self) -> Iterator[_Node]:
        for field in self.msg.fields():
            if field.number == self.node_field and field.wire == LEN:
                yield _parse_node(self.msg.child(field))


class _Leaves:
    """Where a path input comes from: caller-supplied values, constants, or values the scanner cannot see."""

    def __init__(self) -> None:
        self.args: set[str] = set()
        self.fed = False
        self.constants: list[str] = []
        self.opaque: list[str] = []


class _Hits:
    """The nodes of one op type flagged by an "always" or "attribute" rule: the first, and how many."""

    def __init__(self, scope: _Scope, node: _Node, value: str) -> None:
        self.scope = scope
        self.node = node
        self.value = value  # the attribute value that made it unsafe
        self.count = 1


class _Origin:
    """A path-judged op node and what was found about its path."""

    def __init__(self, scope: _Scope, node: _Node, rule: OpRule) -> None:
        self.scope = scope
        self.node = node
        self.rule = rule
        self.severity: Severity | None = None
        self.reasons: list[str] = []
        self.constants: list[str] = []

    def flag(self, severity: Severity, reason: str) -> None:
        self.severity = severity if self.severity is None else max(self.severity, severity)
        if reason not in self.reasons and len(self.reasons) < 8:
            self.reasons.append(reason)


class _Program:
    """One GraphDef with its function library."""

    def __init__(self, ctx: ScanContext, item: Item, graph: Message, fed: frozenset[str]) -> None:
        self.ctx = ctx
        self.item = item
        self.graph = _Scope("the graph", "", graph, 1, ())
        self.graph.fed = fed
        self.functions: dict[str, _Scope] = {}
        self.hits: dict[str, _Hits] = {}  # op -> nodes flagged by "always" and "attribute" rules
        self.origins: list[_Origin] = []  # nodes of "path" rules
        self.callers: dict[str, list[tuple[_Scope, _Node, int]]] = {}
        self.foreign: dict[str, list[_Node]] = {}  # functions named by other attributes, e.g. While bodies
        self.kept = 0
        self.indexed = 0

    def run(self) -> None:
        try:
            broken = self._load_library()
            for scope in (self.graph, *self.functions.values()):
                for node in scope.nodes():
                    self.ctx.budget.check_time()
                    self._classify(scope, node)
            self._judge_paths()
            if broken is not None:
                raise broken
        finally:
            self._report()  # what was found before a break is reported too

    def _load_library(self) -> DecodeError | None:
        """FunctionDefLibrary (GraphDef field 2): each FunctionDef's signature and body (node_def 3).

        A break is returned, not raised, so that the nodes before it are still judged.
        """
        try:
            for library in _child_of(self.graph.msg, 2):
                for function in _child_of(library, 1):
                    name, args = "", []
                    for signature in _child_of(function, 1):  # OpDef: name 1, input_arg 2 (ArgDef: name 1)
                        name = next(_strings_of(signature, 1), "")
                        args = [next(_strings_of(arg, 1), "") for arg in _child_of(signature, 2)]
                    self.functions[name] = _Scope(f"function {name!r}", name, function, 3, tuple(args))
        except DecodeError as exc:
            return exc
        return None

    def _classify(self, scope: _Scope, node: _Node) -> None:
        if node.op in self.functions:
            self._keep(self.callers.setdefault(node.op, []), (scope, node, 0))
        call_keys, first_arg = CALL_ATTRS.get(node.op, ((), 0))
        for key, attr in node.attrs.items():
            for function in attr.funcs:
                if function not in self.functions:
                    continue
                if key in call_keys:
                    self._keep(self.callers.setdefault(function, []), (scope, node, first_arg))
                else:
                    self._keep(self.foreign.setdefault(function, []), node)
        rule = op_rules().get(node.op)
        if rule is None:
            return
        if rule.judge == "always":
            self._hit(scope, node, "")
        elif rule.judge == "attribute":
            values = node.attrs.get(rule.attr, _NO_ATTR).strings
            unsafe = [value for value in values if value and not _starts_with_any(value, rule.safe_prefixes)]
            if unsafe:
                self._hit(scope, node, unsafe[0])
        else:
            self._keep(self.origins, _Origin(scope, node, rule))

    def _hit(self, scope: _Scope, node: _Node, value: str) -> None:
        hits = self.hits.get(node.op)
        if hits is None:
            self.hits[node.op] = _Hits(scope, node, value)
        else:
            hits.count += 1

    def _keep(self, into: list, entry: object) -> None:
        self.kept += 1
        if self.kept > MAX_KEPT_NODES:
            raise LimitExceeded(f"more than {MAX_KEPT_NODES} function calls and file operations in one graph")
        into.append(entry)

    # --- where do paths come from ---

    def _judge_paths(self) -> None:
        """Follow each path input back to where its value comes from, across function calls."""
        queue = [(site.scope, site.node, index, site, "") for site in self.origins for index in site.rule.path_inputs]
        seen: set[tuple[str, str, int, int]] = set()
        while queue:
            self.ctx.budget.check_time()
            scope, node, index, origin, via = queue.pop()
            key = (scope.label, node.name, index, id(origin))
            if key in seen:
                continue
            seen.add(key)
            inputs = node.data_inputs()
            if index >= len(inputs):
                continue  # a missing input fails when the graph is loaded
            leaves = self._trace(scope, inputs[index])
            self._judge_leaves(origin, leaves, via)
            for arg in sorted(leaves.args):
                position = scope.args.index(arg)
                for caller_scope, call, first_arg in self.callers.get(scope.function, ()):
                    where = f" (passed by {call.op} node {call.name!r} in {caller_scope.label})"
                    queue.append((caller_scope, call, first_arg + position, origin, where))
                for ref in self.foreign.get(scope.function, ())[:1]:
                    reason = f"its path is argument {arg!r} of {scope.label}, which {ref.op} node {ref.name!r} supplies"
                    origin.flag(Severity.MEDIUM, reason)

    def _judge_leaves(self, origin: _Origin, leaves: _Leaves, via: str) -> None:
        escaping = [value for value in leaves.constants if _escapes(value)]
        if escaping:
            origin.constants.extend(escaping[:4])
            origin.flag(
                origin.rule.severity, f"its path is built from {escaping[0]!r}{via}, outside the model's folder"
            )
        elif not leaves.args and not leaves.fed and any(leaves.constants):
            origin.constants.extend(value for value in leaves.constants[:4] if value not in origin.constants)
            origin.flag(
                Severity.MEDIUM, f"the file fixes its path with constants{via} instead of taking it from the caller"
            )
        if leaves.opaque:
            origin.flag(
                Severity.MEDIUM, f"its path comes from {leaves.opaque[0]}{via}, which the scanner cannot resolve"
            )

    def _trace(self, scope: _Scope, start: str) -> _Leaves:
        index = self._index(scope)
        leaves = _Leaves()
        stack = [start]
        seen: set[str] = set()
        while stack:
            name = _node_name(stack.pop())
            if name in seen:
                continue
            seen.add(name)
            if len(seen) > MAX_TRACED_NODES:
                leaves.opaque.append(f"a computation of more than {MAX_TRACED_NODES} nodes")
                break
            if name in scope.args:
                leaves.args.add(name)
                continue
            node = index.get(name)
            if node is None:
                leaves.opaque.append(f"{name!r}, which is not a node of {scope.label}")
            elif name in scope.fed or node.op in FED_OPS:
                leaves.fed = True
            elif node.op == "Const":
                strings = _const_strings(node)
                if strings is None:
                    leaves.opaque.append(f"constant {name!r}, too large to judge")
                else:
                    leaves.constants.extend(strings)
            elif node.op in VARIABLE_OPS:
                assigned = scope.assigns.get(name)
                if assigned:
                    stack.extend(assigned)
                else:
                    leaves.opaque.append(f"variable {name!r}, whose value comes from the checkpoint")
            else:
                if node.op == "StringJoin":
                    leaves.constants.extend(node.attrs.get("separator", _NO_ATTR).strings)
                leaves.fed |= node.op in DEFAULTED_OPS  # its default, followed below, runs when nothing is fed
                inputs = node.data_inputs()
                if not inputs:
                    leaves.opaque.append(f"{node.op} node {name!r}")
                stack.extend(inputs)
        return leaves

    def _index(self, scope: _Scope) -> dict[str, _Node]:
        if scope.index is None:
            index: dict[str, _Node] = {}
            for node in scope.nodes():
                self.ctx.budget.check_time()
                self.indexed += 1
                if self.indexed > MAX_INDEXED_NODES:
                    raise LimitExceeded(f"more than {MAX_INDEXED_NODES} graph nodes to follow")
                index[node.name] = node
                if node.op in ASSIGN_OPS and len(node.data_inputs()) >= 2:
                    handle, value = node.data_inputs()[:2]
                    scope.assigns.setdefault(_node_name(handle), []).append(value)
            scope.index = index
        return scope.index

    # --- findings ---

    def _report(self) -> None:
        for op, hits in self.hits.items():
            rule = op_rules()[op]
            node = hits.node
            message = f"{op}: {rule.why} ({hits.count} node(s), first {node.name!r} in {hits.scope.label})"
            evidence = {"op": op, "node": node.name, "where": hits.scope.label, "nodes": str(hits.count)}
            if hits.value:
                message += f"; {rule.attr} = {hits.value!r}"
                evidence[rule.attr] = hits.value
            self._finding(node.offset, message, evidence, rule)
        for origin in self.origins:
            if origin.severity is None:
                continue
            node, rule = origin.node, origin.rule
            message = f"{node.op} node {node.name!r} in {origin.scope.label} {rule.why}, and " + "; ".join(
                origin.reasons
            )
            evidence = {"op": node.op, "node": node.name, "where": origin.scope.label}
            if origin.constants:
                evidence["path_constants"] = ", ".join(repr(value) for value in origin.constants[:4])
            self._finding(node.offset, message, evidence, rule, origin.severity)

    def _finding(
        self, offset: int, message: str, evidence: dict[str, str], rule: OpRule, severity: Severity | None = None
    ) -> None:
        finding = TENSORFLOW_DANGEROUS_OP.finding(
            self.item.location.at(offset),
            message,
            evidence,
            severity=rule.severity if severity is None else severity,
            capability=rule.capability,
        )
        self.ctx.report(finding)


def _starts_with_any(value: str, prefixes: tuple[str, ...]) -> bool:
    return bool(prefixes) and value.startswith(prefixes)


def _escapes(path: str) -> bool:
    """A path constant that leaves the folder the caller chose: absolute, '..', a home or URL."""
    return escapes_extraction(path) or path.startswith("~") or "://" in path


# --- Keras SavedModel metadata ---


def _keras_metadata(ctx: ScanContext, item: Item, msg: Message) -> None:
    """SavedMetadata: nodes 1 (SavedObject: node_path 3, identifier 4, metadata 5, a JSON Keras config)."""
    reported: set[tuple[str, str]] = set()
    for node in _child_of(msg, 1):
        node_path = ""
        metadata = b""
        for field in node.fields():
            if field.wire == LEN and field.number == 3:
                node_path = node.text(field, MAX_STRING)
            elif field.wire == LEN and field.number == 5:
                if field.value > keras_config.MAX_CONFIG_BYTES:
                    raise LimitExceeded(f"Keras metadata of more than {keras_config.MAX_CONFIG_BYTES} bytes")
                metadata = node.bytes(field, keras_config.MAX_CONFIG_BYTES)
        if not metadata:
            continue
        # A layer's config appears in its own node and again in its model's node: report each finding once.
        before = len(ctx.result.findings)
        _judge_metadata(ctx, item, node.start, node_path or "(unnamed)", metadata)
        found = ctx.result.findings[before:]
        del ctx.result.findings[before:]
        for finding in found:
            if (finding.rule.id, finding.message) not in reported:
                reported.add((finding.rule.id, finding.message))
                ctx.report(finding)


def _judge_metadata(ctx: ScanContext, item: Item, offset: int, node_path: str, metadata: bytes) -> None:
    try:
        config = json.loads(metadata, object_hook=_tf_keras_decode)
    except (ValueError, RecursionError) as exc:
        message = f"Keras metadata of node {node_path} is not JSON Keras can read ({type(exc).__name__})"
        ctx.report(rules.MALFORMED.finding(item.location.at(offset), message, {"node_path": node_path}))
        return
    keras_config.judge(ctx, item, config, f"keras_metadata.pb node {node_path}")


def _tf_keras_decode(obj: dict) -> object:
    """What tf.keras' json_utils.decode does before Keras sees the config: tuples and TypeSpecs become data."""
    class_name = obj.get("class_name")
    if class_name == "__tuple__" and isinstance(obj.get("items"), list):
        return obj["items"]
    if class_name == "TypeSpec" and isinstance(obj.get("type_spec"), str):
        return {"type_spec": obj["type_spec"], "serialized": obj.get("serialized")}  # looked up in TF's registry
    return obj


FORMATS = (
    Format("tensorflow", "code", "TensorFlow protobuf", handler=analyze, detect=detect, order=110, extensions=(".pb",)),
    Format("tensorflow-savedmodel", "code", "TensorFlow SavedModel"),
    Format("tensorflow-graphdef", "code", "TensorFlow GraphDef"),
    Format("keras-metadata", "code", "Keras SavedModel metadata"),
    Format("tensorflow-metadata", "other", "TensorFlow SavedModel fingerprint or Hub module marker"),
)
