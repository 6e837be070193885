"""Real outputs of the plotting, table and widget libraries, made in a fresh Jupyter kernel, scan with nothing at
HIGH or above; their script is matched by fingerprints built from the installed libraries themselves."""

from __future__ import annotations

import hashlib
import importlib
import json
import pathlib
import re

import pytest
from corpus import kernel_outputs

from mloops import scan_path
from mloops.core import Severity
from mloops.notebooks import notebook

# One xdist worker runs these: each kernel takes a few seconds to start and import its library.
pytestmark = pytest.mark.xdist_group("kernels")


@pytest.mark.parametrize("name", sorted(kernel_outputs.SNIPPETS))
def test_real_library_output_is_not_high(tmp_path: pathlib.Path, name: str):
    path = tmp_path / "real.ipynb"
    path.write_bytes(kernel_outputs.run_in_kernel(kernel_outputs.SNIPPETS[name], folder=str(tmp_path)))
    report = scan_path(str(path))
    loud = [f"{f.rule.id} {f.message}" for f in report.findings if f.severity >= Severity.HIGH]
    assert not loud, loud
    # Not vacuous: every library that puts script or widgets in the page was recognized as a known renderer.
    known = [f for f in report.findings if f.rule.id == "MLO317"]
    assert known or name in MARKUP_ONLY, [f"{f.rule.id} {f.message}" for f in report.findings]


MARKUP_ONLY = {"pandas Styler", "great_tables"}  # HTML and CSS, no script: nothing to recognize


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
        assert digests <= set(renderer.widget_code), name  # earlier releases' files are listed too


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


def _worst(tmp_path: pathlib.Path, notebook_json: dict) -> Severity:
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(notebook_json))
    return max(f.severity for f in scan_path(str(path)).findings)


def _bokeh_plot(with_code: str | None):
    from bokeh.models import CustomJS, Div, HTMLTemplateFormatter, OpenURL, TapTool
    from bokeh.plotting import figure

    plot = figure()
    plot.line([1, 2], [3, 4])
    if with_code == "CustomJS":
        plot.js_on_event("document_ready", CustomJS(code="fetch('/api/kernels')"))
    elif with_code == "OpenURL":
        plot.add_tools(TapTool(callback=OpenURL(url="javascript:alert(1)")))
    elif with_code == "HTMLTemplateFormatter":
        from bokeh.models import ColumnDataSource, DataTable, TableColumn

        source = ColumnDataSource({"a": [1]})
        formatter = HTMLTemplateFormatter(template="<%= alert(1) %>")
        return DataTable(source=source, columns=[TableColumn(field="a", formatter=formatter)])
    elif with_code == "Div":
        return Div(text="<b>plain</b>")
    return plot


@pytest.mark.parametrize(
    ("model", "loud"),
    [(None, False), ("Div", False), ("CustomJS", True), ("OpenURL", True), ("HTMLTemplateFormatter", True)],
)
def test_bokeh_documents_with_code_models_are_high(tmp_path: pathlib.Path, model: str | None, loud: bool):
    # BokehJS runs CustomJS code, underscore templates and javascript: URLs from the document JSON itself.
    from bokeh.embed import components
    from bokeh.resources import CDN

    script, div = components(_bokeh_plot(model))
    assert (_worst(tmp_path, _one_output(CDN.render_js() + script + div)) >= Severity.HIGH) == loud


def test_bokeh_code_names_cover_every_model_that_runs_code():
    # Every model of the installed bokeh whose properties hold code, a function, a template or a module is
    # named by bokeh's code_strings, so no such model passes as data.
    from bokeh.model import Model

    (renderer,) = [r for r in notebook.renderers().known if r.name == "bokeh"]
    assert renderer.code_strings is not None
    code_like = {"code", "func", "template", "module"}
    models = Model.model_class_reverse_map
    runs_code = {name for name, cls in models.items() if code_like & set(cls.properties())}
    assert len(runs_code) >= 10
    missed = sorted(name for name in runs_code if not renderer.code_strings.fullmatch(name.rsplit(".", 1)[-1]))
    assert not missed, missed
    assert not renderer.code_strings.fullmatch("Div") and not renderer.code_strings.fullmatch("Plot")


@pytest.fixture
def closes_new_widgets():
    """pydeck.Deck makes live ipywidgets, which would join every widget state saved later in this process."""
    from ipywidgets.widgets.widget import _instances

    before = set(_instances)
    yield
    for key in set(_instances) - before:
        _instances[key].close()


