"""TensorFlow Lite models: a FlatBuffer (file identifier ``TFL3``) of operators, subgraphs and buffers.

Built-in operators are plain math, and custom ones run only with kernels the application
registered. The exception is the Flex delegate: a ``Flex...`` custom operator carries a TensorFlow
NodeDef and runs that TensorFlow op, including ops that read or write files or call Python. The
FlatBuffer's offsets are checked as they are followed; a reader that trusts them reads out of bounds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from .. import rules
from ..context import Item, ScanContext
from ..core import AttackClass, Capability, Rule, Severity
from ..limits import LimitExceeded
from ..parsers.flatbuffers import RandomReader, Table, Vector, root_table
from ..parsers.forward_reader import DecodeError
from ..registry import Format
from . import tensorflow

TFLITE_CUSTOM_OPERATOR = Rule(
    id="MLO162",
    name="tflite-custom-operator",
    title="TFLite model needs custom operators",
    severity=Severity.INFO,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "Custom operators are not part of TensorFlow Lite: the interpreter runs them only with native kernels "
        "the application registered, so the model cannot bring its own code. Flex operators are the exception "
        "worth knowing: the Flex delegate runs the TensorFlow op named in each operator's NodeDef; those that "
        "reach files, the network or Python are reported as tensorflow-dangerous-op."
    ),
    remediation=(
        "Check that each listed operator is one your runtime provides on purpose (for example "
        "TFLite_Detection_PostProcess), and link the Flex delegate only into applications that need it."
    ),
    summary="The TFLite model needs custom operators from the application's resolver.",
)


IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
CUSTOM = 32  # BuiltinOperator.CUSTOM
FLEX_PREFIX = "Flex"
MAX_OPERAND_LIST = 1 << 16  # inputs or outputs of one operator
MAX_TABLES = 1 << 22  # tensors, operators or buffers in one list; real models have thousands
MAX_OPERATOR_CODES = 1 << 16
SHOWN = 20

# Field indices in the TFLite schema (tensorflow/compiler/mlir/lite/schema/schema.fbs).
MODEL_VERSION, MODEL_OPERATOR_CODES, MODEL_SUBGRAPHS, MODEL_BUFFERS = 0, 1, 2, 4
MODEL_METADATA, MODEL_SIGNATURE_DEFS = 6, 7
OPCODE_DEPRECATED_BUILTIN, OPCODE_CUSTOM_CODE, OPCODE_BUILTIN = 0, 1, 3
SUBGRAPH_TENSORS, SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS, SUBGRAPH_OPERATORS = 0, 1, 2, 3
TENSOR_SHAPE, TENSOR_BUFFER = 0, 2
OPERATOR_OPCODE, OPERATOR_INPUTS, OPERATOR_OUTPUTS, OPERATOR_CUSTOM_OPTIONS = 0, 1, 2, 5
OPERATOR_LARGE_OPTIONS_OFFSET, OPERATOR_LARGE_OPTIONS_SIZE = 9, 10
BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = 0, 1, 2
METADATA_BUFFER = 1
SIGNATURE_SUBGRAPH = 4

# FlexBuffers types (flatbuffers/flexbuffers.h) used by Flex custom options: a vector of two strings.
FBT_STRING = 5
FBT_VECTOR = 10


def detect(head: bytes, name: str) -> bool:
    return head[4:8] == IDENTIFIER  # the FlatBuffer file identifier follows the root offset


def analyze(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "tflite")
    size = item.size if item.size is not None else item.stream.seek(0, 2)
    model = _Model(ctx, item, RandomReader(item.stream, size))
    try:
        model.check()
    except DecodeError as exc:
        problem = "truncated" if exc.truncated else "malformed"
        ctx.report(rules.MALFORMED.finding(item.location.at(exc.offset), f"TFLite FlatBuffer {problem}: {exc.message}"))
        return
    model.report_custom_operators()


class _Model:
    def __init__(self, ctx: ScanContext, item: Item, reader: RandomReader) -> None:
        self.ctx = ctx
        self.item = item
        self.reader = reader
        self.opcodes: list[tuple[int, str | None]] = []  # (builtin code, custom code)
        self.buffer_count = 0
        self.custom_used: Counter[str] = Counter()

    def check(self) -> None:
        model = root_table(self.reader)
        version = model.scalar(MODEL_VERSION, "<I")
        if version != SCHEMA_VERSION:
            raise DecodeError(f"schema version {version}; TFLite reads version {SCHEMA_VERSION}", model.position)
        opcodes = model.vector(MODEL_OPERATOR_CODES, 4)
        if opcodes is not None and opcodes.count > MAX_OPERATOR_CODES:
            raise LimitExceeded(f"{opcodes.count} TFLite operator codes")
        self.opcodes = [self._opcode(table) for table in self._each(opcodes)]
        buffers = model.vector(MODEL_BUFFERS, 4)
        self.buffer_count = buffers.count if buffers is not None else 0
        for index, buffer in enumerate(self._each(buffers)):
            self._check_buffer(index, buffer)
        subgraphs = model.vector(MODEL_SUBGRAPHS, 4)
        for index, subgraph in enumerate(self._each(subgraphs)):
            self._check_subgraph(index, subgraph)
        for metadata in self._each(model.vector(MODEL_METADATA, 4)):
            _check_index(metadata.scalar(METADATA_BUFFER, "<I"), self.buffer_count, "metadata buffer", metadata)
        subgraph_count = subgraphs.count if subgraphs is not None else 0
        for signature in self._each(model.vector(MODEL_SIGNATURE_DEFS, 4)):
            _check_index(signature.scalar(SIGNATURE_SUBGRAPH, "<I"), subgraph_count, "signature subgraph", signature)

    def _each(self, vector: Vector | None) -> Iterator[Table]:
        """The tables of a vector, bounded in number and checked against the time budget."""
        if vector is None:
            return
        if vector.count > MAX_TABLES:
            raise LimitExceeded(f"a TFLite list of {vector.count} tables")
        for index, table in enumerate(vector.tables()):
            if index % 1024 == 0:
                self.ctx.budget.check_time()
            yield table

    def _opcode(self, table: Table) -> tuple[int, str | None]:
        # TFLite takes the larger of the two fields (GetBuiltinCode): old files only fill the first.
        code = max(table.scalar(OPCODE_DEPRECATED_BUILTIN, "<b"), table.scalar(OPCODE_BUILTIN, "<i"))
        custom = table.string(OPCODE_CUSTOM_CODE)
        if code == CUSTOM and not custom:
            raise DecodeError("a custom operator code has no name", table.position)
        return code, custom if code == CUSTOM else None

    def _check_buffer(self, index: int, buffer: Table) -> None:
        buffer.vector(BUFFER_DATA, 1)
        offset, size = buffer.scalar(BUFFER_OFFSET, "<Q"), buffer.scalar(BUFFER_SIZE, "<Q")
        if offset > 1 and offset + size > self.reader.size:  # offset 0 or 1: the data is not outside
            raise DecodeError(f"buffer {index} claims bytes {offset}..{offset + size} past the end", buffer.position)

    def _check_subgraph(self, number: int, subgraph: Table) -> None:
        tensors = subgraph.vector(SUBGRAPH_TENSORS, 4)
        tensor_count = tensors.count if tensors is not None else 0
        for tensor in self._each(tensors):
            tensor.vector(TENSOR_SHAPE, 4)
            _check_index(tensor.scalar(TENSOR_BUFFER, "<I"), self.buffer_count, "tensor buffer", tensor)
        for field in (SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS):
            _check_operands(subgraph.vector(field, 4), tensor_count, subgraph, optional=False)
        for index, operator in enumerate(self._each(subgraph.vector(SUBGRAPH_OPERATORS, 4))):
            opcode = operator.scalar(OPERATOR_OPCODE, "<I")
            _check_index(opcode, len(self.opcodes), "operator code", operator)
            for field in (OPERATOR_INPUTS, OPERATOR_OUTPUTS):
                _check_operands(operator.vector(field, 4), tensor_count, operator, optional=True)
            self._check_large_options(operator)
            custom = self.opcodes[opcode][1]
            if custom is not None:
                self.custom_used[custom] += 1
                if custom.startswith(FLEX_PREFIX):
                    self._check_flex(custom, operator, number, index)

    def _check_large_options(self, operator: Table) -> None:
        offset = operator.scalar(OPERATOR_LARGE_OPTIONS_OFFSET, "<Q")
        size = operator.scalar(OPERATOR_LARGE_OPTIONS_SIZE, "<Q")
        if offset > 1 and offset + size > self.reader.size:
            raise DecodeError(f"custom options claim bytes {offset}..{offset + size} past the end", operator.position)

    def _check_flex(self, custom: str, operator: Table, subgraph: int, index: int) -> None:
        options = operator.vector(OPERATOR_CUSTOM_OPTIONS, 1)
        large = operator.scalar(OPERATOR_LARGE_OPTIONS_OFFSET, "<Q")
        if options is None and large > 1:  # models over 2 GB keep options after the FlatBuffer
            options = Vector(self.reader, large, operator.scalar(OPERATOR_LARGE_OPTIONS_SIZE, "<Q"), 1)
        if options is None:
            raise DecodeError(f"Flex operator {custom} has no NodeDef", operator.position)
        op = _flex_tensorflow_op(self.reader, options)
        where = self.item.location.at(options.start)
        evidence = {"custom_code": custom, "tensorflow_op": op, "subgraph": str(subgraph), "operator": str(index)}
        # The Flex delegate runs the TensorFlow kernel itself. A .tflite has no saver functions that
        # feed paths from the caller, so every op of the TensorFlow list counts, at least as HIGH.
        rule = tensorflow.op_rules().get(op)
        if rule is not None:
            message = f"Flex operator runs TensorFlow op {op}, which {rule.why}"
            severity = max(rule.severity, Severity.HIGH)
            self.ctx.report(
                tensorflow.TENSORFLOW_DANGEROUS_OP.finding(
                    where, message, evidence, severity=severity, capability=rule.capability
                ),
                key=(custom, op),  # one finding per Flex operator and TensorFlow op, however many nodes use it
            )
        elif op != custom[len(FLEX_PREFIX) :]:
            message = f"Flex operator {custom} carries a NodeDef for a different TensorFlow op, {op}"
            self.ctx.report(rules.MALFORMED.finding(where, message, evidence), key=(custom, op))

    def report_custom_operators(self) -> None:
        if not self.custom_used:
            return
        names = sorted(self.custom_used)
        flex = [name for name in names if name.startswith(FLEX_PREFIX)]
        evidence = {"custom_ops": ", ".join(f"{name} x{self.custom_used[name]}" for name in names[:SHOWN])}
        if flex:
            evidence["flex_ops"] = str(len(flex))
        shown = ", ".join(names[:5])
        message = f"TFLite model needs {len(names)} custom operator(s) from the application's op resolver: {shown}"
        self.ctx.report(TFLITE_CUSTOM_OPERATOR.finding(self.item.location, message, evidence))


def _check_index(value: int, count: int, what: str, table: Table) -> None:
    if value >= count:
        raise DecodeError(f"{what} index {value} is out of range (0..{count - 1})", table.position)


def _check_operands(vector: Vector | None, tensors: int, table: Table, optional: bool) -> None:
    if vector is None:
        return
    if vector.count > MAX_OPERAND_LIST:
        raise LimitExceeded(f"an operand list of {vector.count} tensors")
    lowest = -1 if optional else 0  # -1 marks an omitted optional input
    for value in vector.ints():
        if not lowest <= value < tensors:
            raise DecodeError(f"tensor index {value} is out of range (0..{tensors - 1})", vector.start)


def _flex_tensorflow_op(reader: RandomReader, options: Vector) -> str:
    """The op of the NodeDef in a Flex operator's custom options: FlexBuffer vector [name, NodeDef bytes]."""
    start, end = options.start, options.start + options.count
    if options.count < 3:
        raise DecodeError("Flex custom options are too short for a FlexBuffer", start)
    root_width, root_type = reader.read(end - 1, 1)[0], reader.read(end - 2, 1)[0]
    if root_width not in (1, 2, 4, 8) or root_type >> 2 != FBT_VECTOR:
        raise DecodeError("Flex custom options are not a FlexBuffer vector", start)
    width = 1 << (root_type & 3)
    vector = _indirect(reader, end - 2 - root_width, root_width, start, end)
    length = _uint(reader, vector - width, width, start, end)
    if length < 2:
        raise DecodeError("Flex custom options hold no NodeDef", start)
    node_type = _uint(reader, vector + length * width + 1, 1, start, end)
    if node_type >> 2 != FBT_STRING:
        raise DecodeError("the Flex NodeDef is not a string", start)
    node_def = _indirect(reader, vector + width, width, start, end)
    string_width = 1 << (node_type & 3)
    node_length = _uint(reader, node_def - string_width, string_width, start, end)
    if node_def < start or node_def + node_length > end:
        raise DecodeError("the Flex NodeDef lies outside its custom options", start)
    return _node_def_op(reader, node_def, node_def + node_length)


