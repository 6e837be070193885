"""ONNX models: a protobuf graph of operators, with weights inline or in external data files.

Standard operators run on the runtime's own kernels; an operator from another domain needs a custom
operator library, native code that the loading process registers. A tensor's external data names a
file that the loader reads into the model: an absolute location or one with '..' reads any file on
the machine (CVE-2022-25882, CVE-2024-27318). Sizes must agree with the data that holds them.
Large payloads are stepped over by their length prefix, never read.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from .. import rules
from ..context import Item, ScanContext
from ..core import AttackClass, Capability, Rule, Severity
from ..data import load_toml
from ..limits import LimitExceeded
from ..parsers import protobuf
from ..parsers.protobuf import I32, I64, LEN, VARINT, DecodeError, Field, Message
from ..registry import Format
from ..sources import escapes_extraction

ONNX_CUSTOM_OPERATOR = Rule(
    id="MLO160",
    name="onnx-custom-operator",
    title="ONNX graph uses operators from a non-standard domain",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "Operators outside the standard ONNX domains are implemented by custom operator libraries, that is "
        "native code that the runtime must load to execute the graph. The model is only as safe as that "
        "library."
    ),
    remediation=(
        "Verify that the domain belongs to a runtime you trust (for example com.microsoft for ONNX Runtime "
        "contrib ops) and never load custom op libraries that arrive with the model."
    ),
    summary=(
        "An ONNX operator from a non-standard domain needs a native custom-op library (ONNX Runtime's own domains: "
        "low)."
    ),
)
ONNX_EXTERNAL_DATA_ESCAPE = Rule(
    id="MLO161",
    name="onnx-external-data-escape",
    title="ONNX external data points outside the model folder",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.FILE_ACCESS,
    description=(
        "A tensor's external_data location is absolute or climbs out of the model folder with '..'. Loading "
        "the model reads that file into the tensor, leaking local files (keys, credentials) into model "
        "outputs, or fails in ways an attacker controls."
    ),
    remediation="Do not load the model. External data files must sit next to the model, with relative names.",
    summary="An ONNX tensor's external data is absolute or climbs out of the model folder.",
)


MAX_IR_VERSION = 64  # one IR version per few ONNX releases (onnx 1.18 writes 11): far beyond is not ONNX
MAX_FUNCTIONS = 100_000  # exporters write tens to hundreds
MAX_OPERATORS = 10_000  # distinct (domain, operator) pairs outside the standard domains
MAX_COUNTED_PAYLOAD = 64 << 20  # varint-packed arrays longer than this are not re-read to count values
INT64_MAX = (1 << 63) - 1
HEAD_BYTES = 64 * 1024  # what sniffing saw: detection is repeated on it to tell a model from a tensor file

# ModelProto and GraphProto field numbers with their wire types (onnx/onnx.proto).
_MODEL_FIELDS = {
    1: VARINT,
    2: LEN,
    3: LEN,
    4: LEN,
    5: VARINT,
    6: LEN,
    7: LEN,
    8: LEN,
    14: LEN,
    20: LEN,
    25: LEN,
    26: LEN,
}
_MODEL_STRINGS = (2, 3, 4, 6)
_GRAPH_FIELDS = {1, 2, 5, 10, 11, 12, 13, 14, 15, 16}
# TensorProto field numbers with the wire types they may use (repeated numbers: packed or not).
_TENSOR_FIELDS = {1: (VARINT, LEN), 2: (VARINT,), 4: (LEN, I32), 5: (LEN, VARINT), 7: (LEN, VARINT), 10: (LEN, I64)}
_TENSOR_FIELDS |= {11: (LEN, VARINT), 14: (VARINT,)} | {number: (LEN,) for number in (3, 6, 8, 9, 12, 13, 16)}
MAX_DATA_TYPE = 28

# TensorProto.DataType -> bits per element in raw_data (types with another packing are not size-checked).
_BITS = {1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64, 14: 64, 15: 128}
_BITS |= {16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8, 25: 2, 26: 2}
# TensorProto.DataType -> (typed field that holds its values, values per element)
_TYPED = {1: (4, 1), 14: (4, 2), 11: (10, 1), 15: (10, 2), 7: (7, 1), 12: (11, 1), 13: (11, 1), 8: (6, 1)}
_TYPED |= {code: (5, 1) for code in (2, 3, 4, 5, 6, 9, 10, 16, 17, 18, 19, 20, 24)}
# Typed field -> bytes per packed value (0: varints)
_PACKED_WIDTH = {4: 4, 5: 0, 7: 0, 10: 8, 11: 0}
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_EXTERNAL_KEYS = ("location", "offset", "length", "checksum")


class Domains(NamedTuple):
    standard: frozenset[str]
    runtime: dict[str, tuple[Severity, str]]


@functools.cache
def domains() -> Domains:
    table = load_toml("onnx_domains.toml")
    runtime = {name: (Severity.parse(spec["severity"]), spec["why"]) for name, spec in table["runtime"].items()}
    return Domains(frozenset(table["standard"]), runtime)


def detect(head: bytes, name: str) -> bool:
    return _is_model(head, name) or _is_tensor_file(head, name)


def _is_model(head: bytes, name: str) -> bool:
    """A ModelProto: an IR version, then known fields; without the .onnx name, a graph must follow."""
    fields, clean = protobuf.prefix_fields(head)
    if not clean or not fields:
        return False
    for entry in fields:
        field = entry.field
        if _MODEL_FIELDS.get(field.number) != field.wire:
            return False
        if field.number in _MODEL_STRINGS and entry.complete and not _is_utf8(head, field):
            return False
    ir_version = next((entry.field for entry in fields if entry.field.number == 1), None)
    if ir_version is None or not 1 <= ir_version.value <= MAX_IR_VERSION:
        return False
    graph = next((entry.field for entry in fields if entry.field.number == 7), None)
    if name.lower().endswith(".onnx"):
        return graph is not None or any(entry.field.number in (8, 25) for entry in fields) or not fields[-1].complete
    return fields[0].field.number == 1 and graph is not None and _looks_like_graph(head, graph)


def _is_tensor_file(head: bytes, name: str) -> bool:
    """A serialized TensorProto named .pb, as ONNX test data sets and the model zoo ship them."""
    if not name.lower().endswith(".pb"):
        return False
    fields, clean = protobuf.prefix_fields(head)
    if not clean or not fields:
        return False
    if any(entry.field.wire not in _TENSOR_FIELDS.get(entry.field.number, ()) for entry in fields):
        return False
    data_type = next((entry.field for entry in fields if entry.field.number == 2), None)
    return data_type is not None and 1 <= data_type.value <= MAX_DATA_TYPE


def _is_utf8(head: bytes, field: Field) -> bool:
    try:
        head[field.offset : field.offset + field.value].decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _looks_like_graph(head: bytes, graph: Field) -> bool:
    fields, clean = protobuf.prefix_fields(head[graph.offset : graph.offset + graph.value], limit=8)
    return clean and bool(fields) and all(e.field.number in _GRAPH_FIELDS and e.field.wire == LEN for e in fields)


def analyze(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "onnx")
    walker = _Walker(ctx, item)
    item.stream.seek(0)
    head = item.stream.read(HEAD_BYTES)
    try:
        root = Message.load(item.stream, _size(item), ctx.budget.check_time)
        if _is_model(head, item.name) or not _is_tensor_file(head, item.name):
            walker.model(root)
        else:
            walker.tensor(root, "the tensor file")
    except DecodeError as exc:
        walker.report(
            rules.MALFORMED,
            exc.offset,
            f"ONNX protobuf is malformed: {exc.reason}; onnx and onnxruntime refuse the file",
            {"offset": str(exc.offset)},
        )
    walker.report_custom_operators()


def _size(item: Item) -> int:
    if item.size is not None:
        return item.size
    return item.stream.seek(0, 2)


class _Use:
    """Nodes that call one (domain, operator) pair."""

    __slots__ = ("count", "node", "offset", "where")

    def __init__(self, node: str, where: str, offset: int) -> None:
        self.count = 0
        self.node = node
        self.where = where
        self.offset = offset


class _Tensor:
    """What a TensorProto says about its size and where its data lives."""

    def __init__(self) -> None:
        self.name = ""
        self.shown_dims: list[int] = []
        self.rank = 0
        self.elements: int | None = 1  # None once a dimension is negative; capped just above int64
        self.data_type = 0
        self.raw_bytes: int | None = None
        self.typed: dict[int, int | None] = {}  # typed field -> values (None: too long to count)
        self.external: dict[str, str] = {}
        self.location = 0
        self.segmented = False

    def add_dim(self, dim: int) -> None:
        self.rank += 1
        if len(self.shown_dims) < 8:
            self.shown_dims.append(dim)
        if dim < 0:
            self.elements = None
        elif self.elements is not None and self.elements <= INT64_MAX:
            self.elements *= dim

    def evidence(self, where: str) -> dict[str, str]:
        shown = ", ".join(str(dim) for dim in self.shown_dims) + (", ..." if self.rank > 8 else "")
        return {"tensor": self.name, "dims": f"[{shown}]", "data_type": str(self.data_type), "where": where}


class _Walker:
    """Walks a ModelProto: every graph, subgraph, function and tensor, reporting as it goes."""

    def __init__(self, ctx: ScanContext, item: Item) -> None:
        self.ctx = ctx
        self.item = item
        self.uses: dict[tuple[str, str], _Use] = {}
        self.local_functions: set[tuple[str, str]] = set()

    def report(
        self, rule: Rule, offset: int, message: str, evidence: dict[str, str], severity: Severity | None = None
    ) -> None:
        self.ctx.report(rule.finding(self.item.location.at(offset), message, evidence, severity=severity))

    # --- the model and its graphs ---

    def model(self, msg: Message) -> None:
        has_graph = False
        training = 0
        for field in msg.fields():
            if field.wire != LEN:
                continue
            if field.number == 7:
                has_graph = True
                self.graph(msg.child(field), "graph")
            elif field.number == 25:
                self.function(msg.child(field))
            elif field.number == 20:
                self.training_info(msg.child(field), f"training_info[{training}]")
                training += 1
        if not has_graph:
            self.report(rules.MALFORMED, 0, "ONNX model has no graph; onnx and onnxruntime refuse it", {})

    def training_info(self, msg: Message, where: str) -> None:
        for field in msg.fields():
            if field.wire == LEN and field.number in (1, 2):
                self.graph(msg.child(field), f"{where}.{'initialization' if field.number == 1 else 'algorithm'}")

    def function(self, msg: Message) -> None:
        """FunctionProto: name 1, domain 10 (written after the nodes), node 7."""
        if len(self.local_functions) >= MAX_FUNCTIONS:
            raise LimitExceeded(f"more than {MAX_FUNCTIONS} model-local functions")
        name = domain = ""
        for field in msg.fields():
            if field.wire == LEN and field.number == 1:
                name = msg.text(field)
            elif field.wire == LEN and field.number == 10:
                domain = msg.text(field)
        self.local_functions.add((domain, name))
        for field in msg.fields():
            self.ctx.budget.check_time()
            if field.wire == LEN and field.number == 7:
                self.node(msg.child(field), f"function {domain}::{name}")

    def graph(self, msg: Message, where: str) -> None:
        for field in msg.fields():
            self.ctx.budget.check_time()
            if field.wire != LEN:
                continue
            if field.number == 1:
                self.node(msg.child(field), where)
            elif field.number == 5:
                self.tensor(msg.child(field), f"{where} initializer")
            elif field.number == 15:
                self.sparse(msg.child(field), f"{where} sparse initializer")

    def node(self, msg: Message, where: str) -> None:
        op = domain = name = ""
        for field in msg.fields():
            if field.wire != LEN:
                continue
            if field.number == 4:
                op = msg.text(field)
            elif field.number == 7:
                domain = msg.text(field)
            elif field.number == 3:
                name = msg.text(field)
            elif field.number == 5:
                self.attribute(msg.child(field), f"{where} > node {name or op!r}")
        if domain not in domains().standard:
            use = self.uses.get((domain, op))
            if use is None:
                if len(self.uses) >= MAX_OPERATORS:
                    raise LimitExceeded(f"more than {MAX_OPERATORS} distinct non-standard operators")
                use = self.uses[(domain, op)] = _Use(name, where, msg.start)
            use.count += 1

    def attribute(self, msg: Message, where: str) -> None:
        attr = ""
        for field in msg.fields():
            if field.wire != LEN:
                continue
            if field.number == 1:
                attr = msg.text(field)
            elif field.number in (6, 11):  # g, graphs: If/Loop/Scan bodies
                self.graph(msg.child(field), f"{where}.{attr}")
            elif field.number in (5, 10):  # t, tensors
                self.tensor(msg.child(field), f"{where} attribute {attr!r}")
            elif field.number in (22, 23):  # sparse_tensor, sparse_tensors
                self.sparse(msg.child(field), f"{where} attribute {attr!r}")

    def report_custom_operators(self) -> None:
        runtime = domains().runtime
        for (domain, op), use in self.uses.items():
            if (domain, op) in self.local_functions:
                continue  # a function defined in the model itself; its body is checked node by node
            evidence = {"domain": domain, "op_type": op, "node": use.node, "nodes": str(use.count), "where": use.where}
            if domain in runtime:
                severity, why = runtime[domain]
                message = f"operator {domain}::{op} ({use.count} node(s), first {use.node!r} in {use.where}): {why}"
                self.report(ONNX_CUSTOM_OPERATOR, use.offset, message, evidence, severity=severity)
                continue
            message = (
                f"operator {domain}::{op} ({use.count} node(s), first {use.node!r} in {use.where}) comes from a "
                "non-standard domain: running the model needs a custom operator library, that is native code"
            )
            self.report(ONNX_CUSTOM_OPERATOR, use.offset, message, evidence)

    # --- tensors ---

    def sparse(self, msg: Message, where: str) -> None:
        shape = _Tensor()
        for field in msg.fields():
            if field.number == 3:
                for value in msg.varints(field):
                    shape.add_dim(protobuf.as_int64(value))
            elif field.wire == LEN and field.number in (1, 2):
                self.tensor(msg.child(field), f"{where} {'values' if field.number == 1 else 'indices'}")
        self.check_count(shape, msg.start, where)

    def tensor(self, msg: Message, where: str) -> None:
        tensor = _Tensor()
        for field in msg.fields():
            number = field.number
            if number == 1:
                for value in msg.varints(field):
                    tensor.add_dim(protobuf.as_int64(value))
            elif number == 2 and field.wire == VARINT:
                tensor.data_type = field.value
            elif number == 3:
                tensor.segmented = True
            elif number == 8 and field.wire == LEN:
                tensor.name = msg.text(field)
            elif number == 9 and field.wire == LEN:
                tensor.raw_bytes = field.value
            elif number == 6 and field.wire == LEN:
                tensor.typed[6] = (tensor.typed.get(6) or 0) + 1
            elif number in _PACKED_WIDTH:
                self.count_values(msg, field, tensor)
            elif number == 13 and field.wire == LEN:
                entry_key, entry_value = _entry(msg.child(field))
                if entry_key in _EXTERNAL_KEYS:
                    tensor.external[entry_key] = entry_value
            elif number == 14 and field.wire == VARINT:
                tensor.location = field.value
        elements = self.check_count(tensor, msg.start, where)
        if elements is None:
            return
        if tensor.location == _EXTERNAL or tensor.external:
            self.check_external(tensor, elements, msg.start, where)
        elif not tensor.segmented:
            self.check_embedded(tensor, elements, msg.start, where)

    def count_values(self, msg: Message, field: Field, tensor: _Tensor) -> None:
        known = tensor.typed.get(field.number, 0)
        if known is None:
            return
        if field.wire != LEN:
            tensor.typed[field.number] = known + 1
        elif _PACKED_WIDTH[field.number] == 0 and field.value > MAX_COUNTED_PAYLOAD:
            tensor.typed[field.number] = None
        else:
            tensor.typed[field.number] = known + msg.packed_count(field, _PACKED_WIDTH[field.number])

    def check_count(self, tensor: _Tensor, offset: int, where: str) -> int | None:
        elements = tensor.elements
        if elements is None:
            message = f"tensor {tensor.name!r} in {where} has a negative dimension"
        elif elements > INT64_MAX:
            message = f"tensor {tensor.name!r} in {where} claims more elements than a 64-bit count can hold"
        else:
            return elements
        self.report(rules.MALFORMED, offset, message, tensor.evidence(where))
        return None

    def check_embedded(self, tensor: _Tensor, elements: int, offset: int, where: str) -> None:
        bits = _BITS.get(tensor.data_type)
        if tensor.raw_bytes is not None:
            if bits is not None and tensor.raw_bytes != (elements * bits + 7) // 8:
                message = (
                    f"tensor {tensor.name!r} in {where}: its dims need {(elements * bits + 7) // 8} bytes, "
                    f"raw_data holds {tensor.raw_bytes}"
                )
                self.report(rules.MALFORMED, offset, message, tensor.evidence(where))
            return
        if tensor.data_type not in _TYPED:
            return
        typed_field, per_element = _TYPED[tensor.data_type]
        values = tensor.typed.get(typed_field)
        if values and values != elements * per_element:
            message = (
                f"tensor {tensor.name!r} in {where}: its dims need {elements * per_element} values, it holds {values}"
            )
            self.report(rules.MALFORMED, offset, message, tensor.evidence(where))

    def check_external(self, tensor: _Tensor, elements: int, offset: int, where: str) -> None:
        evidence = tensor.evidence(where) | {f"external_{key}": value for key, value in tensor.external.items()}
        location = tensor.external.get("location")
        if location is None:
            message = f"tensor {tensor.name!r} in {where} is stored externally but names no location"
            self.report(rules.MALFORMED, offset, message, evidence)
        elif escapes_extraction(location):
            message = (
                f"tensor {tensor.name!r} in {where} reads its data from {location!r}, outside the model's folder: "
                "loading the model reads that file"
            )
            self.report(ONNX_EXTERNAL_DATA_ESCAPE, offset, message, evidence)
        for key in ("offset", "length"):
            value = tensor.external.get(key)
            if value is not None and not (value.isascii() and value.isdigit()):
                message = f"tensor {tensor.name!r} in {where}: external data {key} {value!r} is not a byte count"
                self.report(rules.MALFORMED, offset, message, evidence)
                return
        bits = _BITS.get(tensor.data_type)
        length = tensor.external.get("length")
        if length is not None and bits is not None and int(length) != (elements * bits + 7) // 8:
            message = (
                f"tensor {tensor.name!r} in {where}: its dims need {(elements * bits + 7) // 8} bytes, "
                f"the external data length says {length}"
            )
            self.report(rules.MALFORMED, offset, message, evidence)


def _entry(msg: Message) -> tuple[str, str]:
    key = value = ""
    for field in msg.fields():
        if field.wire == LEN and field.number == 1:
            key = msg.text(field)
        elif field.wire == LEN and field.number == 2:
            value = msg.text(field)
    return key, value


FORMATS = (Format("onnx", "safe", "ONNX", handler=analyze, detect=detect, order=100, extensions=(".onnx",)),)
