"""Jupyter notebooks: active content in outputs and Markdown, known renderers, saved widget state."""

from __future__ import annotations

import json
import pickle
import re

import pytest
from corpus import notebook as fx
from corpus.notebook import huge_unclosed_script_notebook, many_handlers_notebook, run

from mloops import scan_path
from mloops.core import FileResult, Severity
from mloops.limits import Limits
from mloops.notebooks import notebook


def ids_at_least(result: FileResult, severity: Severity) -> set[str]:
    return {f.rule.id for f in result.findings if f.severity >= severity}


def described(result: FileResult) -> list[str]:
    return [f"{f.rule.id} {f.severity.name} {f.message} {f.evidence}" for f in result.findings]


@pytest.fixture(scope="module")
def benign() -> bytes:
    return fx.benign_notebook()


# ------------------------------------------------------------------ benign outputs of the real libraries


def test_real_library_outputs_stay_below_high(benign):
    result = run(benign)
    assert not ids_at_least(result, Severity.HIGH), described(result)
    assert [asset.format for asset in result.assets] == ["notebook"]
    # The inlined 4.8 MB plotly.js bundle takes the notebook past the secret search's 4 MiB window: a LOW note.
    notes = [f for f in result.findings if f.rule.id == "MLO901"]
    assert all(f.severity == Severity.LOW and "secrets searched" in f.message for f in notes)
    assert {f.rule.id for f in result.findings} - {"MLO901"} == {"MLO317"}


def test_known_renderers_are_named_with_their_location(benign):
    result = run(benign)
    known = [f for f in result.findings if f.rule.id == "MLO317"]
    renderers = {f.evidence["renderer"] for f in known}
    assert renderers == {"plotly", "altair", "bokeh", "ipywidgets"}
    plotly_paths = {f.evidence["path"] for f in known if f.evidence["renderer"] == "plotly"}
    assert "cells[4].outputs[0].data.text/html" in plotly_paths  # the inlined plotly.js bundle, by hash
    assert all(f.severity == Severity.LOW and "cell" in f.evidence for f in known if "cells[" in f.message)


def test_pandas_matplotlib_markdown_and_streams_give_no_finding(benign):
    book = json.loads(benign)
    book["cells"] = [book["cells"][index] for index in (0, 1, 2, len(book["cells"]) - 1)]
    book["metadata"] = {}
    assert run(json.dumps(book).encode()).findings == []


# ------------------------------------------------------------------ hand-written active content


@pytest.mark.parametrize(
    ("mime", "content", "rule_id"), [p[1:] for p in fx.HTML_PAYLOADS], ids=[p[0] for p in fx.HTML_PAYLOADS]
)
def test_active_content_in_outputs_is_high(mime, content, rule_id):
    result = run(fx.output_notebook(mime, content))
    found = [f for f in result.findings if f.rule.id == rule_id]
    assert found and all(f.severity == Severity.HIGH for f in found), described(result)
    assert found[0].evidence["cell"] == "0" and found[0].evidence["output"] == "0"
    assert found[0].evidence["mime"] == mime
    assert found[0].evidence["path"] == f"cells[0].outputs[0].data.{mime}"


@pytest.mark.parametrize(
    ("source", "rule_id"), [p[1:] for p in fx.MARKDOWN_CELL_PAYLOADS], ids=[p[0] for p in fx.MARKDOWN_CELL_PAYLOADS]
)
def test_raw_html_in_markdown_cells_is_high(source, rule_id):
    result = run(fx.markdown_notebook(source))
    found = [f for f in result.findings if f.rule.id == rule_id]
    assert found and found[0].severity == Severity.HIGH, described(result)
    assert found[0].evidence["path"] == "cells[0].source"


def test_srcdoc_documents_are_scanned_too():
    result = run(fx.markdown_notebook('<iframe srcdoc="&lt;img src=x onerror=alert(1)&gt;"></iframe>'))
    assert {"MLO313", "MLO311"} <= ids_at_least(result, Severity.HIGH)


