"""One self-contained HTML file: the attack chains drawn as a graph (SVG made here), the feature map, and a
findings table filtered by severity, surface and rule.

Every string that comes from scanned input (names, evidence, banners, notebook HTML) is escaped, and the page's
Content-Security-Policy lets only its own script run (by hash) and load nothing: the report of a malicious
notebook must not itself be an XSS. Nothing is fetched; the file opens offline.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import __version__
from ..core import Finding, Report, Severity
from . import audit_of

if TYPE_CHECKING:
    from ..audit.chains import Chain
    from ..audit.run import AuditReport

MAX_DRAWN_CHAINS = 60  # chains drawn in the graph; all are listed below it
BOX_WIDTH, BOX_HEIGHT, COLUMN_GAP, ROW_GAP, LABEL_CHARS = 250, 46, 130, 22, 38

# The page's only script: the findings filters. Its hash goes into the Content-Security-Policy.
SCRIPT = """
const rows = Array.from(document.querySelectorAll("#findings tbody tr"));
const filters = ["severity", "surface", "rule"].map((name) => document.getElementById("filter-" + name));
function apply() {
  const [severity, surface, rule] = filters.map((select) => select.value);
  let shown = 0;
  for (const row of rows) {
    const hide = (severity && Number(row.dataset.rank) < Number(severity)) ||
      (surface && row.dataset.surface !== surface) || (rule && row.dataset.rule !== rule);
    row.hidden = Boolean(hide);
    shown += hide ? 0 : 1;
  }
  document.getElementById("shown").textContent = String(shown);
}
for (const select of filters) select.addEventListener("change", apply);
apply();
"""
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1d2330; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; }
table { border-collapse: collapse; width: 100%; } td, th { border: 1px solid #d5d9e2; padding: 4px 8px;
vertical-align: top; text-align: left; } th { background: #eef1f6; }
.sev-critical { color: #fff; background: #a4161a; } .sev-high { color: #fff; background: #d9480f; }
.sev-medium { background: #fcc419; } .sev-low { background: #d3f9d8; } .sev-info { background: #e9ecef; }
.badge { padding: 1px 6px; border-radius: 4px; font-weight: 600; font-size: 12px; }
ol.steps li { margin: 2px 0; } code { font-size: 12px; word-break: break-all; }
svg text { font: 12px system-ui, sans-serif; } .filters select { margin-right: 12px; }
"""


_SUBJECTS = {"files": "file", "endpoints": "endpoint", "estate": "file and endpoint", "environment": "environment"}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _badge(severity: Severity) -> str:
    return f'<span class="badge sev-{severity.label}">{severity.label}</span>'


def render(report: Report, fail_on: Severity) -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    policy = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; img-src data:"
    counts = ", ".join(f"{count} {severity.label}" for severity, count in report.counts().items())
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
        f"<title>mloops {_e(__version__)} report</title><style>{STYLE}</style></head><body>",
        f"<h1>mloops {_e(__version__)} report: {len(report.files)} {_e(_SUBJECTS.get(report.subject, 'item'))}(s)</h1>",
        f"<p>Findings: {_e(counts)}; exit {report.exit_code(fail_on)} (fail on {_e(fail_on.label)}).</p>",
    ]
    audit = audit_of(report)
    if audit:
        parts += _chains_section(audit)
        parts += _feature_section(audit)
    parts += _findings_section(report.findings)
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def _chains_section(report: AuditReport) -> list[str]:
    out = [f'<h2 id="chains-title">Attack chains ({len(report.chains)})</h2>']
    if not report.chains:
        return [*out, "<p>No chain: no entry reaches a crown jewel through what was found.</p>"]
    out.append(_graph_svg(report, report.chains[:MAX_DRAWN_CHAINS]))
    if len(report.chains) > MAX_DRAWN_CHAINS:
        out.append(f"<p>The graph draws the first {MAX_DRAWN_CHAINS} chains; all are listed below.</p>")
    nodes = report.graph.nodes
    out.append('<ol id="chain-list">')
    for path in report.paths:
        rule = path.rule
        steps = "".join(
            f"<li>{_e(nodes[source].label)} &rarr; {_e(nodes[target].label)} <em>({_e(kind)})</em>: "
            + " or ".join(f"{_e(f.rule.id)} at <code>{_e(f.location)}</code>" for f in proofs)
            + "</li>"
            for (source, target, kind), proofs in zip(path.steps, path.proofs, strict=True)
        )
        out.append(
            f"<li>{_badge(rule.severity)} <strong>{_e(rule.name)}</strong>: from {_e(rule.entry)} to "
            f'{_e(rule.jewel)}.<ol class="steps">{steps}</ol>Then: {_e(rule.after)}.</li>'
        )
    out.append("</ol>")
    for rule_id, left in sorted(report.left_out.items()):
        out.append(f"<p>And {'at least ' if left.at_least else ''}{left.number} more {_e(rule_id)} chain(s).</p>")
    cut = report.cut
    how = "the fewest possible" if cut.exact else "chosen greedily: few, perhaps not the fewest"
    out.append(f'<h2>Fixes that break every chain ({len(cut.fixes)}, {how})</h2><ul id="fixes">')
    out += [
        f"<li>{_e(fix.rule.id)} at <code>{_e(fix.location)}</code>: {_e(fix.remediation)}</li>" for fix in cut.fixes
    ]
    return [*out, "</ul>"]


