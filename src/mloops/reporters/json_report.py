"""One JSON document per scan; its shape is documented in the README (schema_version 1)."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from .. import __version__, formats
from ..core import Finding, ProbeReport, RemoteResult, Report, Severity
from . import audit_of

if TYPE_CHECKING:
    from ..audit.graph import Edge
    from ..audit.run import AuditReport

SCHEMA_VERSION = 1


def finding_dict(finding: Finding) -> dict[str, Any]:
    loc = finding.location
    return {
        "rule_id": finding.rule.id,
        "rule_name": finding.rule.name,
        "title": finding.rule.title,
        "severity": finding.severity.label,
        "attack_class": finding.attack_class.slug,
        "capability": finding.capability.slug,
        "message": finding.message,
        "location": {"path": loc.path, "members": list(loc.members), "offset": loc.offset, "display": str(loc)},
        "evidence": finding.evidence,
        "why": finding.rule.description,
        "impact": finding.capability.description,
        "attack_chain": finding.attack_class.chain,
        "remediation": finding.remediation,
        "suppressed": finding.suppressed,  # why an accepted finding is not counted; null when it is
    }


def render(report: Report, fail_on: Severity) -> str:
    files = []
    for result in report.files:
        worst = max((f.severity for f in result.findings), default=None)
        files.append(
            {
                "path": result.path,
                "format": formats.primary_format(result),
                "verdict": formats.verdict(result),
                "formats": result.formats,
                "max_severity": None if worst is None else worst.label,
                "findings": len(result.findings),
                **({"remote": _remote(result)} if isinstance(result, RemoteResult) else {}),
                **({"origin": result.origin} if result.origin else {}),
            }
        )
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "mloops", "version": __version__},
        "fail_on": fail_on.label,
        "exit_code": report.exit_code(fail_on),
        "summary": {
            "subject": report.subject,  # files (scan), endpoints (probe), environment (audit-env)
            "files": len(report.files),
            "assets": len(report.assets),
            "duration_seconds": round(report.duration_seconds, 3),
            "findings": {severity.label: count for severity, count in report.counts().items()},
            "formats": dict(sorted(Counter(asset.format for asset in report.assets).items())),
            "files_by_format": formats.summarize(report.files),
            "inventory": formats.inventory(report),
            "dataset_folders": report.dataset_folders,
            "excluded": report.excluded,  # local files the configuration's exclude left out
            **({"endpoints_probed": report.probed} if isinstance(report, ProbeReport) else {}),
        },
        "files": files,
        "findings": [finding_dict(f) for f in report.findings],
    }
    audit = audit_of(report)
    if audit:
        document.update(_audit(audit))
    return json.dumps(document, indent=2) + "\n"


def _remote(result: RemoteResult) -> dict[str, Any]:
    """What a remote scan read of the object: the verdict's cost in bytes and requests."""
    return {
        "size": result.size,
        "bytes_read": result.bytes_read,
        "requests": result.requests,
        "version": result.version,
    }


def _audit(report: AuditReport) -> dict[str, Any]:
    """The attack graph (each edge with the finding that proves it), the chains and the fewest fixes."""
    return {
        "graph": {
            "nodes": [{"id": node.id, "kind": node.kind, "label": node.label} for node in report.graph.nodes.values()],
            "edges": [_edge(edge, finding_dict(edge.finding)) for edge in report.graph.edges],
        },
        "chains": [
            {
                "id": chain.rule.id,
                "name": chain.rule.name,
                "severity": chain.rule.severity.label,
                "entry": chain.rule.entry,
                "jewel": chain.rule.jewel,
                "after": chain.rule.after,
                "steps": [_edge(edge, finding_dict(edge.finding)) for edge in chain.edges],
            }
            for chain in report.chains
        ],
        "feature_map": [entry._asdict() for entry in report.features],
        "chains_left_out": {rule: left._asdict() for rule, left in report.left_out.items()},
        "cut": {
            "exact": report.cut.exact,
            "fixes": [{**finding_dict(fix), "breaks": report.breaks(fix)} for fix in report.cut.fixes],
            "unbreakable": [chain.rule.id for chain in report.cut.unbreakable],
        },
    }


def _edge(edge: Edge, finding: dict[str, Any]) -> dict[str, Any]:
    return {"source": edge.source, "target": edge.target, "kind": edge.kind, "finding": finding}
