"""Every published technique: proven to run with the real loader, and reported HIGH or above."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import malicious, prove

from mloops import scan_path
from mloops.core import Severity

from .conftest import findings_at_least, worst


@pytest.fixture(params=malicious.ALL, ids=lambda case: case.name)
def built(request, tmp_path: Path):
    case = request.param
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    marker = tmp_path / "marker"
    return case, malicious.write(case, corpus, tmp_path, marker), marker


def test_payload_really_runs_with_the_real_loader(built):
    case, path, marker = built
    ran, stderr = prove.payload_runs(case.loader, path, marker)
    assert ran, f"{case.name}: the fixture did not run its payload under {case.loader}\n{stderr}"


def test_reported_high_or_above_with_exit_code_1(built):
    _, path, _ = built
    report = scan_path(str(path))
    assert worst(report) >= Severity.HIGH, [str(f.location) + " " + f.message for f in report.findings]
    assert report.exit_code(Severity.HIGH) == 1
    for finding in findings_at_least(report, Severity.HIGH):
        assert finding.message and finding.remediation
        assert finding.location.path == str(path)


def test_scanning_never_runs_the_payload(built):
    _, path, marker = built
    scan_path(str(path))
    assert not marker.exists()
