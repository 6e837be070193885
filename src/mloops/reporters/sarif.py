"""SARIF 2.1.0 for code-scanning dashboards.

A file under the working directory is named relative to it, under the ``SRCROOT`` base that
``originalUriBaseIds`` defines, so that code scanning maps it to the repository's file whether mloops was
given a relative or an absolute path; files elsewhere keep an absolute ``file:`` URI. A finding inside an
archive member or a nested stream points at the outer file (what code scanning can show), names the member path
as a logical location, and adds a related location in the member itself: a nested artifact of ``run.artifacts``
(its ``parentIndex`` the archive holding it) with the byte offset inside the member.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import PurePath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .. import __version__
from ..core import INLINE_SUPPRESSION, Finding, Report, Rule, Severity
from ..registry import all_rules
from ..sources.remote import is_remote
from . import audit_of

if TYPE_CHECKING:
    from ..audit.chains import Chain, ChainRule
    from ..audit.run import AuditReport

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub code scanning ranks security alerts by this 0-10 score.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.8",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.0",
    Severity.LOW: "2.0",
    Severity.INFO: "0.0",
}


SRCROOT = "SRCROOT"  # the working directory mloops ran in: a repository's root in CI


def artifact_location(path: str, root: str) -> dict[str, str]:
    """Where a file is, as code scanning maps it to a repository's file: a URI relative to ``root`` under the
    ``SRCROOT`` base, an absolute ``file:`` URI only for files outside it, and URLs (probe targets, registry
    and bucket objects) as they are."""
    if is_remote(path):  # a URL, models:/, runs:/, mlflow://: already a URI
        return {"uri": path}
    absolute = os.path.abspath(path)
    if os.path.commonpath([absolute, root]) != root:
        return {"uri": PurePath(absolute).as_uri()}
    return {"uri": quote(PurePath(os.path.relpath(absolute, root)).as_posix(), safe="/"), "uriBaseId": SRCROOT}


def _rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.description},
        "help": {
            "text": f"{rule.description}\n\nFix: {rule.remediation}",
            "markdown": (
                f"{rule.description}\n\n**Impact:** {rule.capability.description}.\n\n"
                f"**Attack chain:** {rule.attack_class.chain}\n\n**Fix:** {rule.remediation}"
            ),
        },
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        "properties": {
            "tags": ["security", rule.attack_class.slug, rule.capability.slug],
            "security-severity": _SECURITY_SEVERITY[rule.severity],
            "precision": "high",
        },
    }


def _fingerprint(finding: Finding) -> str:
    loc = finding.location
    key = "\x00".join([finding.rule.id, loc.path, *loc.members, str(loc.offset), finding.message])
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class Artifacts:
    """``run.artifacts``: every archive holding a member a finding sits in, and each member nested under its
    parent (a member's URI is its path inside the parent, from a leading slash, as SARIF's nesting has it)."""

    def __init__(self) -> None:
        self.listed: list[dict[str, Any]] = []
        self._index: dict[tuple[str, tuple[str, ...]], int] = {}

    def index(self, path: str, members: tuple[str, ...]) -> int:
        key = (path, members)
        if key not in self._index:
            if members:
                parent = self.index(path, members[:-1])
                entry = {"location": {"uri": "/" + quote(members[-1], safe="/")}, "parentIndex": parent}
            else:
                entry = {"location": artifact_location(path, os.getcwd())}
            self._index[key] = len(self.listed)
            self.listed.append(entry)
        return self._index[key]


def _location(finding: Finding, artifacts: Artifacts) -> tuple[dict[str, Any], dict[str, Any]]:
    """A finding's SARIF location, and the properties that say what SARIF cannot (a member, its offset)."""
    loc = finding.location
    physical: dict[str, Any] = {"artifactLocation": artifact_location(loc.path, os.getcwd())}
    if not loc.members and loc.offset is not None:
        physical["region"] = {"byteOffset": loc.offset}
    location: dict[str, Any] = {"physicalLocation": physical}
    properties: dict[str, Any] = {
        "severity": finding.severity.label,
        "attack_class": finding.attack_class.slug,
        "capability": finding.capability.slug,
        "evidence": finding.evidence,
    }
    if loc.members:
        physical["artifactLocation"]["index"] = artifacts.index(loc.path, ())
        location["logicalLocations"] = [
            {"name": loc.members[-1], "fullyQualifiedName": "!".join(loc.members), "kind": "resource"}
        ]
        properties["member_path"] = list(loc.members)
        if loc.offset is not None:
            properties["member_byte_offset"] = loc.offset
    return location, properties


