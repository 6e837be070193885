"""Archives and compressed streams: leniency like PyTorch's reader, nesting, and bounds."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from corpus import archives

from mloops import scan_path
from mloops.context import Item, ScanContext
from mloops.core import Location, Severity
from mloops.limits import Limits, MiB
from mloops.picklevm.assemble import PickleBuilder
from mloops.picklevm.policy import default_policy
from mloops.scan import dispatch

from .conftest import rule_ids, worst

EVIL = PickleBuilder(2).call("os", "system", "id").stop().build()
CLEAN = pickle.dumps({"epoch": 1}, protocol=2)


def members_with(report, rule_id):
    return [f.location.members for f in report.findings if f.rule.id == rule_id]


def torch_like(data_pkl: bytes, storage: bytes = b"\x00" * 64, prefix: str = "archive/") -> bytes:
    return archives.make_zip({f"{prefix}data.pkl": data_pkl, f"{prefix}version": b"3\n", f"{prefix}data/0": storage})


# ------------------------------------------------------------------ zip


def test_pickles_at_any_depth_of_a_zip_are_scanned(scan):
    report = scan("m.zip", archives.make_zip({"a/b/c/model.pkl": EVIL, "readme.md": b"# hi"}))
    assert members_with(report, "MLO101") == [("a/b/c/model.pkl",)]


def test_member_with_a_misleading_name_is_still_scanned(scan):
    report = scan("m.zip", archives.make_zip({"notes.txt": EVIL}))
    assert members_with(report, "MLO101") == [("notes.txt",)]


def test_bad_crc_is_reported_and_the_member_still_scanned(scan):
    report = scan("m.pt", archives.corrupt_crc(torch_like(EVIL), "archive/data.pkl"))
    assert {"MLO101", "MLO204"} <= rule_ids(report)
    crc = next(f for f in report.findings if f.rule.id == "MLO204")
    assert crc.evidence["crc_actual"] != crc.evidence["crc_recorded"]


def test_local_name_differing_from_central_name(scan):
    report = scan("m.pt", archives.rename_local(torch_like(EVIL), "archive/data.pkl", "archive/data.pkX"))
    anomaly = next(f for f in report.findings if f.rule.id == "MLO204")
    assert anomaly.evidence == {"local_name": "archive/data.pkX", "central_name": "archive/data.pkl"}
    assert "MLO101" in rule_ids(report)


def test_encryption_flag_on_a_readable_member(scan):
    report = scan("m.pt", archives.set_flags(torch_like(EVIL), "archive/data.pkl", 0x01))
    assert {"MLO101", "MLO204"} <= rule_ids(report)


def test_duplicate_member_names_are_each_scanned(scan):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", CLEAN)
        with pytest.warns(UserWarning):
            archive.writestr("archive/data.pkl", EVIL)
    report = scan("m.pt", buffer.getvalue())
    assert members_with(report, "MLO101") == [("archive/data.pkl (copy 2)",)]
    assert "MLO204" in rule_ids(report)


def test_data_prepended_to_a_zip_is_scanned_both_ways(scan):
    report = scan("poly.pt", EVIL + archives.make_zip({"inner/model.pkl": EVIL}))
    locations = {f.location.members for f in report.findings if f.rule.id == "MLO101"}
    assert locations == {(), ("inner/model.pkl",)}


def test_zip_without_a_central_directory_falls_back_to_local_headers(scan):
    data = archives.make_zip({"model.pkl": EVIL})
    cut = data[: data.index(b"PK\x01\x02")]
    report = scan("broken.zip", cut)
    assert {"MLO205", "MLO101"} <= rule_ids(report)


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_compressed_zip_members(scan, method):
    assert members_with(scan("m.zip", archives.make_zip({"x.pkl": EVIL}, method)), "MLO101") == [("x.pkl",)]


def test_zip64_archives_are_read(scan):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, archive.open("big/model.pkl", "w", force_zip64=True) as handle:
        handle.write(EVIL)
    assert "MLO101" in rule_ids(scan("m.zip", buffer.getvalue()))


def test_unsupported_compression_method_fails_closed(scan):
    data = bytearray(archives.make_zip({"x.pkl": CLEAN}))
    local, central = archives._headers(bytes(data), "x.pkl")
    for offset in (local + 8, central + 10):
        data[offset : offset + 2] = struct.pack("<H", 99)
    assert "MLO205" in rule_ids(scan("m.zip", bytes(data)))


class ReadLog(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.ranges: list[tuple[int, int]] = []

    def read(self, size: int = -1) -> bytes:
        start = self.tell()
        data = super().read(size)
        self.ranges.append((start, start + len(data)))
        return data


def test_tensor_storages_are_never_read_or_scanned():
    storage = EVIL + b"\x00" * (8 * MiB)  # bytes that would look malicious if unpickled
    data = torch_like(CLEAN, storage)
    start = data.index(EVIL)
    stream = ReadLog(data)
    ctx = ScanContext("m.pt", Limits(), default_policy(), dispatch)
    ctx.scan(Item(stream, Location("m.pt"), len(data), "m.pt", 0))
    assert not [f for f in ctx.result.findings if f.severity > Severity.INFO]
    touched = [r for r in stream.ranges if r[0] < start + len(storage) and r[1] > start]
    assert touched == []


def test_pickle_named_like_a_storage_is_scanned_outside_torch_layouts(scan):
    report = scan("m.zip", archives.make_zip({"archive/data/0": EVIL}))
    assert members_with(report, "MLO101") == [("archive/data/0",)]


def test_tail_bytes_that_resemble_a_zip_end_record_do_not_break_scanning(scan):
    data = pickle.dumps({"blob": b"PK\x05\x06" + b"\x00" * 18}, protocol=2)
    assert worst(scan("x.pkl", data)) == Severity.INFO


# ------------------------------------------------------------------ tar and compressed streams


def test_tar_members_and_path_traversal(scan):
    report = scan("m.tar", archives.make_tar({"../../etc/evil.pkl": EVIL, "ok.txt": b"x"}))
    assert members_with(report, "MLO101") == [("../../etc/evil.pkl",)]
    assert members_with(report, "MLO206") == [("../../etc/evil.pkl",)]


@pytest.mark.parametrize("name", ["../evil.pkl", "/etc/evil.pkl", "a/../../evil.pkl", "C:\\evil.pkl", "..\\evil.pkl"])
def test_zip_member_paths_that_escape_are_reported(scan, name):
    report = scan("m.zip", archives.make_zip({name: pickle.dumps([1]), "ok/a.pkl": pickle.dumps([2])}))
    assert members_with(report, "MLO206") == [(name,)]


def test_zip_local_header_path_that_escapes_is_reported(scan):
    data = archives.make_zip({"safe.pkl": pickle.dumps([1])})
    data = data.replace(b"safe.pkl", b"../a.pkl", 1)  # only the local header, which comes first
    assert members_with(scan("m.zip", data), "MLO206") == [("safe.pkl",)]


@pytest.mark.parametrize(
    "kind,compress",
    [
        ("gzip", gzip.compress),
        ("bz2", bz2.compress),
        ("xz", lzma.compress),
        ("zlib", zlib.compress),
        ("lzma", lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE)),
    ],
)
def test_compressed_streams_are_opened(scan, kind, compress):
    report = scan("model.bin", compress(EVIL))
    assert members_with(report, "MLO101") == [(f"<{kind}>",)]


def test_nesting_of_every_kind(scan):
    data = gzip.compress(archives.make_zip({"inner.tar": archives.make_tar({"deep.pkl.xz": lzma.compress(EVIL)})}))
    (members,) = members_with(scan("bundle.bin", data), "MLO101")
    assert members == ("<gzip>", "inner.tar", "deep.pkl.xz", "<xz>")


def test_nesting_depth_is_bounded(scan):
    data = EVIL
    for _ in range(12):
        data = gzip.compress(data)
    report = scan("deep.gz", data)
    limit = [f for f in report.findings if f.rule.id == "MLO901"]
    assert limit and limit[0].severity == Severity.HIGH and "nested deeper" in limit[0].message


def test_truncated_compressed_stream_is_reported(scan):
    noise = bytes(range(256)) * 40  # incompressible enough that the cut falls after the payload
    report = scan("x.pkl.gz", gzip.compress(EVIL + noise)[:-300])
    assert {"MLO101", "MLO205"} <= rule_ids(report)


def _scan(path: Path, limits: Limits):
    return scan_path(str(path), limits=limits)


def test_decompression_bomb_hits_the_ratio_bound(tmp_path: Path):
    path = tmp_path / "bomb.pkl.bz2"
    payload = b"\x80\x04\x8e" + struct.pack("<Q", 200 * MiB) + b"\x00" * (200 * MiB) + b"."
    path.write_bytes(bz2.compress(payload, 9))
    report = _scan(path, Limits(ratio_floor_bytes=1 * MiB))
    assert any(f.rule.id == "MLO901" and "ratio" in f.message for f in report.findings)


def test_total_expanded_bytes_are_bounded(tmp_path: Path):
    path = tmp_path / "many.zip"
    path.write_bytes(archives.make_zip({f"m{i}.pkl": CLEAN + b"\x00" * MiB for i in range(8)}, zipfile.ZIP_DEFLATED))
    report = _scan(path, Limits(max_expanded_bytes=3 * MiB))
    assert any(f.rule.id == "MLO901" and "decompressed" in f.message for f in report.findings)


def test_time_per_file_is_bounded(tmp_path: Path):
    path = tmp_path / "slow.pkl"
    path.write_bytes(b"\x80\x02" + b"N0" * 200_000 + b"N.")
    report = _scan(path, Limits(max_seconds_per_file=0.0))
    assert any(f.rule.id == "MLO901" and "time limit" in f.message for f in report.findings)


def test_seven_zip_archives_fail_closed(scan):
    report = scan("model.7z", b"7z\xbc\xaf\x27\x1c" + b"\x00" * 64)
    assert worst(report) == Severity.HIGH and "MLO205" in rule_ids(report)


# ------------------------------------------------------------ archives written back to back


def _torch_archive(obj: object) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_every_archive_of_a_back_to_back_file_is_scanned(scan):
    # A distributed checkpoint's .distcp holds one torch.save archive per item; a loader given offsets reads any.
    class Payload:
        def __reduce__(self):
            return (os.system, ("id",))

    evil = _torch_archive({"x": Payload()})
    report = scan("__0_0.distcp", evil + _torch_archive({"step": 3}) + _torch_archive({"y": 2}))
    (finding,) = [f for f in report.findings if f.rule.id == "MLO101"]
    assert finding.location.members[0] == "<archive at byte 0>"
    assert finding.evidence["callable"] == "os.system"


def test_a_real_distributed_checkpoint_is_clean(tmp_path):
    import torch
    import torch.distributed.checkpoint as dcp

    folder = tmp_path / "checkpoint"
    with pytest.warns(UserWarning):  # no process group: saved by this process alone
        dcp.save({"w": torch.ones(3), "step": 7, "cfg": {"lr": 0.1}}, checkpoint_id=str(folder), no_dist=True)
    report = scan_path(str(folder))
    assert worst(report) == Severity.INFO, [f.message for f in report.findings]
    pickles = [a for a in report.assets if a.location.members and a.location.members[-1].endswith("data.pkl")]
    assert len(pickles) >= 2  # the items' archives, each found
