"""safetensors: clean files from the real library are a safe format; every broken header is a finding."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from corpus import safe_formats
from corpus.safe_formats import (
    OVERFLOWING_SHAPES,
    many_tensors_safetensors,
    safetensors_bytes,
    sparse_four_gib_safetensors,
    tensor,
)

from mloops import scan_path
from mloops.core import Severity
from mloops.limits import Limits
from mloops.models import safetensors as analyzer
from mloops.sniff import sniff

from .conftest import rule_ids, worst


def only_safe_note(report) -> bool:
    return [f.rule.id for f in report.findings] == ["MLO001"] and [a.format for a in report.assets] == ["safetensors"]


def reference_refuses(path: Path) -> bool:
    """The real reader (Rust, through the Python binding) on the same bytes; a data-only load."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            handle.keys()
    except Exception:  # noqa: BLE001 - any refusal counts
        return True
    return False


# ------------------------------------------------------------------ benign files from the library


@pytest.mark.parametrize("name", sorted(safe_formats.torch_safetensors()))
def test_files_written_by_safetensors_torch_are_a_clean_safe_format(scan, name):
    report = scan(name, safe_formats.torch_safetensors()[name])
    assert only_safe_note(report), [f.message for f in report.findings]
    assert report.findings[0].severity == Severity.INFO


def test_files_written_by_safetensors_numpy_are_a_clean_safe_format(scan):
    assert only_safe_note(scan("arrays.safetensors", safe_formats.numpy_safetensors()))


def test_recognised_by_content_whatever_the_name(scan):
    report = scan("weights.bin", safe_formats.torch_safetensors()["single.safetensors"])
    assert only_safe_note(report)


def test_header_that_starts_like_a_pickle_is_a_clean_safetensors_file(scan):
    # 0x280 bytes of header: the length field begins 80 02, a pickle protocol-2 header.
    header = json.dumps({"w": tensor("F32", [1], 0, 4)}).encode().ljust(0x280)
    data = safetensors_bytes(header, b"\x00" * 4)
    assert data[:2] == b"\x80\x02"
    assert only_safe_note(scan("model.safetensors", data))


def test_whitespace_before_the_header_object_is_accepted_as_the_reader_does(scan, tmp_path):
    data = safetensors_bytes(b' \n\t{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', b"\x00" * 4)
    assert only_safe_note(scan("model.safetensors", data))
    (tmp_path / "ref.safetensors").write_bytes(data)
    assert not reference_refuses(tmp_path / "ref.safetensors")


@pytest.mark.parametrize(
    "head",
    [
        b'{"a": 1, "b": [1, 2, 3]}',
        b"# README\n\nsome text that goes on for a while",
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.",
        b"\x00" * 64,
        struct.pack("<Q", 1 << 62) + b'{"x": 1}',
    ],
)
def test_detection_does_not_claim_other_content(head):
    assert not analyzer.detect(head, "model.safetensors")
    assert "safetensors" not in sniff(head, "model.safetensors")


# ------------------------------------------------------------------ broken headers

F32 = tensor("F32", [2], 0, 8)
EIGHT = b"\x00" * 8

