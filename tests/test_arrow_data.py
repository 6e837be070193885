"""Parquet, Arrow IPC and Feather: schema-only reading, pickled extension types, hostile footers."""

from __future__ import annotations

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
from corpus import arrow_data as fx
from corpus.arrow_data import (
    HOSTILE,
    _benign_parquet,
    _deeply_nested_list,
    analyze,
    hostile_name,
    large_parquet,
    wide_parquet,
)

from mloops.context import Item, ScanContext
from mloops.core import FileResult, Location, Severity
from mloops.datasets import arrow_data
from mloops.limits import Limits
from mloops.picklevm.policy import default_policy
from mloops.scan import dispatch


class CountingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


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
    assert len(flagged) == 30 and all(f.severity == Severity.CRITICAL for f in flagged)
    assert len([f for f in result.findings if f.rule.id == "MLO101"]) == arrow_data.SCANNED


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


def test_only_the_footer_of_a_large_parquet_file_is_read():
    data = large_parquet()
    stream = CountingStream(data)
    ctx = ScanContext("big.parquet", Limits(), default_policy(), dispatch)
    arrow_data.analyze(ctx, Item(stream, Location("big.parquet"), len(data), "big.parquet", 0))
    assert ctx.result.findings == []
    assert stream.bytes_read < 64 * 1024 < len(data) // 100


def test_wide_schema_is_clean():
    assert above_info(analyze("wide.parquet", wide_parquet())) == []
