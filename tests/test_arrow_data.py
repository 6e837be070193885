"""Parquet, Arrow IPC and Feather: schema-only reading, pickled extension types, hostile footers."""

from __future__ import annotations

import base64
import io
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mloops.context import Item, ScanContext
from mloops.core import FileResult, Location, Severity
from mloops.datasets import arrow_data
from mloops.limits import Limits
from mloops.picklevm.policy import default_policy
from mloops.scan import dispatch

from .fixtures import arrow_data as fx


class CountingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def analyze(name: str, data: bytes) -> FileResult:
    assert arrow_data.detect(data[: 64 * 1024], name), name
    ctx = ScanContext(name, Limits(), default_policy(), dispatch)
    arrow_data.analyze(ctx, Item(io.BytesIO(data), Location(name), len(data), name, 0))
    return ctx.result


def ids(result: FileResult) -> set[str]:
    return {f.rule.id for f in result.findings}


def above_info(result: FileResult) -> list[str]:
    return [f"{f.rule.id} {f.message}" for f in result.findings if f.severity > Severity.INFO]


# ------------------------------------------------------------ benign files from pyarrow and pandas


BENIGN = {
    "table.parquet": lambda: fx.parquet_bytes(fx.benign_table()),
    "frame.parquet": fx.pandas_parquet_bytes,
    "frame.feather": fx.pandas_feather_bytes,
    "table.feather": lambda: fx.feather_bytes(fx.benign_table()),
    "zstd.feather": lambda: fx.feather_bytes(fx.benign_table(), "zstd"),
    "table.arrow": lambda: fx.ipc_file_bytes(fx.benign_table()),
    "table.arrows": lambda: fx.ipc_stream_bytes(fx.benign_table()),
}
LABELS = {".parquet": "parquet", ".feather": "feather", ".arrow": "arrow-ipc", ".arrows": "arrow-ipc"}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_files_have_no_findings(name):
    result = analyze(name, BENIGN[name]())
    assert above_info(result) == []
    assert [a.format for a in result.assets] == [LABELS[os.path.splitext(name)[1]]]


def test_benign_stream_is_detected_by_content_without_a_name_hint():
    data = fx.ipc_stream_bytes(fx.benign_table())
    assert arrow_data.detect(data[: 64 * 1024], "blob.bin")
    assert analyze("blob.bin", data).assets[0].format == "arrow-ipc"


def test_stream_with_a_schema_longer_than_the_sniffed_head_is_detected():
    table = pa.table({f"column_{i}": pa.array([i], pa.int32()) for i in range(3000)})
    data = fx.ipc_stream_bytes(table)
    assert struct.unpack("<i", data[4:8])[0] > 64 * 1024
    assert arrow_data.detect(data[: 64 * 1024], "blob.bin")
    assert above_info(analyze("blob.bin", data)) == []


def test_pandas_metadata_is_present_and_not_flagged():
    data = fx.pandas_parquet_bytes()
    assert b"pandas" in pq.ParquetFile(io.BytesIO(data)).schema_arrow.metadata
    assert above_info(analyze("frame.parquet", data)) == []


@pytest.mark.parametrize(
    "head",
    [
        pickle.dumps({"a": 1}),
        b"PK\x03\x04" + b"\0" * 40,
        b"col1,col2\n1,2\n",
        b'{"a": 1}\n',
        b"\xff\xff\xff\xff" + b"\x10\x00\x00\x00" + b"\0" * 16,  # continuation, but no Schema message
        b"",
    ],
)
def test_other_content_is_not_detected(head):
    assert not arrow_data.detect(head, "data.bin")


def test_feather_v1_is_labelled_only():
    data = b"FEA1" + b"\0" * 32 + b"FEA1"
    result = analyze("old.feather", data)
    assert [a.format for a in result.assets] == ["feather"]
    assert result.findings == []


# ------------------------------------------------------------ pickled extension types


def _malicious(kind: str, marker: Path, nested: bool = False) -> tuple[str, bytes]:
    table = fx.malicious_table(fx.marker_pickle(marker), nested)
    writers = {
        "x.parquet": fx.parquet_bytes,
        "x.feather": fx.feather_bytes,
        "x.arrow": fx.ipc_file_bytes,
        "x.arrows": fx.ipc_stream_bytes,
    }
    return kind, writers[kind](table)


