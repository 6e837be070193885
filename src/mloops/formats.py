"""What each format label means for the summary: data only, able to run code, or a container.

Each format declares its kind, title and group where it is analyzed (see ``registry.py``).
"""

from __future__ import annotations

from collections import Counter

from . import registry
from .core import FileResult, Report, Severity
from .registry import Format


def info(fmt: str) -> Format:
    """The declared format, or a plain "other" entry for labels that name no file format (a probed
    platform, an installed package)."""
    return registry.catalog().get(fmt) or Format(fmt, "other", fmt, "other")


def primary_format(result: FileResult) -> str:
    """The format a user would name the file by: the outermost layer that is not just compression."""
    for asset in result.assets:
        if info(asset.format).kind != "wrapper":
            return asset.format
    return result.assets[0].format if result.assets else "other"


def verdict(result: FileResult) -> str:
    """'findings', 'code' (able to run code by design, scanned clean), 'safe' or 'other'."""
    if any(finding.severity > Severity.INFO for finding in result.findings):
        return "findings"
    kinds = {info(asset.format).kind for asset in result.assets}
    if "code" in kinds:
        return "code"
    if "safe" in kinds:
        return "safe"
    return "other"


VERDICTS = ("safe", "code", "findings")


def summarize(results: list[FileResult]) -> dict[str, dict[str, int]]:
    """Files per primary format: data-only, able to run code but clean, or with findings."""
    table: dict[str, dict[str, int]] = {}
    for result in results:
        outcome = verdict(result)
        if outcome == "other":
            continue  # READMEs and other files that are no model
        fmt = primary_format(result) if result.assets else "unreadable"
        table.setdefault(fmt, dict.fromkeys(VERDICTS, 0))[outcome] += 1
    return dict(sorted(table.items()))


def inventory(report: Report) -> dict[str, int]:
    """What the scan covered: model files, dataset folders and loading scripts, data files, notebooks, sources."""
    groups = Counter(info(primary_format(result)).inventory_group for result in report.files)
    scripts = sum(1 for result in report.files if primary_format(result) == "dataset-script")
    return {
        "model_files": groups["model"],
        "dataset_folders": len(report.dataset_folders),
        "dataset_loading_scripts": scripts,
        "data_files": groups["data"],
        "notebooks": groups["notebook"],
        "source_files": groups["source"],
        "deployment_files": groups["deployment"],
        "other_files": groups["other"],
    }