def test_harmless_markup_gives_no_finding():
    markup = '<p title="on click: see javascript docs">onload = 3</p><a href="#top">top</a><form action="#x"></form>'
    result = run(fx.output_notebook("text/html", markup + "&lt;script&gt;alert(1)&lt;/script&gt;"))
    assert result.findings == [], described(result)


# ------------------------------------------------------------------ saved widget state


def test_widget_from_a_foreign_module_is_high():
    result = run(fx.widget_state_notebook("evil-widgets", "hello"))
    found = [f for f in result.findings if f.rule.id == "MLO316"]
    assert found and found[0].severity == Severity.HIGH
    assert found[0].evidence["module"] == "evil-widgets"
    assert found[0].evidence["path"].endswith(".state.m1")


@pytest.mark.parametrize("module", ["jupyter-leaflet", "jupyter-matplotlib", "bqplot", "jupyterlab-plotly"])
def test_widgets_of_reviewed_libraries_are_known_renderers(module: str):
    result = run(fx.widget_state_notebook(module, "hello"))
    assert ids_at_least(result, Severity.MEDIUM) == set(), described(result)
    assert any(f.rule.id == "MLO317" and f.evidence.get("renderer") == module for f in result.findings)


def test_anywidget_code_is_code_not_markup():
    # _esm is the widget's ES module and _css its style sheet: never tokenized as HTML (their "<" and
    # "onclick=" are JavaScript), but code stored in the notebook runs on open.
    esm = "export function render({ el }) { el.innerHTML = '<button onclick=\"go()\">x</button>'; if (a < b) {} }"
    result = run(fx.widget_state_notebook("anywidget", "", _esm=esm, _css=".x > .y { color: red }"))
    found = [f for f in result.findings if f.severity >= Severity.MEDIUM]
    assert [f.rule.id for f in found] == ["MLO316"], described(result)
    assert "its own JavaScript (_css, _esm)" in found[0].message


def test_html_in_standard_widget_state_is_scanned():
    result = run(fx.widget_state_notebook("@jupyter-widgets/controls", "<img src=x onerror=alert(1)>"))
    found = [f for f in result.findings if f.rule.id == "MLO311"]
    assert found and found[0].severity == Severity.HIGH
    assert found[0].evidence["path"].endswith(".state.m1.state.value")


def test_output_widget_outputs_are_scanned():
    state = {
        "state": {
            "o1": {
                "model_name": "OutputModel",
                "model_module": "@jupyter-widgets/output",
                "state": {"outputs": [{"output_type": "display_data", "data": {"text/html": "<script>x()</script>"}}]},
            }
        }
    }
    book = json.loads(fx.notebook([]))
    book["metadata"]["widgets"] = {fx.WIDGET_STATE_MIME: state}
    result = run(json.dumps(book).encode())
    found = [f for f in result.findings if f.rule.id == "MLO310"]
    assert found and found[0].evidence["path"].endswith("o1.state.outputs[0].data.text/html")


# ------------------------------------------------------------------ smuggling past the renderer fingerprints


def plotly_html() -> str:
    import plotly.io as pio

    return pio.to_html(fx.plotly_figure(), include_plotlyjs="cdn", full_html=False)


def test_extra_script_next_to_a_known_renderer_is_high():
    result = run(fx.output_notebook("text/html", plotly_html() + "<script>fetch('/api/kernels')</script>"))
    assert "MLO310" in ids_at_least(result, Severity.HIGH)
    assert "MLO317" not in {f.rule.id for f in result.findings}  # the output as a whole is not excused


def test_code_appended_to_a_renderer_template_is_high():
    html = plotly_html().replace("};            </script>", "}; fetch('/api/kernels');            </script>")
    assert "fetch(" in html
    assert "MLO310" in ids_at_least(run(fx.output_notebook("text/html", html)), Severity.HIGH)


