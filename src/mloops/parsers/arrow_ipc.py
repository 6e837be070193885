"""The schema of Arrow IPC data (Format/Schema.fbs, Format/Message.fbs), read from its FlatBuffers.

Only the schema is read: field names and types, nested children and the key-value metadata of
fields and of the schema, where extension types keep their name and serialized parameters. Record
batches are never touched. Every offset goes through the bounds-checked FlatBuffers reader.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import NamedTuple

from .flatbuffers import RandomReader, Table, Vector
from .forward_reader import DecodeError

FILE_MAGIC = b"ARROW1"
CONTINUATION = b"\xff\xff\xff\xff"
MAX_MESSAGE_BYTES = 64 << 20  # a schema message; real ones are kilobytes
MAX_FIELDS = 1 << 18  # fields of one schema, children included
MAX_NESTING = 64
MAX_KEYS = 1 << 20  # key-value pairs in one schema, all fields together
NAME_LIMIT = 256  # characters kept of a field name
PATH_LIMIT = 1024  # characters kept of a field path

# Field indices in the FlatBuffers tables (a union such as Field.type takes two slots).
FOOTER_SCHEMA = 1
MESSAGE_HEADER_TYPE, MESSAGE_HEADER = 1, 2
HEADER_SCHEMA = 1  # MessageHeader.Schema
SCHEMA_FIELDS, SCHEMA_METADATA = 1, 2
FIELD_NAME, FIELD_CHILDREN, FIELD_METADATA = 0, 5, 6
KEY, VALUE = 0, 1


class ArrowField(NamedTuple):
    path: str  # dotted from the top-level field, e.g. "points.item.x"; cut at PATH_LIMIT
    metadata: dict[str, Vector]  # values are read on demand: fields may share one large value

    def value(self, key: str) -> bytes | None:
        vector = self.metadata.get(key)
        return None if vector is None else vector.reader.read(vector.start, vector.count)


class ArrowSchema(NamedTuple):
    fields: list[ArrowField]
    metadata: dict[str, Vector]


def schema_from_message(data: bytes, check_time: Callable[[], None]) -> ArrowSchema:
    """The schema of an encapsulated IPC message: [0xFFFFFFFF] int32 length, then the Message FlatBuffer."""
    message = _message(data)
    if message.scalar(MESSAGE_HEADER_TYPE, "<B") != HEADER_SCHEMA:
        raise DecodeError("the first IPC message is not a Schema", message.position)
    schema = message.table(MESSAGE_HEADER)
    if schema is None:
        raise DecodeError("the Schema message has no schema", message.position)
    return _schema(schema, check_time)


def is_schema_message(data: bytes) -> bool:
    """Whether ``data`` starts a Message whose header is a Schema; the message may go on past ``data``."""
    try:
        return _message(data, partial=True).scalar(MESSAGE_HEADER_TYPE, "<B") == HEADER_SCHEMA
    except DecodeError:
        return False


def _message(data: bytes, partial: bool = False) -> Table:
    start = 8 if data[:4] == CONTINUATION else 4  # streams before Arrow 0.15 have no continuation marker
    if len(data) < start:
        raise DecodeError("the schema message ends inside its length prefix", 0, truncated=True)
    length = struct.unpack("<i", data[start - 4 : start])[0]
    if partial:
        length = min(length, len(data) - start)
    if length <= 0 or length > len(data) - start:
        raise DecodeError(f"schema message length {length} does not fit the {len(data) - start} bytes", start - 4)
    reader = RandomReader(io.BytesIO(data[start : start + length]), length)
    return Table.at(reader, reader.unpack("<I", 0))


def schema_from_footer(reader: RandomReader, footer_start: int, check_time: Callable[[], None]) -> ArrowSchema:
    """The schema in the Footer FlatBuffer of an IPC file, whose root offset sits at ``footer_start``."""
    footer = Table.at(reader, footer_start + reader.unpack("<I", footer_start))
    schema = footer.table(FOOTER_SCHEMA)
    if schema is None:
        raise DecodeError("the IPC file footer has no schema", footer_start)
    return _schema(schema, check_time)


def _schema(table: Table, check_time: Callable[[], None]) -> ArrowSchema:
    keys = _KeyBudget()
    schema = ArrowSchema([], keys.read(table.vector(SCHEMA_METADATA, 4)))
    pending: list[tuple[Table, str, int]] = [(child, "", 0) for child in _tables(table.vector(SCHEMA_FIELDS, 4))]
    pending.reverse()
    while pending:  # depth-first without recursion, in schema order
        if len(schema.fields) % 1024 == 0:
            check_time()
        current, parent, depth = pending.pop()
        if depth > MAX_NESTING:
            raise DecodeError(f"fields nested deeper than {MAX_NESTING} levels", current.position)
        name = current.string(FIELD_NAME, NAME_LIMIT) or ""
        path = (f"{parent}.{name}" if parent else name)[:PATH_LIMIT]
        schema.fields.append(ArrowField(path, keys.read(current.vector(FIELD_METADATA, 4))))
        children = _tables(current.vector(FIELD_CHILDREN, 4))
        if len(schema.fields) + len(pending) + len(children) > MAX_FIELDS:  # shared children multiply
            raise DecodeError(f"more than {MAX_FIELDS} fields in one schema", current.position)
        pending.extend((child, path, depth + 1) for child in reversed(children))
    return schema


def _tables(vector: Vector | None) -> list[Table]:
    if vector is None:
        return []
    if vector.count > MAX_FIELDS:
        raise DecodeError(f"a list of {vector.count} tables", vector.start - 4)
    return list(vector.tables())


class _KeyBudget:
    """Reads key-value lists, counting entries over the whole schema: fields may share one list."""

    def __init__(self) -> None:
        self.left = MAX_KEYS

    def read(self, vector: Vector | None) -> dict[str, Vector]:
        if vector is None:
            return {}
        self.left -= vector.count
        if self.left < 0:
            raise DecodeError(f"more than {MAX_KEYS} metadata entries in one schema", vector.start - 4)
        pairs: dict[str, Vector] = {}
        for entry in vector.tables():
            value = entry.vector(VALUE, 1)
            pairs[entry.string(KEY, NAME_LIMIT) or ""] = value if value is not None else Vector(entry.reader, 0, 0, 1)
        return pairs
