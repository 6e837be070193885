"""One audit: scan the paths and registries, probe the endpoints, read the runtime, then chain the findings."""

from __future__ import annotations

import functools
import os
import time
from typing import TYPE_CHECKING

from ..core import FileResult, Finding, Report, Severity
from .chains import Chain, ChainPath, Cut, LeftOut, broken_by, fewest_fixes, find_chains, paths
from .feature_map import feature_map
from .graph import Graph, build

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..cache import ResultCache

PROBE_CONCURRENCY = 16  # an audit names a few endpoints; a network sweep is mloops probe's job


class AuditReport(Report):
    """The results of every part of an audit, and the attack graph, chains and fixes drawn from them."""

    subject = "estate"

    def __init__(
        self,
        files: list[FileResult],
        duration_seconds: float,
        graph: Graph,
        chains: list[Chain],
        left_out: dict[str, LeftOut],
        dataset_folders: list[str],
    ) -> None:
        super().__init__(files, duration_seconds, dataset_folders)
        self.graph = graph
        self.chains = sorted(chains, key=lambda chain: (-chain.rule.severity, chain.rule.id))
        self.left_out = left_out  # chain rule id -> chains found past the per-rule limit, counted only
        self.cut: Cut = fewest_fixes(chains)
        self.features = feature_map(graph, files)  # each platform feature found: attack, aftermath, victims

    @functools.cached_property
    def paths(self) -> list[ChainPath]:
        """The chains as a reader reads them: those told apart only by a step's proof are one path."""
        return paths(self.chains)

    def breaks(self, fix: Finding) -> int:
        """How many chains fixing ``fix`` breaks."""
        return broken_by(fix, self.chains)

    def exit_code(self, fail_on: Severity) -> int:
        code = super().exit_code(fail_on)
        if code == 0 and any(chain.rule.severity >= fail_on for chain in self.chains):
            return 1
        return code


def audit(
    paths: list[str],
    endpoints: list[str],
    registries: list[str],
    timeout: float,
    cache: ResultCache | None,
    runtime: bool = False,
    exclude: Callable[[str], bool] | None = None,
    judge: Callable[[Report], None] | None = None,
) -> AuditReport:
    """``judge`` applies the team's decisions (configuration, baseline) before chains are drawn: an accepted
    finding is reported as suppressed and draws no edge."""
    from ..scan import scan_path

    started = time.monotonic()
    files: list[FileResult] = []
    folders: list[str] = []
    if paths or registries:
        scanned = scan_path(*paths, *registries, cache=cache, exclude=exclude)
        files += scanned.files
        folders = scanned.dataset_folders
    if endpoints:
        files += _probe(endpoints, timeout)
    if runtime:
        from ..deployments.inspect_runtime import inspect

        files += inspect("/").files
    if judge:
        judged = Report(files, 0)
        judge(judged)
        files = judged.files
    graph = build(files, os.environ.get("MLFLOW_TRACKING_URI"))
    chains, left_out = find_chains(graph)
    return AuditReport(files, time.monotonic() - started, graph, chains, left_out, folders)


def _probe(endpoints: list[str], timeout: float) -> list[FileResult]:
    from ..platforms import advisories, engine, fingerprints, targets

    named = targets.expand(endpoints, targets.parse_ports("default", fingerprints.default_ports()))
    catalog = fingerprints.fingerprints()
    return engine.run(named, catalog, advisories.bundled(), timeout, PROBE_CONCURRENCY, progress=False).files