def _uint(reader: RandomReader, at: int, width: int, start: int, end: int) -> int:
    if at < start or at + width > end:
        raise DecodeError("a FlexBuffer offset points outside the custom options", start)
    return int.from_bytes(reader.read(at, width), "little")


def _indirect(reader: RandomReader, at: int, width: int, start: int, end: int) -> int:
    target = at - _uint(reader, at, width, start, end)
    if not start <= target < end:
        raise DecodeError("a FlexBuffer offset points outside the custom options", start)
    return target


def _node_def_op(reader: RandomReader, start: int, end: int) -> str:
    """Field 2 (op) of a serialized tensorflow.NodeDef; protobuf keeps the last occurrence."""
    op = None
    at = start
    while at < end:
        key, at = _varint(reader, at, end)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, at = _varint(reader, at, end)
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        elif wire == 2:
            length, at = _varint(reader, at, end)
            if field == 2 and length <= 256 and at + length <= end:
                op = reader.read(at, length).decode("utf-8", "replace")
            at += length
        else:
            raise DecodeError(f"the Flex NodeDef has protobuf wire type {wire}", at)
    if at > end or op is None:
        raise DecodeError("the Flex NodeDef names no op", start)
    return op


def _varint(reader: RandomReader, at: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= end or shift > 63:
            raise DecodeError("the Flex NodeDef has a broken varint", at)
        byte = reader.read(at, 1)[0]
        value |= (byte & 0x7F) << shift
        at += 1
        shift += 7
        if not byte & 0x80:
            return value, at


FORMATS = (
    Format("tflite", "safe", "TensorFlow Lite", handler=analyze, detect=detect, order=50, extensions=(".tflite",)),
)
