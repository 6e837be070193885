"""The full JSON and SARIF reports of the demo workspace, kept as reviewed files: a restructuring of the code
must not change what a user reads, and a deliberate change shows up here as a diff to review.

Regenerate after a reviewed change with ``python tests/test_demo_report.py --write``."""

from __future__ import annotations

import contextlib
import json
import pathlib
import re
import sys
import tempfile

from mloops.core import Severity
from mloops.demo import build_workspace
from mloops.reporters import reporter
from mloops.scan import scan_path

KEPT = pathlib.Path(__file__).parent / "data"


def normalized_reports() -> dict[str, str]:
    """Each report of a fresh demo workspace scanned by a relative path (so that paths and the SARIF
    fingerprints made from them are stable), with timings replaced."""
    with tempfile.TemporaryDirectory(prefix="mloops-demo-") as folder, contextlib.chdir(folder):
        build_workspace("demo")
        report = scan_path("demo")
        texts = {name: reporter(name)(report, Severity.HIGH).replace(folder, "<cwd>") for name in ("json", "sarif")}
    return {
        name: json.dumps(_without_timings(json.loads(text)), indent=1, sort_keys=True) + "\n"
        for name, text in texts.items()
    }


def _without_timings(value: object) -> object:
    if isinstance(value, dict):
        return {k: "<seconds>" if re.search(r"duration|seconds", k) else _without_timings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def test_demo_reports_are_as_reviewed():
    for name, text in normalized_reports().items():
        kept = (KEPT / f"demo_report.{name}").read_text()
        assert text == kept, f"{name} report changed: review the diff, then run {__file__} --write"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    for name, text in normalized_reports().items():
        (KEPT / f"demo_report.{name}").write_text(text)