@pytest.mark.parametrize(
    ("accessor", "loud"),
    [
        ("p", False),  # pydeck writes "@@=p": an accessor
        ("p[0] * 2 + p[1]", False),
        ("[p[0] * 2, p[1]]", False),
        ("(p[0] + 1) * (2 - p[1])", False),  # grouping
        ("p[0] > 0 ? 'a' : 'b'", False),
        ("p.map (x)", True),  # a call, with or without space
        ("p?.(1)", True),
        ("constructor.constructor('alert(1)')()", True),
        ("new Function", True),
    ],
)
@pytest.mark.usefixtures("closes_new_widgets")
def test_pydeck_expressions_that_call_are_high(tmp_path: pathlib.Path, accessor: str, loud: bool):
    import pydeck

    layer = pydeck.Layer("ScatterplotLayer", data=[{"p": [10, 52]}], get_position=accessor, get_radius=1000)
    deck = pydeck.Deck(layers=[layer])
    html = deck.to_html(as_string=True, notebook_display=True)
    assert (_worst(tmp_path, _one_output(str(html))) >= Severity.HIGH) == loud


def test_pydeck_code_strings_refuse_what_an_expression_evaluator_would_call():
    (renderer,) = [r for r in notebook.renderers().known if r.name == "pydeck"]
    assert renderer.code_strings is not None
    for code in ["@@=`${alert(1)}`", "@@function f", "@@=a\n(1)", "@@=a\\u0028", "@@=new\tX"]:
        assert renderer.code_strings.fullmatch(code), code
    for data in ["@@=p", "@@#COORDINATE_SYSTEM.LNGLAT", "@@type", "@@=a ? 'x(' : b", "plain"]:
        assert (renderer.code_strings.fullmatch(data) is not None) == ("(" in data), data


@pytest.mark.usefixtures("closes_new_widgets")
def test_pydeck_custom_libraries_are_high(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch):
    import pydeck

    quiet_deck = pydeck.Deck(layers=[])
    quiet = quiet_deck.to_html(as_string=True, notebook_display=True)
    libraries = [{"libraryName": "x", "resourceUri": "https://evil.example/x.js"}]
    monkeypatch.setattr(pydeck.settings, "custom_libraries", libraries)  # pydeck loads these scripts
    loud_deck = pydeck.Deck(layers=[])
    loud = loud_deck.to_html(as_string=True, notebook_display=True)
    assert _worst(tmp_path, _one_output(str(quiet))) < Severity.HIGH
    assert _worst(tmp_path, _one_output(str(loud))) >= Severity.HIGH


def _widget_notebook(module: str, fields: dict) -> dict:
    state = {"_model_module": module, "_view_module": module, **fields}
    model = {"model_module": module, "model_name": "M", "model_module_version": "1", "state": state}
    widgets = {"application/vnd.jupyter.widget-state+json": {"version_major": 2, "version_minor": 0,
                                                              "state": {"m1": model}}}  # fmt: skip
    return {"cells": [], "metadata": {"widgets": widgets}, "nbformat": 4, "nbformat_minor": 5}


@pytest.mark.parametrize(
    ("module", "fields", "loud"),
    [
        ("@deck.gl/jupyter-widget", {"json_input": '{"layers": []}', "custom_libraries": None}, False),
        (
            "@deck.gl/jupyter-widget",
            {"custom_libraries": [{"libraryName": "x", "resourceUri": "https://e/x.js"}]},
            True,
        ),
        ("@deck.gl/jupyter-widget", {"configuration": "alert(1)"}, True),
        ("@deck.gl/jupyter-widget", {"json_input": '{"layers": [{"getRadius": "@@=alert(1)"}]}'}, True),
        ("@bokeh/jupyter_bokeh", {"_model": {"type": "object", "name": "Div", "attributes": {"text": "x"}}}, False),
        (
            "jupyter-vuetify",
            {"template": "<template><div>{{ constructor.constructor('alert(1)')() }}</div></template>"},
            True,
        ),  # a Vue template is code
        (
            "@bokeh/jupyter_bokeh",
            {"_model": {"type": "object", "name": "CustomJS", "attributes": {"code": "x"}}},
            True,
        ),
    ],
)
def test_reviewed_widget_state_that_names_code_is_high(tmp_path: pathlib.Path, module: str, fields: dict, loud: bool):
    # The library's own JavaScript draws the widget, but runs what its state names: custom script URLs,
    # CustomJS code, expressions that call.
    assert (_worst(tmp_path, _widget_notebook(module, fields)) >= Severity.HIGH) == loud


PLOTLY_FRAME = '<iframe scrolling="no" width="100%" height="545px" src="SRC" frameborder="0" allowfullscreen></iframe>'


@pytest.mark.parametrize(
    ("source", "written", "loud"),
    [
        ("iframe_figures/figure_0.html", "plotly", False),
        ("iframe_figures/figure_0.html", "evil", True),  # a file beside the notebook runs in its origin
        ("iframe_figures/figure_1.html", "plotly", True),  # no such file: whatever the server holds later
        ("iframe_figures/../iframe_figures/figure_0.html", "plotly", True),
        ("iframe_figures/%66igure_0.html", "plotly", True),
        ("/files/iframe_figures/figure_0.html", "plotly", True),
    ],
)
def test_frames_to_files_beside_the_notebook_are_judged_by_the_file(
    tmp_path: pathlib.Path, source: str, written: str, loud: bool
):
    import plotly.graph_objects as go

    figures = tmp_path / "iframe_figures"
    figures.mkdir()
    plotly_page = go.Figure(go.Bar(y=[1, 2])).to_html(include_plotlyjs=True, full_html=True)
    page = plotly_page if written == "plotly" else plotly_page.replace("<body>", "<body><script>x()</script>", 1)
    (figures / "figure_0.html").write_text(page)
    assert (_worst(tmp_path, _one_output(PLOTLY_FRAME.replace("SRC", source))) >= Severity.HIGH) == loud


