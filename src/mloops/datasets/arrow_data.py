"""Parquet, Arrow IPC and Feather datasets: only the footer and schema are read, never the data.

pyarrow before 14.0.1 registered the extension type ``arrow.py_extension_type``, whose parameters
are a pickle: reading a file with such a column unpickles them (CVE-2023-47248), so opening a
dataset runs the code its author chose. Parquet keeps the Arrow schema base64-encoded in its
footer metadata under ``ARROW:schema``; IPC files keep it in their footer, streams in the first message.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
from collections.abc import Callable

from .. import rules
from ..context import Item, ScanContext
from ..core import AttackClass, Capability, Rule, Severity
from ..parsers import arrow_ipc
from ..parsers.flatbuffers import RandomReader
from ..parsers.forward_reader import DecodeError
from ..parsers.thrift_compact import CompactDecoder
from ..registry import Format

PICKLED_EXTENSION_TYPE = Rule(
    id="MLO302",
    name="pickled-extension-type",
    title="Arrow/Parquet column has a pickled extension type",
    severity=Severity.CRITICAL,
    attack_class=AttackClass.MALICIOUS_DATASET,
    capability=Capability.CODE_EXECUTION,
    description=(
        "A field's extension type is arrow.py_extension_type (pyarrow's PyExtensionType), whose parameters "
        "are a pickle. pyarrow before 14.0.1 unpickles them as soon as the file is read (CVE-2023-47248), "
        "so opening the dataset runs whatever the pickle calls."
    ),
    remediation=(
        "Do not read the file with pyarrow older than 14.0.1 (or without pyarrow_hotfix). Ask for the data "
        "without the Python extension type, or with a registered pa.ExtensionType that serializes plain data."
    ),
    summary="Arrow/Parquet column has a pickled extension type.",
)


PARQUET_MAGIC = b"PAR1"
PARQUET_ENCRYPTED_MAGIC = b"PARE"
ARROW_FILE_MAGIC = b"ARROW1\0\0"
FEATHER_V1_MAGIC = b"FEA1"
STREAM_HINTS = (".arrow", ".arrows", ".feather")
MAX_FOOTER_BYTES = 64 << 20
ARROW_SCHEMA_KEY = "ARROW:schema"
EXTENSION_NAME_KEY = "ARROW:extension:name"
EXTENSION_METADATA_KEY = "ARROW:extension:metadata"
# The one name pyarrow's PyExtensionType registers and writes (pyarrow/types.pxi); the C++ registry
# looks it up byte for byte, so no spelling variant unpickles.
PICKLED_EXTENSION_NAME = "arrow.py_extension_type"
SCANNED = 20  # pickled fields whose pickle is scanned too; every one is reported (the sink caps the listing)

# Parquet FileMetaData (parquet.thrift): schema = 2, key_value_metadata = 5; KeyValue: key = 1, value = 2.
META_SCHEMA, META_KEY_VALUES = 2, 5
KV_KEY, KV_VALUE = 1, 2
ELEMENT_CHILDREN = 5  # SchemaElement.num_children


def detect(head: bytes, name: str) -> bool:
    if head.startswith((PARQUET_MAGIC, ARROW_FILE_MAGIC, FEATHER_V1_MAGIC)):
        return True
    # An IPC stream starts with a Schema message; streams before Arrow 0.15 lack the continuation marker.
    marked, hinted = head.startswith(arrow_ipc.CONTINUATION), name.lower().endswith(STREAM_HINTS)
    return (marked and hinted) or ((marked or hinted) and arrow_ipc.is_schema_message(head))


def analyze(ctx: ScanContext, item: Item) -> None:
    size = item.size if item.size is not None else item.stream.seek(0, 2)
    item.stream.seek(0)
    head = item.stream.read(8)
    if head.startswith(PARQUET_MAGIC):
        ctx.record(item, "parquet")
        _guarded(ctx, item, "Parquet footer", lambda: _parquet(ctx, item, size))
    elif head.startswith(FEATHER_V1_MAGIC):
        ctx.record(item, "feather")  # Feather v1 has a FlatBuffers footer without extension types
    else:
        ctx.record(item, "feather" if item.name.lower().endswith(".feather") else "arrow-ipc")
        if head == ARROW_FILE_MAGIC:
            _guarded(ctx, item, "Arrow IPC file footer", lambda: _arrow_file(ctx, item, size))
        else:
            _guarded(ctx, item, "Arrow IPC stream schema", lambda: _arrow_stream(ctx, item, size))


def _guarded(ctx: ScanContext, item: Item, what: str, read: Callable[[], None]) -> None:
    try:
        read()
    except DecodeError as exc:
        problem = "truncated" if exc.truncated else "malformed"
        ctx.report(
            rules.MALFORMED.finding(item.location, f"{what} {problem}: {exc.message}", {"offset": str(exc.offset)})
        )


def _parquet(ctx: ScanContext, item: Item, size: int) -> None:
    if size < 12:
        raise DecodeError(f"a {size}-byte file cannot hold a Parquet footer", 0, truncated=True)
    item.stream.seek(size - 8)
    length, magic = struct.unpack("<I4s", item.stream.read(8))
    if magic == PARQUET_ENCRYPTED_MAGIC:
        ctx.report(rules.SCAN_LIMIT.finding(item.location, "Parquet file with an encrypted footer; schema not checked"))
        return
    if magic != PARQUET_MAGIC:
        raise DecodeError("the file does not end with PAR1", size - 4)
    if length > size - 12:
        raise DecodeError(f"footer length {length} exceeds the {size - 12} bytes before it", size - 8)
    if length > MAX_FOOTER_BYTES:
        ctx.report(rules.SCAN_LIMIT.finding(item.location, f"Parquet footer of {length} bytes; not checked"))
        return
    item.stream.seek(size - 8 - length)
    footer = item.stream.read(length)
    decoder = CompactDecoder(footer, ctx.budget.check_time)
    metadata = decoder.struct(wanted=(META_SCHEMA, META_KEY_VALUES))
    if decoder.pos != length:
        raise DecodeError(f"{length - decoder.pos} bytes follow the FileMetaData in the footer", size - 8)
    _check_parquet_schema(metadata.get(META_SCHEMA))
    pairs = metadata.get(META_KEY_VALUES) or []
    if not isinstance(pairs, list):
        raise DecodeError("key_value_metadata is not a list", size - 8 - length)
    for pair in pairs:
        if not isinstance(pair, dict) or not isinstance(pair.get(KV_KEY), bytes):
            raise DecodeError("a key_value_metadata entry has no key", size - 8 - length)
        if pair[KV_KEY] == ARROW_SCHEMA_KEY.encode() and isinstance(pair.get(KV_VALUE), bytes):
            _arrow_schema_in_parquet(ctx, item, pair[KV_VALUE])


def _check_parquet_schema(elements: object) -> None:
    """The flattened schema tree: its num_children counts must account for every element exactly."""
    if not isinstance(elements, list) or not elements:
        raise DecodeError("FileMetaData has no schema", 0)
    open_children = [1]  # the root itself
    for element in elements:
        if not isinstance(element, dict) or not open_children:
            raise DecodeError("schema elements do not form one tree", 0)
        open_children[-1] -= 1
        children = element.get(ELEMENT_CHILDREN, 0)
        if not isinstance(children, int) or children < 0 or children > len(elements):
            raise DecodeError(f"a schema element claims {children} children", 0)
        if children:
            open_children.append(children)
        while open_children and open_children[-1] == 0:
            open_children.pop()
    if open_children:
        raise DecodeError("the schema ends before all its children", 0, truncated=True)


def _arrow_schema_in_parquet(ctx: ScanContext, item: Item, encoded: bytes) -> None:
    try:
        message = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"ARROW:schema is not base64 ({exc})", 0) from None
    _check_schema(ctx, item, arrow_ipc.schema_from_message(message, ctx.budget.check_time))


def _arrow_file(ctx: ScanContext, item: Item, size: int) -> None:
    if size < 8 + 10:
        raise DecodeError(f"a {size}-byte file cannot hold an Arrow IPC footer", 0, truncated=True)
    item.stream.seek(size - 10)
    length, magic = struct.unpack("<i6s", item.stream.read(10))
    if magic != arrow_ipc.FILE_MAGIC:
        raise DecodeError("the file does not end with ARROW1", size - 6)
    if not 0 < length <= size - 18:
        raise DecodeError(f"footer length {length} does not fit the {size - 18} bytes before it", size - 10)
    reader = RandomReader(item.stream, size)
    _check_schema(ctx, item, arrow_ipc.schema_from_footer(reader, size - 10 - length, ctx.budget.check_time))


def _arrow_stream(ctx: ScanContext, item: Item, size: int) -> None:
    item.stream.seek(0)
    prefix = item.stream.read(8)
    start = 8 if prefix[:4] == arrow_ipc.CONTINUATION else 4  # no marker before Arrow 0.15
    if len(prefix) < start:
        raise DecodeError("the stream ends inside its first message header", 0, truncated=True)
    length = struct.unpack("<i", prefix[start - 4 : start])[0]
    if not 0 < length <= min(size - start, arrow_ipc.MAX_MESSAGE_BYTES):
        raise DecodeError(f"first message length {length} does not fit the {size - start} bytes after it", 0)
    item.stream.seek(start)
    message = prefix[:start] + item.stream.read(length)
    _check_schema(ctx, item, arrow_ipc.schema_from_message(message, ctx.budget.check_time))


def _check_schema(ctx: ScanContext, item: Item, schema: arrow_ipc.ArrowSchema) -> None:
    pickled = [f for f in schema.fields if _extension_name(f) == PICKLED_EXTENSION_NAME]
    for index, field in enumerate(pickled):
        payload = field.value(EXTENSION_METADATA_KEY) or b""
        message = (
            f"field '{field.path}' has the pickled extension type {PICKLED_EXTENSION_NAME}: pyarrow before "
            "14.0.1 unpickles its metadata when the file is read (CVE-2023-47248)"
        )
        evidence = {"field": field.path, "extension": PICKLED_EXTENSION_NAME, "pickle_bytes": str(len(payload))}
        ctx.report(PICKLED_EXTENSION_TYPE.finding(item.location, message, evidence, severity=Severity.CRITICAL))
        if payload and index < SCANNED:  # each is CRITICAL already: the bound is on work, not on verdicts
            member = f"<extension metadata of field {field.path}>"
            ctx.scan(item.child(io.BytesIO(payload), member, len(payload), "nested"))


def _extension_name(field: arrow_ipc.ArrowField) -> str:
    vector = field.metadata.get(EXTENSION_NAME_KEY)
    if vector is None or vector.count > len(PICKLED_EXTENSION_NAME):  # longer names cannot match
        return ""
    return (field.value(EXTENSION_NAME_KEY) or b"").decode("utf-8", "replace")


FORMATS = (
    Format("arrow-data", "safe", "Apache Arrow or Parquet data", "data", handler=analyze, detect=detect, order=10),
    Format("parquet", "safe", "Apache Parquet", "data"),
    Format("arrow-ipc", "safe", "Apache Arrow IPC", "data"),
    Format("feather", "safe", "Feather (Arrow)", "data"),
)
