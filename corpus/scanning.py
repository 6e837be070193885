"""Runners the tests and the benchmarks share: write an input into a folder and scan it with ``scan_path``."""

from __future__ import annotations

from pathlib import Path

from mloops import scan_path
from mloops.core import Report


def scan_bytes(tmp_path: Path, name: str, data: bytes) -> Report:
    path = tmp_path / name
    path.write_bytes(data)
    return scan_path(str(path))


def scan_text(tmp_path: Path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return scan_path(str(path))
