"""mloops sanitize: every hand-written XSS payload, in outputs, Markdown cells and widget state, is
neutralised; the result validates with nbformat, scans with no active-content finding, converts with
nbconvert and keeps its plain outputs; known renderers stay only when asked for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from corpus import notebook as nbs
from nbformat import v4

from mloops.cli import main
from mloops.mitigations.sanitize import SanitizeError, sanitize
from mloops.notebooks.notebook import NOTEBOOK_KNOWN_RENDERER

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def active(text: str, known: bool = False) -> list[str]:
    """Rule ids of the scanner's active-content findings in the notebook (a known renderer's too, unless
    ``known`` lets them stay)."""
    result = nbs.run(text.encode())
    return [
        f.rule.id for f in result.findings if f.rule.id.startswith("MLO31") and not (known and f.rule.id == "MLO317")
    ]


@pytest.mark.parametrize(("name", "mime", "content", "rule"), nbs.HTML_PAYLOADS, ids=[p[0] for p in nbs.HTML_PAYLOADS])
def test_every_active_output_is_removed_and_its_plain_text_kept(name: str, mime: str, content: str, rule: str):
    data = nbs.output_notebook(mime, content)
    assert rule in active(data.decode())  # the payload is live before
    done = sanitize(data)
    assert active(done.text) == []
    book = nbformat.reads(done.text, as_version=4)
    nbformat.validate(book)
    assert book.cells[0].outputs[0].data == {"text/plain": "x"}
    assert [(r.path, r.what) for r in done.removed] == [("cells[0].outputs[0].data." + mime, mime)]
    assert rule in done.removed[0].why
    assert book.metadata.mloops.sanitized[0]["path"] == done.removed[0].path


@pytest.mark.parametrize(("name", "source", "rule"), nbs.MARKDOWN_CELL_PAYLOADS)
def test_active_markdown_cells_are_shown_as_text(name: str, source: str, rule: str):
    data = nbs.notebook([v4.new_markdown_cell(source), v4.new_raw_cell(source), v4.new_markdown_cell("# Fine *text*")])
    done = sanitize(data)
    assert active(done.text) == []
    book = nbformat.reads(done.text, as_version=4)
    nbformat.validate(book)
    converted = book.cells[:1] if name == "markdown-cell-js-link" else book.cells[:2]  # raw: no Markdown links
    for cell in converted:
        assert cell.cell_type == "markdown" and "<" not in cell.source and "](" not in cell.source
    assert book.cells[2].source == "# Fine *text*"  # nothing active: untouched
    assert [r.what for r in done.removed] == ["cell shown as text"] * len(converted) and rule in done.removed[0].why


def test_a_cell_shown_as_text_reads_as_its_old_source_once_rendered():
    from nbconvert import HTMLExporter

    source = 'See [docs](javascript:alert(1)) &amp; <b onclick="x()">this</b> \\'
    done = sanitize(nbs.markdown_notebook(source))
    html, _ = HTMLExporter().from_notebook_node(nbformat.reads(done.text, as_version=4))
    rendered = 'See [docs](javascript:alert(1)) &amp;amp; &lt;b onclick="x()"&gt;this&lt;/b&gt; \\'
    assert rendered in html and "<b onclick" not in html and 'href="javascript' not in html


def test_widget_state_and_views_go_unless_known_renderers_are_kept():
    data = nbs.benign_notebook()
    done = sanitize(data)
    book = json.loads(done.text)
    assert "widgets" not in book["metadata"] and active(done.text) == []
    kept_mimes = {mime for cell in book["cells"] for out in cell.get("outputs", []) for mime in out.get("data", {})}
    assert kept_mimes <= {"text/plain", "image/png"} and "image/png" in kept_mimes
    stream = book["cells"][-1]["outputs"][0]
    assert stream["text"] == ["hi <script>\n"]  # a stream renders as text: kept
    known = sanitize(data, keep_known=True)
    book = json.loads(known.text)
    assert "widgets" in book["metadata"]
    kept_mimes = {mime for cell in book["cells"] for out in cell.get("outputs", []) for mime in out.get("data", {})}
    assert {"application/vnd.plotly.v1+json", "application/vnd.jupyter.widget-view+json"} <= kept_mimes
    renderers = [f for f in nbs.run(known.text.encode()).findings if f.rule.id == NOTEBOOK_KNOWN_RENDERER.id]
    assert renderers and active(known.text, known=True) == []


def test_known_renderer_mode_still_removes_a_hostile_widget():
    data = nbs.widget_state_notebook("evil-widgets", "<img src=x onerror=alert(1)>")
    assert active(data.decode())
    done = sanitize(data, keep_known=True)
    assert "widgets" not in json.loads(done.text)["metadata"] and active(done.text, known=True) == []


def test_nbconvert_renders_the_sanitized_notebook_with_its_plain_outputs():
    from nbconvert import HTMLExporter

    cells = [
        nbs.code_cell(
            "plot()",
            nbs.display({"image/png": PNG, "text/plain": "<Figure>"}),
            nbs.display({"text/html": "<script>alert('xss')</script>", "text/plain": "fallback text"}),
        ),
        v4.new_markdown_cell("<img src=x onerror=alert(2)>"),
    ]
    done = sanitize(nbs.notebook(cells))
    html, _ = HTMLExporter().from_notebook_node(nbformat.reads(done.text, as_version=4))
    assert PNG in html and "fallback text" in html
    assert "alert('xss')" not in html and "<img src=x onerror" not in html and "&lt;img src=x onerror" in html


def test_not_a_notebook_is_refused():
    with pytest.raises(SanitizeError, match="not a notebook"):
        sanitize(b'{"just": "json"}')


def test_the_command_rewrites_in_place_writes_copies_and_filters_stdin(tmp_path: Path, capsys):
    dirty = tmp_path / "dirty.ipynb"
    clean = tmp_path / "clean.ipynb"
    dirty.write_bytes(nbs.output_notebook("text/html", "<script>alert(1)</script>"))
    clean.write_bytes(nbs.notebook([nbs.code_cell("1", v4.new_output("stream", name="stdout", text="1"))]))
    before = clean.stat().st_mtime_ns
    assert main(["sanitize", str(dirty), str(clean)]) == 2
    assert "give --in-place or an existing folder" in capsys.readouterr().err
    out = tmp_path / "out"
    out.mkdir()
    assert main(["sanitize", str(dirty), str(clean), "--output", str(out)]) == 0
    assert active((out / "dirty.ipynb").read_text()) == [] and (out / "clean.ipynb").exists()
    assert main(["sanitize", str(dirty), str(clean), "--in-place"]) == 0
    err = capsys.readouterr().err
    assert f"{dirty}: removed 1: cells[0].outputs[0].data.text/html: text/html (MLO310)" in err
    assert f"{clean}: nothing active" in err
    assert active(dirty.read_text()) == [] and clean.stat().st_mtime_ns == before
    piped = subprocess.run(
        [sys.executable, "-m", "mloops", "sanitize", "-"],
        input=nbs.output_notebook("application/javascript", "alert(1)"),
        capture_output=True,
        timeout=120,
    )
    assert piped.returncode == 0 and active(piped.stdout.decode()) == []
    (tmp_path / "bad.ipynb").write_text("not json")
    assert main(["sanitize", str(tmp_path / "bad.ipynb")]) == 2
    assert "bad.ipynb: not a notebook" in capsys.readouterr().err
