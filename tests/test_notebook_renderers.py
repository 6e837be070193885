"""Real outputs of the plotting, table and widget libraries, made in a fresh Jupyter kernel, scan with nothing at
HIGH or above; their script is matched by fingerprints built from the installed libraries themselves."""

from __future__ import annotations

import hashlib
import importlib
import json
import pathlib
import re

import pytest

from mloops import scan_path
from mloops.analyzers import notebook
from mloops.core import Severity

from .fixtures import kernel_outputs

# One xdist worker runs these: each kernel takes a few seconds to start and import its library.
pytestmark = pytest.mark.xdist_group("kernels")


@pytest.mark.parametrize("name", sorted(kernel_outputs.SNIPPETS))
def test_real_library_output_is_not_high(tmp_path: pathlib.Path, name: str):
    path = tmp_path / "real.ipynb"
    path.write_bytes(kernel_outputs.run_in_kernel(kernel_outputs.SNIPPETS[name]))
    report = scan_path(str(path))
    loud = [f"{f.rule.id} {f.message}" for f in report.findings if f.severity >= Severity.HIGH]
    assert not loud, loud
    assert report.findings, "an executed notebook with rich output is looked at, not skipped"


def _shipped(module: str, relative: str) -> str:
    return (pathlib.Path(importlib.import_module(module).__file__).parent / relative).read_text(encoding="utf-8")


def test_widget_code_fingerprints_are_the_libraries_own_files():
    # anywidget models save their module's code (_esm, _css) in the notebook: mloops accepts exactly what the
    # installed library ships, so each digest in notebook_renderers.toml must come from the library itself.
    altair = importlib.import_module("altair")
    shipped = {
        "plotly": [_shipped("plotly", "package_data/widgetbundle.js")],
        "altair": [_shipped("altair", "jupyter/js/index.js"), altair.JupyterChart._css],
    }
    for name, texts in shipped.items():
        (renderer,) = [r for r in notebook.renderers().known if r.name == name]
        digests = {hashlib.sha256(text.encode()).hexdigest() for text in texts}
        assert digests == set(renderer.widget_code), name


def test_the_itables_bundle_fingerprint_is_the_librarys_own_init_cell():
    from itables import javascript, options

    html = javascript.generate_init_offline_itables_html(options.dt_bundle)
    body = html[html.index("<script>") + len("<script>") : html.index("</script>")]
    (renderer,) = [r for r in notebook.renderers().known if r.name == "itables"]
    assert hashlib.sha256(body.encode()).hexdigest() in renderer.bundles


def test_markup_itables_writes_from_its_json_data_is_scanned(tmp_path: pathlib.Path):
    # itables inserts table_html (and cells, with allow_html) into the page: a handler there runs.
    script = (
        "(async () => { async function init() { const { ITable, jQuery: $ } = await window._itables_2_9_1; "
        'document.querySelectorAll("#t1:not(.dataTable)").forEach(table => { if (!(table instanceof '
        "HTMLTableElement)) return; let dt_args = {json}; new ITable(table, dt_args); }); } "
        'if (window._itables_2_9_1) { init(); } else { window.addEventListener("itables-2.9.1-ready", () => '
        "{ init(); }); } })();"
    )

    def verdict(table_html: str) -> Severity:
        data = {"table_html": table_html, "data_json": "[[1]]"}
        html = '<table id="t1"></table><script type="module">' + script.replace("{json}", json.dumps(data))
        path = tmp_path / "t.ipynb"
        path.write_text(json.dumps(_one_output(html + "</script>")))
        return max(f.severity for f in scan_path(str(path)).findings)

    assert verdict("<table><thead><tr><th>a</th></tr></thead></table>") < Severity.HIGH
    assert verdict("<table><thead><tr><th><img src=x onerror=alert(1)></th></tr></thead></table>") >= Severity.HIGH


def _one_output(html: str) -> dict:
    output = {"output_type": "display_data", "data": {"text/html": html}, "metadata": {}}
    cell = {"cell_type": "code", "execution_count": 1, "id": "c", "metadata": {}, "outputs": [output], "source": ""}
    return {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@pytest.mark.parametrize(("text", "loud"), [("<b>bold</b>", False), ("<img src=x onerror=alert(1)>", True)])
def test_markup_bokeh_writes_from_its_documents_is_scanned(tmp_path: pathlib.Path, text: str, loud: bool):
    # A Div's text is HTML to BokehJS: bokeh's own components() output, with a handler in the text, runs it.
    from bokeh.embed import components
    from bokeh.models import Div
    from bokeh.resources import CDN

    script, div = components(Div(text=text))
    path = tmp_path / "b.ipynb"
    path.write_text(json.dumps(_one_output(CDN.render_js() + script + div)))
    worst = max(f.severity for f in scan_path(str(path)).findings)
    assert (worst >= Severity.HIGH) == loud


def test_bokeh_inline_resources_are_the_librarys_own_files():
    # output_notebook(INLINE) and file_html(..., INLINE) put BokehJS itself in the output.
    from bokeh.resources import INLINE

    bodies = re.findall(r"<script[^>]*>(.*?)</script>", INLINE.render_js(), re.S)
    (renderer,) = [r for r in notebook.renderers().known if r.name == "bokeh"]
    assert len(bodies) >= 5
    assert {hashlib.sha256(body.encode()).hexdigest() for body in bodies} <= renderer.bundles