def _member_location(finding: Finding, artifacts: Artifacts) -> dict[str, Any]:
    """The finding where it sits: the innermost member, as a nested artifact, at its offset there."""
    loc = finding.location
    index = artifacts.index(loc.path, loc.members)
    physical: dict[str, Any] = {"artifactLocation": {"uri": artifacts.listed[index]["location"]["uri"], "index": index}}
    if loc.offset is not None:
        physical["region"] = {"byteOffset": loc.offset}
    return {"id": 1, "physicalLocation": physical, "message": {"text": f"in {loc.nested_name}"}}


def _result(finding: Finding, index: dict[str, int], artifacts: Artifacts) -> dict[str, Any]:
    location, properties = _location(finding, artifacts)
    related = [_member_location(finding, artifacts)] if finding.location.members else []
    return {
        "ruleId": finding.rule.id,
        "ruleIndex": index[finding.rule.id],
        "level": _LEVEL[finding.severity],
        "message": {"text": f"{finding.message}. Fix: {finding.remediation}"},
        "locations": [location],
        **({"relatedLocations": related} if related else {}),
        "partialFingerprints": {"mloopsFinding/v1": _fingerprint(finding), "mloopsStable/v1": finding.stable_key()},
        "properties": properties,
        **({"suppressions": [_suppression(finding.suppressed)]} if finding.suppressed else {}),
    }


def _suppression(reason: str) -> dict[str, str]:
    """An accepted finding: in the source (an inline ignore comment) or outside it (a baseline)."""
    return {"kind": "inSource" if reason.startswith(INLINE_SUPPRESSION) else "external", "justification": reason}


def _chain_rule(rule: ChainRule) -> dict[str, Any]:
    return {
        "id": f"chain/{rule.id}",
        "name": rule.name,
        "shortDescription": {"text": f"Attack chain: {rule.name}"},
        "fullDescription": {"text": f"From {rule.entry} to {rule.jewel}. Then: {rule.after}."},
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        "properties": {"tags": ["security", "attack-chain"], "security-severity": _SECURITY_SEVERITY[rule.severity]},
    }


def _chain_result(chain: Chain, report: AuditReport, index: dict[str, int], artifacts: Artifacts) -> dict[str, Any]:
    """A chain as one result whose code flow walks its steps, each at the location of the finding that proves
    it; the result itself sits at the entry."""
    nodes = report.graph.nodes
    steps = []
    for edge in chain.edges:
        location, _ = _location(edge.finding, artifacts)
        text = f"{nodes[edge.source].label} -> {nodes[edge.target].label} ({edge.kind}, {edge.finding.rule.id})"
        steps.append({"location": {**location, "message": {"text": text}}})
    rule = chain.rule
    key = "\x00".join([rule.id, *(_fingerprint(edge.finding) for edge in chain.edges)])
    return {
        "ruleId": f"chain/{rule.id}",
        "ruleIndex": index[f"chain/{rule.id}"],
        "level": _LEVEL[rule.severity],
        "message": {"text": f"Attack chain {rule.name}: {rule.entry} -> {rule.jewel}"},
        "locations": [steps[0]["location"]],
        "codeFlows": [{"threadFlows": [{"locations": steps}]}],
        "partialFingerprints": {"mloopsChain/v1": hashlib.sha256(key.encode()).hexdigest()[:32]},
        "properties": {"severity": rule.severity.label},
    }


def render(report: Report, fail_on: Severity) -> str:
    rules = [_rule(rule) for rule in all_rules()]
    audit = audit_of(report)
    if audit:
        from ..audit.chains import chain_rules

        rules += [_chain_rule(rule) for rule in chain_rules()]
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    artifacts = Artifacts()
    results = [_chain_result(chain, audit, index, artifacts) for chain in audit.chains] if audit else []
    results += [_result(finding, index, artifacts) for finding in report.findings]
    document = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mloops",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": PurePath(os.getcwd()).as_uri().rstrip("/") + "/"}},
                "invocations": [
                    {
                        "executionSuccessful": not report.has_operational_errors,
                        "exitCode": report.exit_code(fail_on),
                        "workingDirectory": {"uri": PurePath(os.getcwd()).as_uri() + "/"},
                    }
                ],
                **({"artifacts": artifacts.listed} if artifacts.listed else {}),
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"