BROKEN: dict[str, tuple[bytes, str, dict[str, str]]] = {
    # name: (file bytes, rule, evidence that must appear)
    "overlapping ranges": (
        safetensors_bytes({"a": F32, "b": tensor("F32", [1], 4, 8)}, EIGHT),
        "MLO201",
        {"tensor": "b", "overlaps": "a"},
    ),
    "gap between tensors": (
        safetensors_bytes({"a": tensor("F32", [1], 0, 4), "b": tensor("F32", [1], 8, 12)}, b"\x00" * 12),
        "MLO201",
        {"tensor": "b", "gap": "[4, 8]"},
    ),
    "range past the data section": (
        safetensors_bytes({"a": tensor("F32", [4], 0, 16)}, EIGHT),
        "MLO201",
        {"tensor": "a", "data_size": "8"},
    ),
    "dtype and shape disagree with the range": (
        safetensors_bytes({"a": tensor("F64", [2], 0, 8)}, EIGHT),
        "MLO201",
        {"tensor": "a", "expected": "16"},
    ),
    "range that ends before it begins": (
        safetensors_bytes({"a": tensor("F32", [0], 8, 0), "b": F32}, EIGHT),
        "MLO201",
        {"tensor": "a", "data_offsets": "[8, 0]"},
    ),
    "sub-byte tensor ending mid-byte": (
        safetensors_bytes({"a": tensor("F4", [3], 0, 2)}, b"\x00\x00"),
        "MLO201",
        {"tensor": "a", "dtype": "F4"},
    ),
    "non-string metadata": (
        safetensors_bytes({"__metadata__": {"format": "pt", "n": 3}, "a": F32}, EIGHT),
        "MLO201",
        {"key": "n", "type": "number"},
    ),
    "metadata that is no map": (
        safetensors_bytes({"__metadata__": ["pt"], "a": F32}, EIGHT),
        "MLO201",
        {"type": "array"},
    ),
    "unknown dtype": (
        safetensors_bytes({"a": tensor("F128", [1], 0, 16)}, b"\x00" * 16),
        "MLO201",
        {"dtype": "'F128'"},
    ),
    "negative dimension": (
        safetensors_bytes({"a": tensor("F32", [-2], 0, 8)}, EIGHT),
        "MLO201",
        {"shape": "[-2]"},
    ),
    "fractional offsets": (
        safetensors_bytes(b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8.0]}}', EIGHT),
        "MLO201",
        {"data_offsets": "[0, 8.0]"},
    ),
    "missing field": (
        safetensors_bytes({"a": {"dtype": "F32", "data_offsets": [0, 8]}}, EIGHT),
        "MLO201",
        {"missing": "shape"},
    ),
    "shape product overflowing 64 bits": (
        safetensors_bytes({"a": tensor("F32", [1 << 32, 1 << 32, 0], 0, 0)}),
        "MLO201",
        {"tensor": "a"},
    ),
    "header length past the end of the file": (
        struct.pack("<Q", 4096) + b'{"a": {"dtype": "F32"',
        "MLO201",
        {"header_length": "4096"},
    ),
    "huge header length claim": (
        struct.pack("<Q", 1 << 39) + b'{"a": {}}',
        "MLO201",
        {"header_length": str(1 << 39)},
    ),
    "header length one over the reader's limit": (
        struct.pack("<Q", analyzer.MAX_HEADER_BYTES + 1) + b'{"a": {}}',
        "MLO201",
        {"header_length": str(analyzer.MAX_HEADER_BYTES + 1)},
    ),
    "invalid JSON": (safetensors_bytes(b'{"a": {"dtype": "F32",,}}'), "MLO201", {}),
    "NaN in the header": (safetensors_bytes(b'{"a": {"dtype": "F32", "shape": [NaN]}}'), "MLO201", {}),
    "bytes after the JSON": (safetensors_bytes(b'{"a": {"dtype": "F32"}}\x00\x00'), "MLO201", {}),
    "invalid UTF-8": (safetensors_bytes(b'{"\xff": {}}'), "MLO201", {"byte": "0xff"}),
    "lone surrogate": (
        safetensors_bytes(b'{"\\ud800": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', EIGHT),
        "MLO201",
        {"string": "\\ud800"},
    ),
    "repeated __metadata__": (
        safetensors_bytes(b'{"__metadata__": {}, "__metadata__": {}, "a": {"dtype": "F32", "shape": [2]}}'),
        "MLO201",
        {"key": "__metadata__"},
    ),
    "repeated field in a tensor": (
        safetensors_bytes(b'{"a": {"dtype": "F32", "dtype": "F64", "shape": [2], "data_offsets": [0, 8]}}', EIGHT),
        "MLO201",
        {"key": "dtype"},
    ),
    "bytes after the last tensor": (
        safetensors_bytes({"a": F32}, EIGHT + b"MZ\x90\x00payload"),
        "MLO202",
        {"trailing_bytes": "11"},
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_header_is_a_finding_with_evidence(scan, tmp_path, name):
    data, rule, evidence = BROKEN[name]
    report = scan("model.safetensors", data)
    assert rule in rule_ids(report), [f.message for f in report.findings]
    assert "MLO903" not in rule_ids(report) and "MLO001" not in rule_ids(report)
    assert worst(report) >= Severity.HIGH
    finding = next(f for f in report.findings if f.rule.id == rule and evidence.items() <= f.evidence.items())
    assert finding.message.startswith("safetensors: ")
    # The reference reader refuses every one of them too: these are real breaks, not style.
    (tmp_path / "ref.safetensors").write_bytes(data)
    assert reference_refuses(tmp_path / "ref.safetensors")


# The reference reader accepts these, but they let readers disagree; mloops fails closed.
STRICTER = {
    "same tensor listed twice": b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, '
    b'"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}',
    "tensor given as an array": b'{"a": ["F32", [2], [0, 8]]}',
    "dtype given as an object": b'{"a": {"dtype": {"F32": null}, "shape": [2], "data_offsets": [0, 8]}}',
}


@pytest.mark.parametrize("name", sorted(STRICTER))
def test_headers_only_the_lenient_reader_accepts_are_reported(scan, tmp_path, name):
    data = safetensors_bytes(STRICTER[name], EIGHT)
    (tmp_path / "ref.safetensors").write_bytes(data)
    assert not reference_refuses(tmp_path / "ref.safetensors")
    assert rule_ids(scan("model.safetensors", data)) == {"MLO201"}


def test_every_truncation_of_a_real_file_is_a_finding(scan):
    data = safe_formats.torch_safetensors()["model.safetensors"]
    header_end = 8 + struct.unpack("<Q", data[:8])[0]
    for cut in sorted({9, 16, header_end // 2, header_end - 1, header_end, header_end + 1, len(data) - 1}):
        report = scan("model.safetensors", data[:cut])
        assert worst(report) >= Severity.HIGH, cut
        assert "MLO903" not in rule_ids(report), cut


def test_lone_surrogates_stay_printable_in_reports(scan):
    report = scan("model.safetensors", BROKEN["lone surrogate"][0])
    for finding in report.findings:
        json.dumps(finding.evidence, ensure_ascii=False).encode("utf-8")
        finding.message.encode("utf-8")


def test_a_header_broken_everywhere_yields_a_bounded_report(scan):
    header = {f"t{i}": tensor("F32", [1], 8 * i, 8 * i + 4) for i in range(5000)}
    report = scan("model.safetensors", safetensors_bytes(header, b"\x00" * 40000))
    cap = Limits().max_findings_per_rule
    malformed = [f for f in report.findings if f.rule.id == "MLO201"]
    assert len(malformed) == cap + 1  # every tensor after the first is misplaced: the cap, then one summary line
    (summary,) = [f for f in malformed if "not_listed" in f.evidence]
    assert summary.evidence["not_listed"] == str(4999 - cap)


# ------------------------------------------------------------------ hostile sizes


# How fast these are checked (the data never read, no big arithmetic) is measured by bench/unit_speed.py.
def test_huge_data_section_is_valid(tmp_path):
    assert only_safe_note(scan_path(str(sparse_four_gib_safetensors(tmp_path / "big.safetensors"))))


def test_many_tensors_are_valid(scan):
    assert only_safe_note(scan("model.safetensors", many_tensors_safetensors()))


@pytest.mark.parametrize("name", OVERFLOWING_SHAPES)
def test_shape_overflow_is_reported(scan, name):
    report = scan("model.safetensors", safetensors_bytes({"a": tensor("F32", OVERFLOWING_SHAPES[name], 0, 0)}))
    assert "overflows a 64-bit byte count" in report.findings[0].message


def test_claimed_header_of_two_to_the_sixty_is_no_safetensors_but_still_fails_closed(scan):
    report = scan("model.safetensors", struct.pack("<Q", 1 << 60) + b'{"a": {}}')
    assert rule_ids(report) == {"MLO203"}