@pytest.mark.parametrize("kind", ["x.parquet", "x.feather", "x.arrow", "x.arrows"])
def test_pickled_extension_type_is_critical_and_its_callable_named(kind, tmp_path):
    name, data = _malicious(kind, tmp_path / "marker")
    result = analyze(name, data)
    flagged = [f for f in result.findings if f.rule.id == "MLO302"]
    assert len(flagged) == 1 and flagged[0].severity == Severity.CRITICAL
    assert flagged[0].evidence["field"] == "payload"
    assert flagged[0].evidence["extension"] == fx.PICKLED_EXTENSION
    callables = [f.evidence.get("callable") for f in result.findings if f.rule.id == "MLO101"]
    assert callables == ["os.system"]
    assert "pickle" in [a.format for a in result.assets]
    assert not (tmp_path / "marker").exists()


def test_pickled_extension_type_in_a_nested_field_is_found_with_its_path(tmp_path):
    result = analyze(*_malicious("x.parquet", tmp_path / "marker", nested=True))
    assert [f.evidence["field"] for f in result.findings if f.rule.id == "MLO302"] == ["outer.inner"]


def test_stream_without_continuation_marker_is_read(tmp_path):
    legacy = _malicious("x.arrows", tmp_path / "marker")[1][4:]  # the layout before Arrow 0.15
    assert "MLO302" in ids(analyze("legacy.arrows", legacy))


def test_pickled_extension_type_without_parameters_is_still_flagged():
    result = analyze("empty.parquet", fx.parquet_bytes(fx.malicious_table(b"")))
    assert [f.severity for f in result.findings] == [Severity.CRITICAL]


def test_many_pickled_fields_are_reported_with_a_bound(tmp_path):
    column = fx.malicious_table(fx.marker_pickle(tmp_path / "marker"))["payload"]
    table = pa.table({f"p{i}": column for i in range(30)})
    result = analyze("many.parquet", fx.parquet_bytes(table))
    flagged = [f for f in result.findings if f.rule.id == "MLO302"]
    assert len(flagged) == arrow_data.SHOWN + 1
    assert flagged[-1].evidence == {"fields": "30"}
    assert len([f for f in result.findings if f.rule.id == "MLO101"]) == arrow_data.SHOWN


def test_installed_pyarrow_reads_the_file_without_unpickling(tmp_path):
    """Structural test: pyarrow >= 14.0.1 no longer unpickles, so the attack is shown by mloops naming os.system.

    With pyarrow 14.0.0 (checked by hand, outside this suite) pq.read_table on this file creates the marker.
    """
    marker = tmp_path / "marker"
    path = tmp_path / "evil.parquet"
    path.write_bytes(_malicious("x.parquet", marker)[1])
    code = "import sys, pyarrow.parquet as pq; print(pq.read_table(sys.argv[1]).schema.field('payload').type)"
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "int64"  # the unregistered extension falls back to its storage type
    assert not marker.exists()
    assert "MLO302" in ids(analyze("evil.parquet", path.read_bytes()))


# ------------------------------------------------------------ hostile and broken footers


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
    return fx.ipc_stream_bytes(pa.schema([pa.field("deep", kind)]).empty_table())


def _benign_parquet() -> bytes:
    return fx.parquet_bytes(fx.benign_table())


def _benign_arrow() -> bytes:
    return fx.ipc_file_bytes(fx.benign_table())


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


# The speed of these scans is measured by bench/unit_speed.py.
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_footers_are_malformed(case):
    result = analyze(hostile_name(case), HOSTILE[case]())
    assert ids(result) == {"MLO201"}, [f.message for f in result.findings]


def test_nesting_within_arrows_limit_is_accepted():
    assert above_info(analyze("x.arrows", _deeply_nested_list(40))) == []


def test_encrypted_footer_is_not_passed():
    data = _benign_parquet()[:-4] + b"PARE"
    assert ids(analyze("x.parquet", data)) == {"MLO901"}


def large_parquet() -> bytes:
    return fx.parquet_bytes(pa.table({f"c{i}": pa.array(range(200_000), pa.int64()) for i in range(20)}))


def wide_parquet() -> bytes:
    return fx.parquet_bytes(pa.table({f"column_{i}": pa.array([i], pa.int32()) for i in range(5000)}))


def test_only_the_footer_of_a_large_parquet_file_is_read():
    data = large_parquet()
    stream = CountingStream(data)
    ctx = ScanContext("big.parquet", Limits(), default_policy(), dispatch)
    arrow_data.analyze(ctx, Item(stream, Location("big.parquet"), len(data), "big.parquet", 0))
    assert ctx.result.findings == []
    assert stream.bytes_read < 64 * 1024 < len(data) // 100


def test_wide_schema_is_clean():
    assert above_info(analyze("wide.parquet", wide_parquet())) == []
