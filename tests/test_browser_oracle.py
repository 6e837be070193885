"""The browser oracle (fuzz/browser.py, fuzz/html_oracle.py): Chromium's engine renders notebook HTML outputs
as JupyterLab renders a trusted output, and a short seeded campaign finds no output that mloops claims runs
nothing while a marker ran in the browser. The long campaign is bench/browser_campaign.py."""

from __future__ import annotations

import html

import pytest
from fuzz.html_cases import FOLIUM_HEAD, FOLIUM_TAIL, TENSORBOARD, HtmlGenerator, html_cases
from fuzz.html_oracle import HtmlOracle

from mloops.core import Severity

CASES = 3_000  # about half a minute
SEED = 20261207


def marker(case: int) -> str:
    return f"top.postMessage('mloops-hit:{case}:1','*')"


@pytest.fixture(scope="module")
def oracle():
    instance = HtmlOracle()
    yield instance
    instance.close()


def _template(text: str) -> str:
    """A RUNS/INERT template from literal text whose MARK stands for the marker (other braces kept)."""
    return text.replace("{", "{{").replace("}", "}}").replace("MARK", "{m}")


RUNS = [
    "<script>{m}</script>",
    # Renderer-seeded: a statement before the first Leaflet call of a folium page runs in the frame, and a
    # javascript: URL in %tensorboard's frame script runs in the frame.
    _template('<iframe srcdoc="' + html.escape(FOLIUM_HEAD + "MARK;\n" + FOLIUM_TAIL) + '"></iframe>'),
    _template('<iframe srcdoc="' + html.escape(FOLIUM_HEAD + 'var location = "javascript:MARK";' + FOLIUM_TAIL) + '">'),
    _template(TENSORBOARD.format(path='"javascript:MARK"', port="0")),
    '<img src=x onerror="{m}">',
    '<iframe srcdoc="<script>{m}</script>"></iframe>',
    '<iframe src="javascript:{m}"></iframe>',
    "<svg><script>{m}</script></svg>",
    '<details open ontoggle="{m}">',
    # Namespace confusion (browser oracle case 5502): the <style> lands in MathML, so its text is markup.
    '<table><form><math><mtext></form><form><mglyph><style></math><svg><animate attributeName=x dur=1ms onbegin="{m}"'
    " /></svg></table>",
    # An SVG <script> left open while a second <script> starts (browser oracle case 31799): both are scripts.
    '<svg><style><select><template><ScRiPt type="application/ecmascript">{m}</template></select></style></svg>'
    "<select><script type='application/ld+json'>x</script></select>",
    # </p> in SVG pops back to HTML, so the <style> is HTML raw text and the JSON <script> inside it is no
    # script: the handler after it runs (browser oracle case 175183).
    '<p><svg></p><style><title><script type="application/json">x</title></style></svg><img src=x onerror="{m}">',
    # At an SVG <title> (an integration point) Chrome reads <![CDATA[ as a bogus comment ending at the first
    # ">", so the rest is markup (browser oracle case 640798).
    '<svg><title><![CDATA[<a title="<svg><script>{m}</script></svg>">x</a>]]></title></svg>',
]
INERT = [
    '<noscript><img src=x onerror="{m}"></noscript>',
    "<textarea><script>{m}</script></textarea>",
    "<script type=application/json>{m}</script>",
    "<script type=esms-options>{m}</script>",
    "<script type=text/template>{m}</script>",
    "<script type='\u00a0module'>{m}</script>",
    "<template><script>{m}</script></template>",
]


@pytest.mark.parametrize("template", RUNS)
def test_the_browser_runs_what_runs_and_mloops_rejects_it(oracle, template: str):
    html = template.format(m=marker(1))
    assert oracle.browser.render([(1, html)]) == {1: {"1"}}
    assert oracle.verdict_of(html).worst >= Severity.HIGH


@pytest.mark.parametrize("template", INERT)
def test_the_browser_runs_nothing_that_is_inert(oracle, template: str):
    assert oracle.browser.render([(2, template.format(m=marker(2)))]) == {}


def test_the_generator_is_reproducible():
    assert HtmlGenerator(SEED).case(41) == HtmlGenerator(SEED).case(41)
    assert HtmlGenerator(SEED).case(41) != HtmlGenerator(SEED).case(42)


def test_short_campaign_finds_no_bypass_and_no_crash(oracle):
    found = [o.record() for o in oracle.run(html_cases(SEED, CASES)) if o.verdict in ("bypass", "crash")]
    counts = oracle.tally.counts
    assert not found, found[:3]
    assert sum(counts.values()) == CASES  # every case has a verdict (an engine hang included)
    # Not vacuous: the generator makes script run, and mloops claims a good share clean.
    assert counts["rejected-ran"] > CASES // 10, counts
    assert counts["clean-agrees"] > CASES // 20, counts


# (model, text, runs in the browser, reported at HIGH or above)
BOKEH_TEXTS = [
    ("Div", '<img src=x onerror="{m}">', True, True),
    ("Div", "<b>bold, nothing runs</b>", False, False),
    ("Paragraph", '<img src=x onerror="{m}">', False, True),  # shown as text; mloops reports it anyway
    ("Div", '<svg onload="{m}"></svg>', False, True),  # Chrome fires no onload for innerHTML's svg
]


@pytest.mark.parametrize(("model", "text", "runs", "loud"), BOKEH_TEXTS)
def test_bokeh_documents_render_in_the_browser_and_mloops_sees_what_runs(oracle, model, text, runs, loud):
    # Real BokehJS (bokeh's INLINE resources) renders real components() output: whatever runs is HIGH.
    from bokeh import models
    from bokeh.embed import components
    from bokeh.resources import INLINE

    # Each attempt has its own case id, so a marker that arrives late is never taken for another render's;
    # what runs is given three tries, since 5 MB of BokehJS may outlast the settle time on a loaded machine.
    first = 700 + 10 * BOKEH_TEXTS.index((model, text, runs, loud))
    for case in range(first, first + (3 if runs else 1)):
        script, div = components(getattr(models, model)(text=text.format(m=marker(case))))
        html = INLINE.render_js() + script + div
        ran = oracle.browser.render([(case, html)]) == {case: {"1"}}
        if ran:
            break
    loud_now = oracle.verdict_of(html).worst >= Severity.HIGH
    assert (ran, loud_now) == (runs, loud)