def test_code_in_place_of_renderer_data_is_high():
    html = plotly_html().replace('{"responsive": true}', '{"responsive": alert(1)}')
    assert "alert(1)" in html
    assert "MLO310" in ids_at_least(run(fx.output_notebook("text/html", html)), Severity.HIGH)


def test_event_handler_next_to_a_known_renderer_is_high():
    result = run(fx.output_notebook("text/html", plotly_html() + '<img src=x onerror="alert(1)">'))
    assert "MLO311" in ids_at_least(result, Severity.HIGH)


def test_bundle_with_a_known_prologue_but_other_content_is_high():
    import plotly.io as pio

    html = pio.to_html(fx.plotly_figure(), include_plotlyjs=True, full_html=False)
    tampered = html.replace("window.Plotly = Plotly;", "window.Plotly = Plotly; fetch('/api/kernels');", 1)
    assert tampered != html
    assert "MLO310" in ids_at_least(run(fx.output_notebook("text/html", tampered)), Severity.HIGH)


def test_code_after_a_renderer_string_literal_is_high():
    html = re.sub(r"(const docs_json = '.*?')", r"\1 + fetch('/api/kernels')", fx.bokeh_html(), count=1, flags=re.S)
    assert "fetch(" in html
    assert "MLO310" in ids_at_least(run(fx.output_notebook("text/html", html)), Severity.HIGH)


def test_bokeh_show_outputs_are_known_and_tampered_ones_high():
    outputs = fx.bokeh_show_outputs()
    result = run(fx.notebook([fx.code_cell("show(plot)", *outputs)]))
    assert not ids_at_least(result, Severity.HIGH), described(result)
    assert {f.evidence["mime"] for f in result.findings if f.rule.id == "MLO317"} == {
        "application/javascript",
        "application/vnd.bokehjs_load.v0+json",  # the extension runs this as script too
        "application/vnd.bokehjs_exec.v0+json",
    }
    loader = outputs[1]["data"]
    for mime in ("application/javascript", "application/vnd.bokehjs_load.v0+json"):
        tampered = loader[mime].replace("function now() {", "function now() { fetch('/api/kernels');", 1)
        assert tampered != loader[mime]
        assert "MLO315" in ids_at_least(run(fx.output_notebook(mime, tampered)), Severity.HIGH), mime
    embed = outputs[3]["data"]["application/javascript"]
    extra = embed.replace("void root.Bokeh", "fetch('/api/kernels'); void root.Bokeh", 1)
    assert "MLO315" in ids_at_least(run(fx.output_notebook("application/javascript", extra)), Severity.HIGH)


def test_script_from_a_lookalike_cdn_is_high():
    html = '<script src="https://cdn.plot.ly.evil.example/plotly-2.0.min.js"></script>'
    assert "MLO310" in ids_at_least(run(fx.output_notebook("text/html", html)), Severity.HIGH)


@pytest.mark.parametrize(
    "source",
    [
        "https://cdn.jsdelivr.net/npm/vega@5/../evil@1.0.0/x.js",  # the URL parser drops dot segments
        "https://cdn.jsdelivr.net/npm/vega@5/%2e%2e/evil@1.0.0/x.js",  # encoded dot segments too
        "https://cdn.jsdelivr.net/npm/vega@5/.%2E/evil@1.0.0/x.js",
        "https://cdn.jsdelivr.net/npm/vega@5\\..\\evil@1.0.0/x.js",  # backslash is a slash in https URLs
        "https://cdn.jsdelivr.net/npm/vega@5/.\t./evil@1.0.0/x.js",  # tabs and newlines are removed
        "&#xa0;https://cdn.jsdelivr.net/npm/vega@5/vega.js",  # U+00A0 is not trimmed: a relative URL
    ],
)
def test_script_url_the_browser_rewrites_off_a_known_cdn_is_high(source: str):
    html = f'<script src="{source}"></script>'
    assert "MLO310" in ids_at_least(run(fx.output_notebook("text/html", html)), Severity.HIGH)


