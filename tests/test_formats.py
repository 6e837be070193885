"""Content sniffing and the NumPy analyzer: the bytes decide, the name is only a hint."""

from __future__ import annotations

import io
import json
import pickle
import struct

import numpy as np
import pytest

from mloops.core import Severity
from mloops.picklevm.assemble import PickleBuilder

from .conftest import rule_ids, worst

EVIL = PickleBuilder(2).call("os", "system", "id").stop().build()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


# ------------------------------------------------------------------ sniffing


@pytest.mark.parametrize("name", ["model.pkl", "weights.png", "README", "data.csv", "x.safetensors"])
def test_malicious_pickle_is_found_whatever_its_name(scan, name):
    assert "MLO101" in rule_ids(scan(name, EVIL))


def test_text_protocol_pickle_without_proto_is_found(scan):
    assert "MLO101" in rule_ids(scan("notes.txt", b"cos\nsystem\n(S'id'\ntR."))


def test_safetensors_header_that_starts_like_a_pickle_is_not_one(scan):
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode().ljust(0x280)
    data = struct.pack("<Q", len(header)) + header + b"\x00" * 4
    assert data[:2] == b"\x80\x02"
    report = scan("model.safetensors", data)
    assert [f.rule.id for f in report.findings] == ["MLO001"] and [a.format for a in report.assets] == ["safetensors"]


@pytest.mark.parametrize(
    "name,data",
    [
        ("data.csv", b"a,b\n1,2\n"),
        ("config.json", b'{"lr": 0.1}'),
        ("train.py", b"import torch\nclass Net: pass\n"),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100),
        ("empty.txt", b""),
    ],
)
def test_ordinary_files_are_left_alone(scan, name, data):
    report = scan(name, data)
    assert report.findings == []


@pytest.mark.parametrize("name", ["model.pt", "model.pkl", "model.joblib", "weights.npy", "model.pkl.gz"])
def test_model_named_file_with_unknown_binary_content_fails_closed(scan, name):
    report = scan(name, b"\x01\x7fBLOB" + bytes(range(256)) * 4)
    (finding,) = report.findings
    assert finding.rule.id == "MLO203" and finding.severity == Severity.HIGH
    assert finding.evidence["first_bytes"].startswith("017f424c4f42")


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("model.pt", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "a PNG image"),
        ("model.pkl.gz", b"\xff\xd8\xff\xe0" + b"\x00" * 100, "a JPEG image"),
        ("weights.npy", b"%PDF-1.7\n" + b"\x00" * 100, "a PDF document"),
        ("pytorch_model.bin", b"<!DOCTYPE html><html><body>404 Not Found</body></html>", "an HTML page"),
        ("model.joblib", b'{"error": "rate limited"}', "JSON or other structured text"),
        ("distutils-precedence.pth", b"import os; var = 'x'\n", "plain text"),
    ],
)
def test_non_model_content_under_a_model_name_is_low_with_its_real_type(scan, name, data, kind):
    (finding,) = scan(name, data).findings
    assert finding.rule.id == "MLO203" and finding.severity == Severity.LOW
    assert finding.evidence["content"] == kind


def test_a_text_stream_that_imports_before_it_breaks_is_a_broken_pickle(scan):
    # pickle.load imports mypkg (running its top-level code) before the garbage stops it
    report = scan("model.pkl", b"cmypkg\nhook\n<html>garbage")
    assert {"MLO121", "MLO201"} <= rule_ids(report)
    assert scan("notes.txt", b"cmypkg\nhook\n<html>garbage").findings == []


def test_a_truncated_protocol_0_pickle_under_a_pickle_name_is_malformed(scan):
    data = pickle.dumps({"a": [1, 2, 3]}, protocol=0)[:-4]
    assert "MLO201" in rule_ids(scan("model.pkl", data))


def test_empty_model_file_fails_closed(scan):
    assert rule_ids(scan("model.pkl", b"")) == {"MLO203"}


def test_large_pickle_prefix_is_recognised_from_a_sample(scan):
    data = pickle.dumps([b"\x00" * (2 << 20), "tail"], protocol=4)
    report = scan("blob.dat", data)
    assert [a.format for a in report.assets] == ["pickle"] and worst(report) == Severity.INFO


