from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from corpus.scanning import scan_bytes

from mloops.core import Finding, Report, Severity


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, keep tests marked xdist_group on one worker (the oracle's zygote costs 15 s
    and 1.5 GB each), whatever distribution the command line asked for. The CLI's result cache goes to a
    folder of this run, never the user's."""
    if getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"
    os.environ["MLOOPS_CACHE_DIR"] = tempfile.mkdtemp(prefix="mloops-test-cache-")


def worst(report: Report) -> Severity:
    return max((f.severity for f in report.findings), default=Severity.INFO)


def rule_ids(report: Report) -> set[str]:
    return {f.rule.id for f in report.findings}


def findings_at_least(report: Report, severity: Severity) -> list[Finding]:
    return [f for f in report.findings if f.severity >= severity]


@pytest.fixture
def scan(tmp_path: Path):
    """Write bytes under a name and scan them."""
    return lambda name, data: scan_bytes(tmp_path, name, data)