def test_script_url_on_a_known_cdn_as_written_is_known():
    html = '<script src=" https://cdn.jsdelivr.net/npm/vega@5/build/vega.min.js?x=1 "></script>'
    assert not ids_at_least(run(fx.output_notebook("text/html", html)), Severity.MEDIUM)


def test_script_hidden_in_a_comment_the_tokenizer_reads_differently_is_high():
    result = run(fx.output_notebook("text/html", "<!--><script>alert(1)</script>-->"))
    assert "MLO310" in ids_at_least(result, Severity.HIGH)


# ------------------------------------------------------------------ nbformat 3


def test_nbformat3_outputs_are_checked():
    cell = {
        "cell_type": "code",
        "input": "x",
        "outputs": [{"output_type": "display_data", "html": ["<script>", "x()</script>"]}],
    }
    book = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [cell]}]}
    result = run(json.dumps(book).encode())
    found = [f for f in result.findings if f.rule.id == "MLO310"]
    assert found and found[0].evidence["path"] == "worksheets[0].cells[0].outputs[0].html"
    assert notebook.code_cells(book) == [(0, "x")]


# ------------------------------------------------------------------ malformed and hostile input


MALFORMED = {
    "truncated": lambda good: good[: len(good) // 2],
    "not-json": lambda good: b"{ this is not json",
    "bad-utf8": lambda good: good.replace(b"print", b"\xff\xfe", 1),
    "top-level-list": lambda good: b"[1, 2]",
    "cells-not-list": lambda good: b'{"nbformat": 4, "cells": {"a": 1}}',
    "no-cells": lambda good: b'{"nbformat": 4, "metadata": {}}',
    "html-not-text": lambda good: json.dumps(
        {"nbformat": 4, "cells": [{"cell_type": "code", "outputs": [{"data": {"text/html": {"a": 1}}}]}]}
    ).encode(),
    "deep-nesting": lambda good: b'{"nbformat": 4, "cells": [' + b"[" * 200_000 + b"]" * 200_000 + b"]}",
    "widget-state-not-object": lambda good: (
        b'{"nbformat": 4, "cells": [], "metadata": {"widgets": {"' + fx.WIDGET_STATE_MIME.encode() + b'": [1]}}}'
    ),
}


@pytest.mark.parametrize("variant", sorted(MALFORMED))
def test_malformed_notebooks_are_flagged(variant):
    good = fx.notebook([fx.code_cell("print(1)")])
    result = run(MALFORMED[variant](good))
    ids = {f.rule.id for f in result.findings}
    assert "MLO201" in ids and "MLO903" not in ids, described(result)


# Their speed is measured by bench/unit_speed.py.
def test_many_handlers_are_capped(tmp_path):
    path = tmp_path / "many.ipynb"
    path.write_bytes(many_handlers_notebook())
    handlers = [f for f in scan_path(str(path)).findings if f.rule.id == "MLO311"]  # the file's sink caps
    cap = Limits().max_findings_per_rule
    assert len(handlers) == cap + 1
    assert handlers[-1].evidence["not_listed"] == str(100_000 - cap)


def test_huge_unclosed_script_is_high():
    result = run(huge_unclosed_script_notebook())
    assert "MLO310" in ids_at_least(result, Severity.HIGH)


def test_oversized_notebook_is_a_scan_limit(monkeypatch):
    monkeypatch.setattr(notebook, "MAX_NOTEBOOK_BYTES", 1000)
    result = run(fx.output_notebook("text/html", "x" * 2000))
    assert {f.rule.id for f in result.findings} == {"MLO901"}


# ------------------------------------------------------------------ detection and code cells


def test_detect(benign):
    assert notebook.detect(benign[:65536], "report.ipynb")
    assert notebook.detect(benign[:65536], "report.json")  # content first: "nbformat" names it
    assert not notebook.detect(b'{"cells": 3}', "data.json")
    assert not notebook.detect(b'{"model": {"cells": []}}', "config.json")
    assert not notebook.detect(pickle.dumps({"cells": []}), "x.ipynb")
    assert not notebook.detect(b"cells nbformat", "x.ipynb")


def test_code_cells_lists_index_and_source():
    cells = [fx.v4.new_markdown_cell("# t"), fx.code_cell("import torch as T\nT.load(f)"), fx.code_cell("x = 1")]
    book = json.loads(fx.notebook(cells))
    assert notebook.code_cells(book) == [(1, "import torch as T\nT.load(f)"), (2, "x = 1")]
    assert notebook.code_cells([1, 2]) == []


@pytest.mark.parametrize(
    ("markup", "severity"),
    [
        ('<iframe src="https://www.youtube.com/embed/abc"></iframe>', Severity.MEDIUM),
        ('<iframe sandbox="allow-scripts" src="https://example.org/chart"></iframe>', Severity.LOW),
        ('<iframe sandbox="allow-scripts allow-popups" src="https://example.org/x"></iframe>', Severity.MEDIUM),
        ('<iframe src="http://example.org/x"></iframe>', Severity.MEDIUM),
        ('<iframe src="//example.org/x"></iframe>', Severity.MEDIUM),
        ('<iframe src="files/report.html"></iframe>', Severity.HIGH),  # the Jupyter server's own origin
        ('<iframe src="http://localhost:8888/files/x.html"></iframe>', Severity.HIGH),
        ('<iframe src="https://127.0.0.1/x"></iframe>', Severity.HIGH),
        ('<iframe src="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>', Severity.HIGH),
        ('<iframe src="https:\\\\127.0.0.1/x"></iframe>', Severity.HIGH),
        ('<iframe src="https://127.0.0.1@evil.example/x"></iframe>', Severity.MEDIUM),
        ('<embed src="https://cdn.example.org/plot.svg">', Severity.MEDIUM),
        ("<iframe></iframe>", Severity.LOW),  # about:blank: only a script fills it
        ('<iframe src=""></iframe>', Severity.LOW),
        ('<iframe src=" "></iframe>', Severity.HIGH),  # " " resolves to the notebook page itself
    ],
)
def test_embedded_documents_are_judged_by_how_far_they_reach(markup: str, severity: Severity):
    result = run(fx.markdown_notebook(markup))
    found = [f.severity for f in result.findings if f.rule.id == "MLO313"]
    assert found == [severity], described(result)


# ------------------------------------------------------------------ tokenized as browsers tokenize


@pytest.mark.parametrize(
    "html",
    [
        "<!-- x --!><img src=x onerror=alert(1)>",  # --!> ends a comment
        "<!--><img src=x onerror=alert(1)>-->",  # <!--> is a whole comment
        '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',  # raw text ends early
        "<svg><style><img src=x onerror=alert(1)></style></svg>",  # style holds markup in SVG
        "<math><mtext><table><img src=x onerror=alert(1)></table></mtext></math>",
        '<iframe><p title="</iframe><img src=x onerror=alert(1)>"></iframe>',
        '<img src=x onerror="alert(1)" onerror="">',  # the first of two attributes wins
    ],
)
def test_markup_browsers_run_is_found(html: str):
    assert "MLO311" in ids_at_least(run(fx.output_notebook("text/html", html)), Severity.HIGH)


@pytest.mark.parametrize(
    "html",
    [
        "<textarea><img src=x onerror=alert(1)></textarea>",  # RCDATA: text
        "<style>p { color: red } <img src=x onerror=alert(1)></style>",  # RAWTEXT
        "<title><img src=x onerror=alert(1)></title>",
        "<![CDATA[<img src=x onerror=alert(1)]]>",  # a bogus comment in HTML
        "<svg><![CDATA[</svg><img src=x onerror=alert(1)>]]></svg>",  # text inside SVG
        "<xmp><img src=x onerror=alert(1)></xmp>",
    ],
)
def test_markup_browsers_read_as_text_is_quiet(html: str):
    result = run(fx.output_notebook("text/html", html))
    assert "MLO311" not in ids_at_least(result, Severity.LOW), described(result)


def test_script_text_ends_where_the_browser_ends_it():
    # <!-- <script> inside a script: the first </script> only closes that double escape.
    html = "<script><!--<script></script><img src=x onerror=alert(1)></script>"
    result = run(fx.output_notebook("text/html", html))
    assert "MLO310" in ids_at_least(result, Severity.HIGH)
    assert "MLO311" not in ids_at_least(result, Severity.LOW)  # the img is script text


@pytest.mark.parametrize("flood", ["<" * 300_000, "<a" * 150_000, "</a" * 100_000, "<!--" * 75_000, '<a b="' * 50_000])
def test_floods_of_unfinished_markup_are_read_in_one_pass(flood: str):
    result = run(fx.output_notebook("text/html", flood))  # a hang guard: bench/unit_speed.py times it
    assert "MLO311" not in ids_at_least(result, Severity.LOW)


@pytest.mark.parametrize(
    ("script_type", "runs"),
    [
        ("", True),
        ("module", True),
        (" TEXT/JavaScript ", True),
        ("text/javascript;charset=utf-8", True),
        ("importmap", True),  # remaps what later module scripts import
        ("application/json", False),
        # es-module-shims (which panel's loader brings in) runs these and takes hooks from its options
        ("esms-options", True),
        ("module-shim", True),
        ("importmap-shim", True),
        ("text/template", False),
        ("\u00a0module", False),  # only ASCII whitespace is stripped: the browser leaves this unrun
    ],
)
def test_a_script_counts_by_whether_its_type_runs(script_type: str, runs: bool):
    html = f'<script type="{script_type}">fetch("/api/kernels")</script>'
    assert ("MLO310" in ids_at_least(run(fx.output_notebook("text/html", html)), Severity.HIGH)) == runs


# ------------------------------------------------------------------ frames a known renderer fills

TENSORBOARD = """<iframe id="tensorboard-frame-1" width="100%" height="800" frameborder="0"></iframe>
<script>
  (function() {
    const frame = document.getElementById("tensorboard-frame-1");
    const url = new URL(PATH, window.location);
    const port = PORT;
    if (port) {
      url.port = port;
    }
    frame.src = url;
  })();
</script>"""


@pytest.mark.parametrize(
    ("path", "port", "known"),
    [
        ('"/"', "6006", True),
        ('"/tensorboard/"', "6006", True),
        ('"/files/evil.html"', "8888", False),  # a file the notebook's folder may hold, on Jupyter's own port
        ('"javascript:alert(1)//"', "6006", False),
        ('"/proxy/6006/"', "0", False),  # TENSORBOARD_PROXY_URL: the notebook's own origin
        ('"/"', "6006 + fetch('/api/kernels')", False),
        ("'/' + location.hash", "6006", False),
    ],
)
def test_tensorboard_frames_are_known_only_on_another_port_without_a_file(path: str, port: str, known: bool):
    html = TENSORBOARD.replace("PATH", path).replace("PORT", port)
    result = run(fx.output_notebook("text/html", html))
    assert ("MLO310" not in ids_at_least(result, Severity.HIGH)) is known, described(result)
    assert not ids_at_least(result, Severity.MEDIUM) - {"MLO310"}, described(result)  # the empty frame is LOW


def test_markup_hidden_past_megabytes_of_a_data_script_is_found():
    # A JSON <script> is tokenized again whole: a handler after 9 MiB of data is still found.
    padding = '{"a": "' + "x" * (9 << 20) + '"}'
    html = f'<script type="application/json">{padding}<img src=x onerror="alert(1)"></script>'
    result = run(fx.output_notebook("text/html", html))
    assert any("onerror" in f.message and f.severity >= Severity.HIGH for f in result.findings), described(result)
