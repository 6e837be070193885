"""Parquet, Arrow IPC and Feather files written by pyarrow and pandas, benign and with a pickled extension type."""

from __future__ import annotations

import base64
import io
import os
import pickle
import struct
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from mloops.context import Item, ScanContext
from mloops.core import FileResult, Location
from mloops.datasets import arrow_data
from mloops.limits import Limits
from mloops.picklevm.policy import default_policy
from mloops.scan import dispatch

PICKLED_EXTENSION = "arrow.py_extension_type"


class UuidType(pa.ExtensionType):
    """A registered extension type with no parameters: nothing to deserialize."""

    def __init__(self) -> None:
        super().__init__(pa.binary(16), "example.uuid")

    def __arrow_ext_serialize__(self) -> bytes:
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type: pa.DataType, serialized: bytes) -> UuidType:
        return cls()


class PickledExtension(pa.ExtensionType):
    """Writes what pyarrow's PyExtensionType wrote: its name, and a pickle as the type's parameters."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        super().__init__(pa.int64(), PICKLED_EXTENSION)

    def __arrow_ext_serialize__(self) -> bytes:
        return self.payload

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type: pa.DataType, serialized: bytes) -> PickledExtension:
        return cls(serialized)


class _TouchMarker:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def marker_pickle(marker: Path) -> bytes:
    """A pickle whose loading runs ``touch marker`` through os.system (pickling runs nothing)."""
    return pickle.dumps(_TouchMarker(marker), protocol=2)


def benign_table() -> pa.Table:
    uuids = pa.ExtensionArray.from_storage(UuidType(), pa.array([b"0" * 16, b"1" * 16], pa.binary(16)))
    return pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "tags": pa.array([["a", "b"], []], pa.list_(pa.string())),
            "point": pa.array([{"x": 1.0, "y": 2.0}, {"x": 3.0, "y": 4.0}]),
            "attrs": pa.array([[("k", 1)], []], pa.map_(pa.string(), pa.int32())),
            "color": pa.array(["red", "blue"]).dictionary_encode(),
            "uuid": uuids,
        }
    )


def malicious_table(payload: bytes, nested: bool = False) -> pa.Table:
    storage = pa.array([1, 2], pa.int64())
    column = pa.ExtensionArray.from_storage(PickledExtension(payload), storage)
    if nested:
        return pa.table({"outer": pa.StructArray.from_arrays([column], names=["inner"])})
    return pa.table({"id": storage, "payload": column})


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def pandas_parquet_bytes() -> bytes:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": pd.Categorical(["p", "q"])}, index=["r1", "r2"])
    sink = io.BytesIO()
    frame.to_parquet(sink, engine="pyarrow")
    return sink.getvalue()


def pandas_feather_bytes() -> bytes:
    frame = pd.DataFrame({"a": [1.5, 2.5], "b": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    sink = io.BytesIO()
    frame.to_feather(sink)
    return sink.getvalue()


def feather_bytes(table: pa.Table, compression: str = "uncompressed") -> bytes:
    sink = io.BytesIO()
    feather.write_feather(table, sink, compression=compression)
    return sink.getvalue()


def ipc_file_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def ipc_stream_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def analyze(name: str, data: bytes) -> FileResult:
    assert arrow_data.detect(data[: 64 * 1024], name), name
    ctx = ScanContext(name, Limits(), default_policy(), dispatch)
    arrow_data.analyze(ctx, Item(io.BytesIO(data), Location(name), len(data), name, 0))
    return ctx.result


def _parquet_with_footer(footer: bytes) -> bytes:
    return b"PAR1" + footer + struct.pack("<I", len(footer)) + b"PAR1"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            return bytes(out + bytes([byte]))
        out.append(byte | 0x80)


def _parquet_with_arrow_schema(encoded: bytes) -> bytes:
    table = pa.table({"a": [1, 2]}).replace_schema_metadata({"ARROW:schema": encoded})
    sink = io.BytesIO()
    pq.write_table(table, sink)  # pyarrow keeps an ARROW:schema entry it is given
    return sink.getvalue()


def _schema_message_with_huge_field_count() -> bytes:
    """A hand-built Message FlatBuffer whose Schema claims 2^31 - 1 fields."""
    message = bytearray(48)
    struct.pack_into("<I", message, 0, 16)  # root table at 16
    struct.pack_into("<HHHHH", message, 4, 10, 12, 0, 4, 8)  # vtable: header_type at +4, header at +8
    struct.pack_into("<iBxxxI", message, 16, 12, 1, 12)  # header_type Schema; header table at 24 + 12
    struct.pack_into("<HHHH", message, 28, 8, 8, 0, 4)  # Schema vtable: fields at +4
    struct.pack_into("<iII", message, 36, 8, 4, 0x7FFFFFFF)  # fields vector at 44 with its count
    return b"\xff\xff\xff\xff" + struct.pack("<i", len(message)) + bytes(message)


def _deeply_nested_list(depth: int) -> bytes:
    kind: pa.DataType = pa.int8()
    for _ in range(depth):
        kind = pa.list_(kind)
    return ipc_stream_bytes(pa.schema([pa.field("deep", kind)]).empty_table())


def _benign_parquet() -> bytes:
    return parquet_bytes(benign_table())


def _benign_arrow() -> bytes:
    return ipc_file_bytes(benign_table())


HOSTILE = {
    "footer length past EOF": lambda: _benign_parquet()[:-8] + struct.pack("<I", 2**32 - 1) + b"PAR1",
    "parquet truncated": lambda: _benign_parquet()[:-100],
    "parquet too short": lambda: b"PAR1PAR1",
    "footer garbage": lambda: _parquet_with_footer(b"\xff" * 64),
    "thrift list of 2^60 structs": lambda: _parquet_with_footer(b"\x15\x02\x19\xfc" + _varint(2**60)),
    "thrift map of 2^60 entries": lambda: _parquet_with_footer(b"\x1b" + _varint(2**60) + b"\x88"),
    "thrift binary of 2^62 bytes": lambda: _parquet_with_footer(b"\x68" + _varint(2**62) + b"x"),
    "thrift nested 100000 deep": lambda: _parquet_with_footer(b"\x29\x1c" + b"\x1c" * 100_000),
    "thrift varint without end": lambda: _parquet_with_footer(b"\x15" + b"\xff" * 40),
    "schema children lie": lambda: _parquet_with_footer(b"\x15\x02\x19\x1c\x55\x0a\x00\x16\x02\x19\x0c\x00"),
    "arrow schema not base64": lambda: _parquet_with_arrow_schema(b"%%% not base64 %%%"),
    "arrow schema garbage": lambda: _parquet_with_arrow_schema(base64.b64encode(b"\xff" * 8 + b"\x01" * 40)),
    "arrow schema huge field count": lambda: _parquet_with_arrow_schema(
        base64.b64encode(_schema_message_with_huge_field_count())
    ),
    "arrow file footer past start": lambda: _benign_arrow()[:-10] + struct.pack("<i", 2**31 - 1) + b"ARROW1",
    "arrow file footer garbage": lambda: _benign_arrow()[:-10] + b"\xff\xff\xff\x7f" + b"ARROW1",
    "arrow file truncated": lambda: _benign_arrow()[:-3],
    "arrow stream huge message": lambda: b"\xff\xff\xff\xff" + struct.pack("<i", 2**31 - 1) + b"\0" * 64,
    "arrow stream huge field count": _schema_message_with_huge_field_count,
    "arrow fields nested 100 deep": lambda: _deeply_nested_list(100),
}


HOSTILE_NAMES = {"arrow file": "x.arrow", "arrow stream": "x.arrows", "arrow fields": "x.arrows"}


def hostile_name(case: str) -> str:
    return next((value for key, value in HOSTILE_NAMES.items() if case.startswith(key)), "x.parquet")


def large_parquet() -> bytes:
    return parquet_bytes(pa.table({f"c{i}": pa.array(range(200_000), pa.int64()) for i in range(20)}))


def wide_parquet() -> bytes:
    return parquet_bytes(pa.table({f"column_{i}": pa.array([i], pa.int32()) for i in range(5000)}))