# ------------------------------------------------------------------ NumPy


def test_numeric_npy_is_safe(scan):
    report = scan("w.npy", npy(np.arange(20, dtype=np.int16).reshape(4, 5)))
    assert rule_ids(report) == {"MLO001"} and [a.format for a in report.assets] == ["npy"]


def test_truncated_npy_is_malformed(scan):
    report = scan("w.npy", npy(np.arange(100.0))[:-8])
    assert rule_ids(report) == {"MLO201"}


def test_npy_with_trailing_bytes(scan):
    data = npy(np.arange(10.0))
    report = scan("w.npy", data + EVIL)
    (finding,) = report.findings
    assert finding.rule.id == "MLO202" and finding.location.offset == len(data)


def test_npy_header_must_be_a_literal(scan):
    header = b"{'descr': __import__('os').system('id'), 'fortran_order': False, 'shape': (1,), }"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
    assert rule_ids(scan("w.npy", data)) == {"MLO201"}


def test_oversized_npy_header_is_refused(scan):
    data = b"\x93NUMPY\x02\x00" + struct.pack("<I", 50 * 1024 * 1024) + b" " * 100
    assert rule_ids(scan("w.npy", data)) == {"MLO201"}


def test_object_npy_goes_to_the_pickle_engine(scan):
    report = scan("o.npy", npy(np.array([{"a": 1}, "text"], dtype=object)))
    assert worst(report) == Severity.INFO
    assert [a.format for a in report.assets] == ["numpy-object"]


def test_structured_dtype_with_an_object_field_is_unpickled_by_numpy(scan):
    record = np.zeros(2, dtype=[("id", "i4"), ("obj", "O")])
    report = scan("r.npy", npy(record))
    assert [a.format for a in report.assets] == ["numpy-object"]


def test_npz_members_are_checked_by_content(scan):
    buffer = io.BytesIO()
    np.savez(buffer, clean=np.ones(3))
    from corpus import archives

    data = archives.make_zip({"clean.npy": npy(np.ones(3)), "evil.npy": b"\x93NUMPY" + b"junk", "x.npy": EVIL})
    report = scan("bundle.npz", data)
    assert {"MLO101", "MLO201"} <= rule_ids(report)


@pytest.mark.parametrize(
    "data",
    [
        b"cat\ndog\nmouse\n",
        b"import os\nimport sys\n",
        b"(a) first\n(b) second\n",
        b"INFO started\nERROR failed\n",
        b"class A:\n    pass\n",
        b"def f():\n    return 1\n",
        b"Sorted list\n",
        b"}{ not json",
    ],
)
def test_text_that_parses_for_a_few_opcodes_is_not_a_pickle(scan, data):
    report = scan("notes.txt", data)
    assert report.findings == [], [f.message for f in report.findings]


def test_names_that_cannot_be_imported_stop_the_load(scan):
    data = PickleBuilder(2).call("os", "system", "id").pop().global_("not a module", "x").stop().build()
    report = scan("x.pkl", data)
    assert {"MLO101", "MLO201"} <= rule_ids(report)


def test_git_lfs_pointer_is_not_a_silent_pass(scan):
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 1234\n"
    (finding,) = scan("pytorch_model.bin.pt", pointer).findings
    assert finding.rule.id == "MLO203" and "Git LFS pointer" in finding.message


def test_python2_long_literals_in_npy_headers(scan):
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 1L), }"
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\x00" * 16
    assert rule_ids(scan("w.npy", data)) == {"MLO001"}


def test_old_joblib_zfile_is_opened(scan):
    import zlib

    data = b"ZF" + hex(len(EVIL)).encode().ljust(19) + zlib.compress(EVIL)
    report = scan("model.pkl.z", data)
    assert [f.location.members for f in report.findings if f.rule.id == "MLO101"] == [("<zlib>",)]


def test_whitespace_padding_after_a_pickle_is_not_trailing_data(scan):
    report = scan("x.pkl", pickle.dumps([1, 2], protocol=2) + b"\n")
    assert worst(report) == Severity.INFO
