"""Baselines: the findings a team has accepted, kept by a fingerprint that survives edits around them (rule,
file, member and evidence; no byte offset or line), so that a later scan reports only what is new. Accepted
findings stay in every report, marked suppressed, and leave the exit code alone. A scan that failed (an
operational finding) is never accepted."""

from __future__ import annotations

import json

from .core import Report, UsageError

FORMAT = "mloops-baseline"
VERSION = 1


def baseline_text(report: Report) -> str:
    """The baseline of every finding of ``report`` (accepted ones included), as its JSON file."""
    keys = sorted({f.stable_key() for f in report.findings if not f.rule.operational})
    return json.dumps({"format": FORMAT, "version": VERSION, "fingerprints": keys}, indent=1) + "\n"


def accept_baseline(report: Report, path: str) -> None:
    """Mark the findings of ``report`` that ``path`` accepted as suppressed; a finding new since is left as it is."""
    accepted = _fingerprints(path)
    reason = f"accepted in the baseline {path}"
    for result in report.files:
        result.findings = [
            finding._replace(suppressed=reason)
            if not finding.rule.operational and finding.stable_key() in accepted
            else finding
            for finding in result.findings
        ]


def _fingerprints(path: str) -> frozenset[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the baseline ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise UsageError(f"{path}: not a baseline (not JSON)") from exc
    ours = isinstance(data, dict) and data.get("format") == FORMAT and data.get("version") == VERSION
    keys = data.get("fingerprints") if ours else None
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise UsageError(f"{path}: not a baseline of this mloops (write one with --write-baseline)")
    return frozenset(keys)