def test_frame_files_are_read_only_from_inside_the_notebooks_folder(tmp_path: pathlib.Path):
    import plotly.graph_objects as go

    outside = tmp_path / "outside.html"
    outside.write_text(go.Figure().to_html(include_plotlyjs=True, full_html=True))
    folder = tmp_path / "nb"
    folder.mkdir()
    (folder / "link.html").symlink_to(outside)
    (folder / ".hidden.html").write_text(outside.read_text())
    for source in ("link.html", ".hidden.html", "../outside.html"):
        path = folder / "n.ipynb"
        path.write_text(json.dumps(_one_output(PLOTLY_FRAME.replace("SRC", source))))
        assert max(f.severity for f in scan_path(str(path)).findings) >= Severity.HIGH, source


def test_panel_code_names_cover_every_panel_model_that_runs_code():
    # panel's bundle runs ReactiveHTML scripts, ReactiveESM modules and deck.gl configurations: every panel
    # model with such a property is named, or carries an attribute key that is.
    import importlib
    import pkgutil

    import panel.models
    from bokeh.model import Model

    for module in pkgutil.iter_modules(panel.models.__path__):
        try:
            importlib.import_module(f"panel.models.{module.name}")
        except ImportError:  # optional front ends (e.g. ipywidgets bridges) need their own packages
            continue
    (renderer,) = [r for r in notebook.renderers().known if r.name == "panel"]
    assert renderer.code_strings is not None
    code_like = {"esm", "scripts", "importmap", "configuration"}
    found = 0
    for name, cls in Model.model_class_reverse_map.items():
        props = code_like & set(cls.properties())
        if name.startswith("panel.") and props:
            found += 1
            named = renderer.code_strings.fullmatch(name)
            keyed = all(renderer.code_strings.fullmatch(prop) for prop in props)
            tabulator = name == "panel.models.tabulator.DataTabulator"  # its configuration is Tabulator options
            assert named or keyed or tabulator, name
    assert found >= 4


@pytest.fixture(scope="module")
def holoviews_notebook() -> str:
    return kernel_outputs.run_in_kernel(kernel_outputs.SNIPPETS["holoviews"]).decode()


@pytest.mark.parametrize(
    ("tampered", "loud"),
    [
        ("this.style.opacity='1'", False),
        ("this.style.opacity='1';fetch('/api/kernels')", True),
        ("this.style.opacity='1' ", True),  # exact values only
    ],
)
def test_holoviews_logo_handlers_are_known_only_as_written(
    tmp_path: pathlib.Path, holoviews_notebook: str, tampered: str, loud: bool
):
    written = "onmouseover=\\\"this.style.opacity='1'\\\""  # as the notebook's JSON holds it
    assert written in holoviews_notebook
    changed = holoviews_notebook.replace(written, written.replace("this.style.opacity='1'", tampered))
    path = tmp_path / "hv.ipynb"
    path.write_text(changed)
    assert (max(f.severity for f in scan_path(str(path)).findings) >= Severity.HIGH) == loud


def test_a_reactive_html_component_in_a_panel_document_is_high(tmp_path: pathlib.Path):
    # A ReactiveHTML subclass gets its own name from the notebook's defs; its scripts key gives it away.
    source = (
        "import panel as pn\npn.extension()\n"
        "class Clicker(pn.reactive.ReactiveHTML):\n"
        "    _template = \"<div id='x'>x</div>\"\n"
        "    _scripts = {'render': \"fetch('/api/kernels')\"}\n"
        "pn.Row(Clicker())"
    )
    path = tmp_path / "p.ipynb"
    path.write_bytes(kernel_outputs.run_in_kernel(source))
    loud = [f.message for f in scan_path(str(path)).findings if f.severity >= Severity.HIGH]
    assert any("no known renderer" in message for message in loud), loud


@pytest.mark.parametrize("layout", ["widescreen", "vertical"])
def test_sweetviz_scripts_are_the_librarys_own(tmp_path: pathlib.Path, layout: str):
    # show_notebook() puts the same page as show_html() in a srcdoc frame: every script of it is known.
    import pandas as pd
    import sweetviz

    page = tmp_path / "report.html"
    report = sweetviz.analyze(pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "x"]}))
    report.show_html(str(page), open_browser=False, layout=layout)
    frame = '<iframe srcdoc="' + page.read_text(encoding="utf-8").replace("&", "&amp;").replace('"', "&quot;")
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(_one_output(frame + '"></iframe>')))
    findings = scan_path(str(path)).findings
    assert not [f.message for f in findings if f.severity >= Severity.HIGH]
    assert any(f.evidence.get("renderer") == "sweetviz" for f in findings)
