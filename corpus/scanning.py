"""Runners the tests and the benchmarks share: write an input into a folder and scan it with ``scan_path``."""

from __future__ import annotations

from pathlib import Path

from mloops import scan_path
from mloops.core import FileResult, Report


def scan_bytes(tmp_path: Path, name: str, data: bytes) -> Report:
    path = tmp_path / name
    path.write_bytes(data)
    return scan_path(str(path))


def scan_text(tmp_path: Path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return scan_path(str(path))


def write_fixtures(folder: Path, work: Path) -> Path:
    """Every malicious and benign fixture of the tests, written into ``folder`` (``work`` holds what building them
    needs, and the marker a payload would create)."""
    from . import benign, malicious

    for case in malicious.ALL:
        malicious.write(case, folder, work, work / "marker", companions_to=work)
    for case in benign.ALL:
        benign.write(case, folder, work)
    return folder


def verdict(scanned: Report | FileResult) -> list[tuple]:
    """What a scan found, without where the file lives: rule, severity, members and offset of every finding."""
    return sorted((f.rule.id, f.severity, f.location.members, f.location.offset) for f in scanned.findings)
