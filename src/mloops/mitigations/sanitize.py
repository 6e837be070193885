"""Neutralising a notebook's active content: output formats outside a plain allowlist (HTML, SVG, Markdown,
JavaScript, widget views, extension renderers), saved widget state, and Markdown or raw cells the scanner
finds active content in (shown as text instead). Plain outputs (text, images, LaTeX, JSON, streams, errors)
stay. With ``keep_known``, outputs the scanner identified as a reviewed renderer's, and nothing worse, stay too.

The result is proved, not hoped: it is scanned again, and sanitizing fails rather than writes a notebook in
which the scanner still finds active content.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from typing import Any, NamedTuple

from .. import rules
from ..core import ParseError, Rule
from ..limits import Limits
from ..notebooks import notebook as nb
from ..scan import scan_file

# Rendered as inert data by Jupyter and nbconvert: no markup, no script.
PLAIN_MIMES = frozenset(
    {"text/plain", "image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp", "text/latex", "application/json"}
)
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"  # names a model of the widget state, holds none
MAX_ROUNDS = 4  # a notebook still active after this many passes is refused, not written
NOTEBOOK_RULES = frozenset(rule.id for rule in vars(nb).values() if isinstance(rule, Rule))  # active content


class Removed(NamedTuple):
    path: str  # where in the notebook's JSON
    what: str  # the output format, "widget state", or "cell shown as text"
    why: str  # the rule ids of the scanner's findings there, or why the format is not kept


class Sanitized(NamedTuple):
    text: str  # the notebook's JSON
    removed: list[Removed]


class SanitizeError(ParseError):
    """The notebook could not be sanitized (not a notebook, or still active after every pass)."""


def sanitize(data: bytes, keep_known: bool = False) -> Sanitized:
    try:
        notebook = json.loads(data)
        cells = nb.notebook_cells(notebook)
    except (ValueError, RecursionError, nb.Malformed) as exc:
        raise SanitizeError(f"not a notebook ({exc})") from None
    removed: list[Removed] = []
    active = _active_paths(_text(notebook, removed))
    for _ in range(MAX_ROUNDS):
        removed += _neutralise(notebook, cells, active, keep_known)
        text = _text(notebook, removed)
        active = _active_paths(text)
        if not any(active.values()):
            return Sanitized(text, removed)
    raise SanitizeError(f"active content remains after {MAX_ROUNDS} passes; nothing was written")


def _active_paths(text: str) -> dict[str, set[str]]:
    """JSON path -> rule ids of the scanner's active-content findings there (a reviewed renderer's only: the
    empty set)."""
    with tempfile.TemporaryDirectory(prefix="mloops-sanitize-") as folder:
        path = os.path.join(folder, "notebook.ipynb")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        result = scan_file(path, Limits())
    found: dict[str, set[str]] = {}
    for finding in result.findings:
        if finding.rule.id in NOTEBOOK_RULES and "path" in finding.evidence:
            ids = found.setdefault(finding.evidence["path"], set())
            if finding.rule.id != nb.NOTEBOOK_KNOWN_RENDERER.id:
                ids.add(finding.rule.id)
        elif finding.rule.operational or finding.rule.id == rules.MALFORMED.id:
            raise SanitizeError(f"{finding.rule.id}: {finding.message}")
    return found


def _neutralise(notebook: dict[str, Any], cells: list[tuple[str, dict[str, Any]]],
                found: dict[str, set[str]], keep_known: bool) -> list[Removed]:  # fmt: skip
    removed: list[Removed] = []
    for path, cell in cells:
        if cell.get("cell_type") in ("markdown", "raw", "heading") and _hits(found, f"{path}.source"):
            removed.append(Removed(f"{path}.source", "cell shown as text", _why(found, f"{path}.source")))
            _as_text(cell)
        for name, bundle in (cell.get("attachments") or {}).items():
            removed += _strip_bundle(bundle, f"{path}.attachments.{name}", found, keep_known)
        for index, output in enumerate(cell.get("outputs") or []):
            removed += _strip_output(output, f"{path}.outputs[{index}]", found, keep_known)
    metadata = notebook.setdefault("metadata", {})
    widgets = metadata.get("widgets")
    if widgets and not (keep_known and not _hits(found, "metadata.widgets")):
        removed.append(Removed("metadata.widgets", "widget state", _why(found, "metadata.widgets") or "not kept"))
        del metadata["widgets"]
    if metadata.pop("signature", None) is not None:  # nbformat 3 kept the trust signature in the file
        removed.append(Removed("metadata.signature", "trust signature", "the notebook changed"))
    return removed


def _strip_output(output: dict[str, Any], path: str, found: dict[str, set[str]], keep: bool) -> list[Removed]:
    removed = _strip_bundle(output.get("data") or {}, f"{path}.data", found, keep) if "data" in output else []
    for short, mime in nb.V3_MIMES.items():  # nbformat 3 keeps mime data on the output itself
        if short in output and not _kept(mime, f"{path}.{short}", found, keep):
            del output[short]
            removed.append(Removed(f"{path}.{short}", mime, _why(found, f"{path}.{short}") or "active format"))
    return removed


def _strip_bundle(bundle: dict[str, Any], path: str, found: dict[str, set[str]], keep: bool) -> list[Removed]:
    removed = []
    for mime in list(bundle):
        where = f"{path}.{mime}"
        if not _kept(mime, where, found, keep):
            del bundle[mime]
            removed.append(Removed(where, mime, _why(found, where) or "not a plain output format"))
    return removed


def _kept(mime: str, path: str, found: dict[str, set[str]], keep_known: bool) -> bool:
    if mime in PLAIN_MIMES and not _hits(found, path):
        return True
    if not keep_known or _hits(found, path):
        return False
    return mime == WIDGET_VIEW_MIME or bool(_under(found, path))  # a reviewed renderer's, identified by the scan


_MARKUP = re.compile(r"[\\&<>\[\]()]")
_ESCAPED = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _as_text(cell: dict[str, Any]) -> None:
    """The cell becomes Markdown that shows its old source as text: no tag, entity or link survives (a code
    fence would not do: the scanner, like some renderers, reads markup inside fences too)."""
    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else str(source)
    cell["cell_type"] = "markdown"
    cell["source"] = _MARKUP.sub(lambda m: _ESCAPED.get(m[0], "\\" + m[0]), text)
    for key in ("outputs", "execution_count"):
        cell.pop(key, None)
    cell.get("metadata", {}).pop("format", None)
    cell.get("metadata", {}).pop("raw_mimetype", None)


def _under(found: dict[str, set[str]], path: str) -> list[str]:
    return [where for where in found if where == path or where.startswith((f"{path}.", f"{path}["))]


def _hits(found: dict[str, set[str]], path: str) -> bool:
    return any(found[where] for where in _under(found, path))


def _why(found: dict[str, set[str]], path: str) -> str:
    return ", ".join(sorted({rule for where in _under(found, path) for rule in found[where]}))


def _text(notebook: dict[str, Any], removed: list[Removed]) -> str:
    if removed:
        notebook.setdefault("metadata", {})["mloops"] = {
            "sanitized": [{"path": r.path, "removed": r.what, "why": r.why} for r in removed]
        }
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
