"""Scripts made of reviewed calls with data arguments (parsers/js_calls.py), on folium's real maps: every map
folium draws with its core elements is known, and any step outside the subset makes the script unknown."""

from __future__ import annotations

import html
import io
import re

import pytest
from corpus import notebook as fx

from mloops.context import Item, ScanContext
from mloops.core import FileResult, Location, Severity
from mloops.limits import Limits
from mloops.notebooks import notebook
from mloops.parsers import js_calls
from mloops.picklevm.policy import default_policy
from mloops.scan import dispatch

folium = pytest.importorskip("folium")
plugins = pytest.importorskip("folium.plugins")


def _maps() -> dict[str, object]:
    made = {}
    m = folium.Map(location=[52, 10], zoom_start=4)
    folium.Marker([52, 10], popup="<b>hi</b>", tooltip="tip").add_to(m)
    made["marker"] = m
    m = folium.Map(location=[52, 10])
    folium.CircleMarker([52, 10], radius=5, color="red", fill=True).add_to(m)
    folium.Circle([52, 11], radius=500).add_to(m)
    folium.PolyLine([[52, 10], [53, 11]]).add_to(m)
    folium.Polygon([[52, 10], [53, 11], [52, 12]]).add_to(m)
    folium.Rectangle([[52, 10], [53, 11]]).add_to(m)
    made["shapes"] = m
    m = folium.Map(control_scale=True)
    group = folium.FeatureGroup(name="<i>group</i>").add_to(m)
    folium.Marker([1, 2], icon=folium.Icon(color="green", icon="info-sign")).add_to(group)
    folium.Marker([1, 3], icon=folium.DivIcon(html="<div>d</div>")).add_to(group)
    folium.Marker([1, 4], popup=folium.Popup("<i>x</i>", max_width=300)).add_to(m)
    folium.LayerControl().add_to(m)
    m.fit_bounds([[0, 0], [3, 3]])
    made["layers"] = m
    m = folium.Map()
    plugins.MarkerCluster([[1, 2], [3, 4]]).add_to(m)
    plugins.HeatMap([[1, 2, 0.5], [3, 4, 1]]).add_to(m)
    plugins.Fullscreen().add_to(m)
    plugins.MiniMap().add_to(m)
    folium.raster_layers.ImageOverlay("https://example.org/x.png", bounds=[[0, 0], [1, 1]]).add_to(m)
    made["plugins"] = m
    return made


MAPS = _maps()


def run(data: bytes) -> FileResult:
    ctx = ScanContext("nb.ipynb", Limits(), default_policy(), dispatch)
    notebook.analyze(ctx, Item(io.BytesIO(data), Location("nb.ipynb"), len(data), "nb.ipynb", 0))
    return ctx.result


def loud(result: FileResult) -> list[str]:
    return [f"{f.rule.id} {f.message}" for f in result.findings if f.severity >= Severity.HIGH]


def framed(document: str) -> bytes:
    """The document in a srcdoc frame, as folium's _repr_html_ puts it."""
    return fx.output_notebook("text/html", f'<div><iframe srcdoc="{html.escape(document)}"></iframe></div>')


@pytest.mark.parametrize("name", sorted(MAPS))
def test_folium_maps_are_known(name: str):
    result = run(fx.output_notebook("text/html", MAPS[name]._repr_html_()))
    assert not loud(result), loud(result)
    assert any(f.rule.id == "MLO317" and f.evidence.get("renderer") == "folium" for f in result.findings)


def _document() -> str:
    return MAPS["marker"].get_root().render()


def test_the_document_alone_is_known_in_its_frame():
    assert not loud(run(framed(_document())))


@pytest.mark.parametrize(
    "statement",
    [
        "alert(1);",  # a function nobody reviewed
        "eval('alert(1)');",
        "var location = 'javascript:alert(1)';",  # a declared name outside folium's pattern
        "var map_00000000000000000000000000000000 = function() {};",  # function literals
        "var map_00000000000000000000000000000000 = () => 1;",
        "L.marker([1, 2], {}).on('click', alert);",  # a method nobody reviewed
        "L.map.call(null, 'x');",
        "L.CRS.EPSG3857.constructor.constructor('alert(1)')();",
        "new Function('alert(1)')();",
        "L.marker([1, 2], {__proto__: {}});",
        "L.popup().setContent(`${alert(1)}`);",
        "L.popup().setContent($`<b>`);",  # a tagged template is a call
        "L.popup()['setContent']('<b>');",
        "$('<img>', {src: 'x', onerror: 'alert(1)'});",  # jQuery sets attributes from its second argument
        "var map_00000000000000000000000000000000 = L.map('m', {}); map_00000000000000000000000000000000();",
        "var popup_00000000000000000000000000000000_x = {a: 1}; L.popup(popup_00000000000000000000000000000000_x"
        ".constructor);",  # only the keys a declared object literal wrote are read
        "L.popup().setContent('<img src=x onerror=alert(1)>');",  # strings become HTML: the handler is found
        "L.control.layers({'<img src=x onerror=alert(1)>': 1}, {});",  # so do layer names, written as keys
        "L.popup().setContent('a') + alert(1);",
        "L_NO_TOUCH = alert(1);",
        "\\u0061lert(1);",
        "<!-- comment\nalert(1);",
    ],
)
def test_any_step_outside_the_reviewed_calls_is_high(statement: str):
    document = _document()
    script = document.rindex("</script>")
    tampered = document[:script] + statement + "\n" + document[script:]
    assert loud(run(framed(tampered))), statement


def test_a_frame_around_a_known_map_with_an_extra_handler_is_high():
    tampered = _document().replace("<body>", '<body><img src=x onerror="alert(1)">', 1)
    ids = {line.split()[0] for line in loud(run(framed(tampered)))}
    assert ids == {"MLO311", "MLO313"}


def test_strings_are_returned_decoded():
    grammar = notebook.renderers()
    folium_calls = next(r.calls for r in grammar.known if r.name == "folium")
    assert folium_calls is not None
    found = js_calls.recognize('L.popup().setContent("\\u003cb\\u003e", `<i>`);', folium_calls, lambda: None)
    assert found == ["<b>", "<i>"]


def test_deep_nesting_is_refused_without_recursion_error():
    grammar = next(r.calls for r in notebook.renderers().known if r.name == "folium")
    assert grammar is not None
    assert js_calls.recognize("L.popup(" + "[" * 5000 + "]" * 5000 + ");", grammar, lambda: None) is None
    assert js_calls.recognize("L.popup(" + "[" * 20 + "]" * 20 + ");", grammar, lambda: None) == []


def test_declared_names_follow_foliums_pattern():
    grammar = next(r.calls for r in notebook.renderers().known if r.name == "folium")
    assert grammar is not None
    for name in re.findall(r"var (\w+) =", _document()):
        assert grammar.declared.fullmatch(name), name
