"""Human-readable report, grouped by file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import __version__, formats
from ..core import Finding, ProbeReport, Report, Severity
from . import audit_of

if TYPE_CHECKING:
    from ..audit.run import AuditReport

WIDTH = 100


def _wrap(label: str, text: str) -> list[str]:
    lead = f"    {label:<9} "
    return _fill(text, lead, " " * len(lead))


def _fill(text: str, lead: str, indent: str) -> list[str]:
    """Greedy word wrap at WIDTH; runs of spaces inside a line are kept (evidence items are two apart)."""
    lines: list[str] = []
    line, empty = lead, True
    for word in text.translate(_WHITESPACE).split(" "):
        if empty:
            if word:  # a line never starts with spaces
                line, empty = line + word, False
        elif word and len(line) + 1 + len(word) > WIDTH:
            lines.append(line.rstrip())
            line = indent + word
        else:
            line += " " + word
    lines.append(line.rstrip() if not empty else line)
    return lines


_WHITESPACE = str.maketrans("\t\n\r\v\f", "     ")


def _finding(finding: Finding, explained: set[str]) -> list[str]:
    where = "" if finding.location.offset is None else f" @ byte {finding.location.offset}"
    member = "!".join(finding.location.members)
    inside = f"  in {member}" if member else ""
    lines = [f"  {finding.severity.name:<8} {finding.rule.id} {finding.rule.name}{inside}{where}"]
    lines += _wrap("", finding.message)
    if finding.evidence:
        lines += _wrap("evidence:", "  ".join(f"{k}={v}" for k, v in finding.evidence.items()))
    if finding.severity > Severity.INFO:
        lines += _wrap("impact:", f"{finding.capability.slug}: {finding.capability.description}")
        if finding.rule.id not in explained:  # the fix is the same for every finding of a rule
            explained.add(finding.rule.id)
            lines += _wrap("fix:", finding.remediation)
    return lines


def _format_summary(report: Report) -> list[str]:
    table = formats.summarize(report.files)
    if not table:
        return []
    width = max(len(name) for name in table) + 2
    lines = [f"{'Files by format':<{width}}{'safe':>8}{'code, clean':>13}{'findings':>10}"]
    for name, counts in table.items():
        lines.append(f"  {name:<{width - 2}}{counts['safe']:>8}{counts['code']:>13}{counts['findings']:>10}")
    lines.append("  (safe: data-only format; code, clean: can run code by design, nothing found)")
    return [*lines, ""]


_INVENTORY_WORDS = {
    "model_files": "model file(s)",
    "dataset_folders": "dataset folder(s)",
    "dataset_loading_scripts": "dataset loading script(s)",
    "data_files": "data file(s)",
    "notebooks": "notebook(s)",
    "source_files": "source file(s)",
    "deployment_files": "deployment file(s)",
    "other_files": "other file(s)",
}


def _inventory_lines(report: Report) -> list[str]:
    counts = formats.inventory(report)
    lines = ["Scanned:"]
    for key, words in _INVENTORY_WORDS.items():
        item = f" {counts[key]} {words}" + ("," if key != "other_files" else "")
        if len(lines[-1]) + len(item) > WIDTH:
            lines.append(" ")
        lines[-1] += item
    return lines


def _header(report: Report) -> str:
    took = f"in {report.duration_seconds:.2f} s"
    if isinstance(report, ProbeReport):
        return f"mloops {__version__}: {report.probed} endpoint(s) probed, {len(report.files)} answered, {took}"
    if report.subject == "runtime":
        return f"mloops {__version__}: runtime inspected {took}"
    if report.subject == "estate":
        return f"mloops {__version__}: {len(report.files)} file(s) and endpoint(s) audited {took}"
    if report.subject == "environment":
        packages = sum(len(result.assets) for result in report.files)
        return f"mloops {__version__}: {packages} ML package(s) audited {took}"
    return f"mloops {__version__}: {len(report.files)} file(s) scanned {took}"


def _platform_lines(report: Report) -> list[str]:
    found = [
        f"{asset.format} at {result.path}"
        for result in report.files
        for asset in result.assets
        if asset.format != "http-service"
    ]
    return _fill("Platforms: " + (", ".join(found) or "none recognised"), "", "  ")


def _chain_lines(report: AuditReport) -> list[str]:
    """Chains first: each as numbered steps naming the finding that proves them, then the fewest fixes."""
    nodes = report.graph.nodes
    walked = report.paths
    out = [
        f"Attack chains: {len(report.chains)}"
        + (f", along {len(walked)} path(s)" if len(walked) < len(report.chains) else "")
    ]
    for path in walked:
        rule = path.rule
        out += _fill(f"{rule.severity.name:<8} {rule.id}: {rule.name}", "  ", "           ")
        out += _wrap("entry:", rule.entry) + _wrap("reaches:", rule.jewel)
        for number, ((source, target, kind), proofs) in enumerate(zip(path.steps, path.proofs, strict=True), 1):
            step = f"{nodes[source].label} -> {nodes[target].label} ({kind})"
            proof = " or ".join(f"{finding.rule.id} at {finding.location}" for finding in proofs)
            out += _fill(f"{number}. {step}; proved by {proof}", "      ", "         ")
        out += _wrap("then:", rule.after)
    for rule_id, left in sorted(report.left_out.items()):
        out.append(f"  ... and {'at least ' if left.at_least else ''}{left.number} more {rule_id} chain(s), not listed")
    if report.chains:
        cut = report.cut
        how = "the fewest possible" if cut.exact else "found greedily: few, perhaps not the fewest"
        listed = " listed" if report.left_out else ""
        out.append(f"Fixes that break every{listed} breakable chain ({len(cut.fixes)}, {how}):")
        for fix in cut.fixes:
            out += _fill(f"- {fix.rule.id} at {fix.location}: {fix.remediation}", "  ", "    ")
        for chain in cut.unbreakable:
            out.append(f"  {chain.rule.id} has no step a fix removes")
    if report.features:
        out += ["", "Feature map (what each platform feature found hands an attacker):"]
    for entry in report.features:
        out += _fill(f"{entry.feature} at {entry.where}", "  ", "    ")
        out += _wrap("can:", entry.can) + _wrap("then:", entry.after) + _wrap("victims:", "; ".join(entry.victims))
    return [*out, ""]


def render(report: Report, fail_on: Severity) -> str:
    out = [_header(report), ""]
    audit = audit_of(report)
    if audit:
        out += _chain_lines(audit)
    chains = {}
    for result in report.files:
        if not any(finding.suppressed is None for finding in result.findings):
            continue
        out.append(result.path if result.origin is None else f"{result.path} ({result.origin})")
        explained: set[str] = set()
        for finding in sorted(result.findings, key=Finding.sort_key):
            if finding.suppressed is not None:
                continue  # accepted: counted below, listed in JSON and SARIF
            out += _finding(finding, explained)
            if finding.severity >= Severity.MEDIUM:
                chains[finding.attack_class.slug] = finding.attack_class.chain
        out.append("")
    for slug, chain in sorted(chains.items()):
        out += [*_fill(f"Attack chain ({slug}): {chain}", "", ""), ""]
    if report.subject in ("files", "estate"):
        out += _format_summary(report)
        out += _inventory_lines(report)
    elif report.subject == "endpoints":
        out += _platform_lines(report)
    if report.suppressed_count:
        out.append(f"Suppressed: {report.suppressed_count} accepted finding(s) not listed (JSON and SARIF list them)")
    if report.excluded:
        out.append(f"Excluded: {report.excluded} file(s) left out by the configuration's exclude")
    counts = report.counts()
    summary = ", ".join(f"{count} {severity.label}" for severity, count in counts.items())
    out.append(f"Summary: {summary}; exit {report.exit_code(fail_on)} (fail on {fail_on.label})")
    return "\n".join(out) + "\n"