def _graph_svg(report: AuditReport, chains: list[Chain]) -> str:
    """Nodes in columns by the earliest step they take in any chain drawn; each edge once, labelled by kind."""
    column: dict[str, int] = {}
    edges: dict[tuple[str, str, str], None] = {}
    for chain in chains:
        for step, edge in enumerate(chain.edges):
            column[edge.source] = min(column.get(edge.source, step), step)
            column[edge.target] = min(column.get(edge.target, step + 1), step + 1)
            edges[(edge.source, edge.target, edge.kind)] = None
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for node_id, at in column.items():  # first seen, first placed: the chains' order reads top to bottom
        row = rows.get(at, 0)
        rows[at] = row + 1
        place[node_id] = (20 + at * (BOX_WIDTH + COLUMN_GAP), 20 + row * (BOX_HEIGHT + ROW_GAP))
    width = 40 + (max(column.values()) + 1) * (BOX_WIDTH + COLUMN_GAP)
    height = 40 + max(rows.values()) * (BOX_HEIGHT + ROW_GAP)
    out = [
        f'<svg id="chain-graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="attack graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    for source, target, kind in edges:
        (x1, y1), (x2, y2) = place[source], place[target]
        start, end = (x1 + BOX_WIDTH, y1 + BOX_HEIGHT // 2), (x2, y2 + BOX_HEIGHT // 2)
        middle = ((start[0] + end[0]) // 2, (start[1] + end[1]) // 2 - 4)
        out.append(
            f'<line x1="{start[0]}" y1="{start[1]}" x2="{end[0]}" y2="{end[1]}" stroke="#555" '
            f'marker-end="url(#arrow)"/><text x="{middle[0]}" y="{middle[1]}" text-anchor="middle" fill="#333" '
            f'stroke="#fff" stroke-width="4" paint-order="stroke">{_e(kind)}</text>'
        )
    nodes = report.graph.nodes
    for node_id, (x, y) in place.items():
        node = nodes[node_id]
        label = node.label if len(node.label) <= LABEL_CHARS else node.label[: LABEL_CHARS - 1] + "…"
        fill = {"attacker": "#ffe3e3", "registry": "#e7f5ff", "model-version": "#fff3bf"}.get(node.kind, "#f1f3f5")
        out.append(
            f'<g class="node"><title>{_e(node.label)}</title><rect x="{x}" y="{y}" width="{BOX_WIDTH}" '
            f'height="{BOX_HEIGHT}" rx="6" fill="{fill}" stroke="#868e96"/><text x="{x + 8}" y="{y + 18}" '
            f'font-weight="600">{_e(node.kind)}</text><text x="{x + 8}" y="{y + 36}">{_e(label)}</text></g>'
        )
    return "\n".join([*out, "</svg>"])


def _feature_section(report: AuditReport) -> list[str]:
    if not report.features:
        return []
    out = [
        '<h2>Feature map</h2><table id="feature-map"><thead><tr><th>feature</th><th>where</th>'
        "<th>an attacker can</th><th>then</th><th>victims</th></tr></thead><tbody>"
    ]
    for entry in report.features:
        victims = "<br>".join(_e(victim) for victim in entry.victims)
        out.append(
            f"<tr><td>{_e(entry.feature)}</td><td><code>{_e(entry.where)}</code></td><td>{_e(entry.can)}</td>"
            f"<td>{_e(entry.after)}</td><td>{victims}</td></tr>"
        )
    return [*out, "</tbody></table>"]


def _options(name: str, values: Iterable[tuple[str, str]]) -> str:
    choices = "".join(f'<option value="{_e(value)}">{_e(text)}</option>' for value, text in values)
    return f'<label>{name} <select id="filter-{name}"><option value="">all</option>{choices}</select></label>'


def _findings_section(findings: list[Finding]) -> list[str]:
    severities = [(str(int(s)), f"{s.label} and above") for s in sorted(Severity, reverse=True)]
    surfaces = sorted({f.attack_class.slug for f in findings})
    rules = sorted({f.rule.id for f in findings})
    out = [
        f'<h2>Findings (<span id="shown">{len(findings)}</span> of {len(findings)} shown)</h2>',
        '<p class="filters">'
        + _options("severity", severities)
        + _options("surface", ((s, s) for s in surfaces))
        + _options("rule", ((r, r) for r in rules))
        + "</p>",
        '<table id="findings"><thead><tr><th>severity</th><th>rule</th><th>where</th><th>what</th>'
        "<th>evidence</th><th>fix</th></tr></thead><tbody>",
    ]
    for finding in findings:
        evidence = "<br>".join(f"{_e(key)}={_e(value)}" for key, value in finding.evidence.items())
        out.append(
            f'<tr data-rank="{int(finding.severity)}" data-surface="{_e(finding.attack_class.slug)}" '
            f'data-rule="{_e(finding.rule.id)}"><td>{_badge(finding.severity)}</td><td>{_e(finding.rule.id)} '
            f"{_e(finding.rule.name)}</td><td><code>{_e(finding.location)}</code></td><td>{_e(finding.message)}"
            f"{f' (suppressed: {_e(finding.suppressed)})' if finding.suppressed else ''}</td>"
            f"<td><code>{evidence}</code></td><td>{_e(finding.remediation)}</td></tr>"
        )
    return [*out, "</tbody></table>"]
