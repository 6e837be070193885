"""A seeded grammar of notebook HTML outputs for the browser oracle: script carriers hidden in the places
where an HTML tokenizer and a browser may disagree.

Every case is a function of (seed, index) alone. A case is a few pieces; each piece is a carrier (a way to
run script) wrapped in zero to three contexts (a way to hide it), then spelled with syntax noise:

  carriers    inline and module <script>s (type spellings, unclosed at the end), event handlers that fire
              without a user (onerror, onload, ontoggle, onfocus+autofocus, onbegin, onanimationstart),
              javascript: URLs (entities, controls, case) in frames and objects, srcdoc and data: documents
              nesting carriers, SVG <script> with href; renderer-seeded: statements spliced into a folium
              page's reviewed calls, generated carriers inside that page, %tensorboard frame scripts with
              other URLs and ports
  contexts    comments and their odd endings (<!-->, --!>, bogus <! and <?), raw-text and escapable
              raw-text elements (style, textarea, title, xmp, noscript, noembed, noframes, iframe,
              plaintext), <template>, data script types, foreign content (svg, math, CDATA, foreignObject,
              annotation-xml, mglyph/malignmark namespace games), tables (foster parenting), select,
              attribute values
  noise       tag and attribute case, slashes and newlines between attributes, missing spaces, NUL bytes

Markers are ``top.postMessage('mloops-hit:<case>:<n>','*')``: harmless, and visible to the harness from any
frame. A case lists no expectation: the browser says what ran, mloops says what it claims.
"""

from __future__ import annotations

import base64
import html
import random
from collections.abc import Callable, Iterator

Piece = Callable[[random.Random, "Case"], str]


class Case:
    def __init__(self, case_id: int) -> None:
        self.case_id = case_id
        self.markers = 0

    def marker(self) -> str:
        self.markers += 1
        return f"top.postMessage('mloops-hit:{self.case_id}:{self.markers}','*')"


# ------------------------------------------------------------------ carriers

SCRIPT_TYPES = (
    "", "text/javascript", "TEXT/JavaScript", " text/javascript ", "module", "application/javascript",
    "application/ecmascript", "text/ecmascript", "text/jscript", "text/livescript", "text/x-javascript",
    "javascript", "text/javascript1.5", "application/json", "application/ld+json", "text/template",
    "text/plain", "importmap", "speculationrules", "text/babel", "\ttext/javascript\n",
)  # fmt: skip
AUTO_HANDLERS = (
    ("img", "src=x", "onerror"),
    ("img", "src=data:,", "onerror"),
    ("svg", "", "onload"),
    ("details", "open", "ontoggle"),
    ("input", "autofocus", "onfocus"),
    ("video", "src=x", "onerror"),
    ("audio", "src=x", "onerror"),
    ("object", "data=x", "onerror"),
    ("iframe", "", "onload"),
    ("style", "", "onload"),
    ("link", "rel=stylesheet href=x", "onerror"),
    ("div", "style=animation-name:mloops-spin;animation-duration:1ms", "onanimationstart"),
    ("body", "", "onload"),
    ("marquee", "", "onstart"),
    ("x", "", "onclick"),
)
FRAME_TAGS = (("iframe", "src"), ("embed", "src"), ("object", "data"), ("frame", "src"))


def _quoted(rng: random.Random, value: str) -> str:
    choice = rng.randrange(4)
    if choice == 0:
        return '"' + value.replace('"', "&quot;") + '"'
    if choice == 1:
        return "'" + value.replace("'", "&#39;") + "'"
    if choice == 2 and not any(c in value for c in " \t\n\f\r\"'=<>`"):
        return value
    return '"' + html.escape(value, quote=True) + '"'


def _script(rng: random.Random, case: Case) -> str:
    kind = rng.choice(SCRIPT_TYPES)
    attrs = f" type={_quoted(rng, kind)}" if kind or rng.random() < 0.2 else ""
    body = case.marker()
    if rng.random() < 0.1:
        return f"<script{attrs}>{body}"  # unclosed: runs up to the end of the output
    return f"<script{attrs}>{body}</script>"


def _svg_script(rng: random.Random, case: Case) -> str:
    if rng.random() < 0.5:
        url = "data:text/javascript," + case.marker()
        return f"<svg><script href={_quoted(rng, url)}></script></svg>"
    return f"<svg><script>{case.marker()}</script></svg>"


def _handler(rng: random.Random, case: Case) -> str:
    tag, attrs, event = rng.choice(AUTO_HANDLERS)
    if tag == "x" and rng.random() < 0.5:
        tag = rng.choice(("svg", "math", "a", "p"))
    style = "<style>@keyframes mloops-spin{from{opacity:1}to{opacity:.9}}</style>" if "animation" in attrs else ""
    attributes = f" {attrs}" if attrs else ""
    event = event if rng.random() < 0.8 else event.upper()
    return f"{style}<{tag}{attributes} {event}={_quoted(rng, case.marker())}>"


def _svg_animation(rng: random.Random, case: Case) -> str:
    element = rng.choice(("animate", "set", "animateTransform"))
    return f"<svg><{element} attributeName=x dur=1ms onbegin={_quoted(rng, case.marker())} /></svg>"


def _script_url(rng: random.Random, case: Case) -> str:
    scheme = rng.choice(("javascript", "JavaScript", "JAVASCRIPT", "java\tscript", "java\nscript", " javascript"))
    body = case.marker()
    url = f"{scheme}:{body}"
    encoding = rng.randrange(5)
    if encoding == 1:
        url = "".join(f"&#{ord(c)};" if rng.random() < 0.3 else c for c in url)
    elif encoding == 2:
        url = url.replace(":", "&colon;", 1)
    elif encoding == 3:
        url = "\x01\x02 " + url
    elif encoding == 4:
        url = url.replace("a", "&#x61;", 1)
    tag, attribute = rng.choice(FRAME_TAGS)
    value = '"' + url.replace('"', "&quot;") + '"' if encoding in (1, 2, 4) else _quoted(rng, url)
    return f"<{tag} {attribute}={value}></{tag}>"


def _srcdoc(rng: random.Random, case: Case, depth: int) -> str:
    inner = _piece(rng, case, depth + 1)
    sandbox = rng.choice(("", " sandbox", " sandbox=allow-scripts", " sandbox='allow-scripts allow-same-origin'"))
    return f"<iframe{sandbox} srcdoc={_quoted(rng, inner)}></iframe>"


def _data_document(rng: random.Random, case: Case, depth: int) -> str:
    inner = _piece(rng, case, depth + 1)
    if rng.random() < 0.5:
        url = "data:text/html;base64," + base64.b64encode(inner.encode()).decode()
    else:
        url = "data:text/html," + inner.replace("%", "%25").replace("#", "%23")
    tag, attribute = rng.choice(FRAME_TAGS)
    return f'<{tag} {attribute}="{html.escape(url, quote=True)}"></{tag}>'


# ------------------------------------------------------------------ renderer-seeded cases

# What mloops accepts as a known renderer's, with the marker spliced in: a folium page in a srcdoc frame whose
# script is reviewed Leaflet calls (parsers/js_calls.py), and %tensorboard's frame script. The offline browser
# loads no Leaflet, so spliced statements come before the first Leaflet call, where the browser runs them.
FOLIUM_NAME = "map_0123456789abcdef0123456789abcdef"
FOLIUM_HEAD = (
    '<!DOCTYPE html><html><head><script src="https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js">'
    "</script><script>L_NO_TOUCH = false; L_DISABLE_3D = false;</script></head><body>"
    f'<div class="folium-map" id="{FOLIUM_NAME}"></div></body><script>'
)
FOLIUM_TAIL = (
    f'var {FOLIUM_NAME} = L.map("{FOLIUM_NAME}", {{center: [52.0, 10.0], crs: L.CRS.EPSG3857, ...{{"zoom": 4,}}}});'
    "</script></html>"
)
FOLIUM_STATEMENTS = (
    "{m};", "L_NO_TOUCH = {m};", "{v} = {m};",
    "{v} = [1, {m}];", "{v} = {{a: {m}}};",
    "{v} = {{...{{a: {m}}}}};", "{v} = `${{{m}}}`;",
    "{v} = 'a' + {m};", "{v} = -{m};",
    "{v} = {{'__proto__': {m}}};", "{v} = 1\n{m}",
    "{v} = {{get a() {{ return 1 }}, b: {m}}};", "<!--\n{m};", "/* */ {m};",
    "{v} = (0, {m});", "L_NO_TOUCH = false\n;{m}",
    'var location = "javascript:{m}";', "{v} = {{a: 1}}[{m}];", "{e};", "{v} = `x`; {m}",
)  # fmt: skip
TENSORBOARD = (
    '<iframe id="tensorboard-frame-1" width="100%" height="80" frameborder="0"></iframe><script>(function() {{'
    ' const frame = document.getElementById("tensorboard-frame-1"); const url = new URL({path}, window.location);'
    " const port = {port}; if (port) {{ url.port = port; }} frame.src = url; }})();</script>"
)


def _folium_frame(rng: random.Random, case: Case, depth: int) -> str:
    if rng.random() < 0.7:
        marker = case.marker()
        escaped = marker.replace("top", "\\u0074op", 1)  # an identifier spelled with an escape
        statement = rng.choice(FOLIUM_STATEMENTS).format(m=marker, e=escaped, v=f"var map_{'0' * 32}")
        document = FOLIUM_HEAD + statement + "\n" + FOLIUM_TAIL
    else:  # the known page with a generated carrier inside it
        document = FOLIUM_HEAD.replace("</body>", _piece(rng, case, depth + 1) + "</body>") + FOLIUM_TAIL
    return f"<iframe srcdoc={_quoted(rng, document)}></iframe>"


def _tensorboard_frame(rng: random.Random, case: Case) -> str:
    marker = case.marker().replace("'", "\\'")
    path = rng.choice(("'/'", f'"javascript:{marker}"', f"'javascript:{marker}//'", '"/"'))
    port = rng.choice(("6006", "0", f"6006 + ({case.marker()}, 0)"))
    return TENSORBOARD.format(path=path, port=port)


# ------------------------------------------------------------------ contexts

WRAPPERS: tuple[tuple[str, str], ...] = (
    ("<!--", "-->"), ("<!-->", ""), ("<!--->", ""), ("<!--", "--!>"), ("<!--", "--!"), ("<!-", "->"),
    ("<!", ">"), ("<?", "?>"), ("</", ">"), ("<!--", ""), ("<!-- --", "-->"), ("<!--<!--", "-->"),
    ("<style>", "</style>"), ("<textarea>", "</textarea>"), ("<title>", "</title>"), ("<xmp>", "</xmp>"),
    ("<noscript>", "</noscript>"), ("<noembed>", "</noembed>"), ("<noframes>", "</noframes>"),
    ("<iframe>", "</iframe>"), ("<plaintext>", ""), ("<template>", "</template>"),
    ("<script type=text/template>", "</script>"), ("<script type=application/json>", "</script>"),
    ("<svg>", "</svg>"), ("<math>", "</math>"), ("<svg><style>", "</style></svg>"),
    ("<svg><![CDATA[", "]]></svg>"), ("<math><![CDATA[", "]]></math>"), ("<![CDATA[", "]]>"),
    ("<svg><foreignObject>", "</foreignObject></svg>"), ("<svg><desc>", "</desc></svg>"),
    ("<svg><title>", "</title></svg>"), ("<math><annotation-xml encoding=text/html>", "</annotation-xml></math>"),
    ("<math><mtext><table><mglyph><style>", "</style></mglyph></table></mtext></math>"),
    ("<math><mtext><table><mglyph><svg><style>", ""),
    ("<form><math><mtext></form><form><mglyph><style></math>", ""),
    ("<svg></p><style>", "</style></svg>"), ("<svg><p><style>", "</style></p></svg>"),
    ("<table>", "</table>"), ("<table><td>", "</td></table>"), ("<select>", "</select>"),
    ("<select><template>", "</template></select>"), ("<noscript><p title=\"", "\"></noscript>"),
    ("<a title=\"", "\">x</a>"), ("<img alt='", "'>"), ("<textarea><!--", "--></textarea>"),
    ("<style><!--", "--></style>"), ("<script><!--", "--></script>"), ("<script type=text/plain><!--<script>", ""),
    ("<div>", "</div>"), ("<p>", ""), ("<object>", "</object>"), ("<frameset>", "</frameset>"),
)  # fmt: skip


def _noise(rng: random.Random, text: str) -> str:
    """Syntax a browser reads the same way: tag case, odd separators, NULs, missing spaces."""
    choice = rng.randrange(8)
    if choice == 0:
        return text.replace("<img ", "<IMG ").replace("<script", "<ScRiPt").replace("</script", "</SCRIPT")
    if choice == 1:
        return text.replace(" on", "/on", 1).replace("<img ", "<img/", 1)
    if choice == 2:
        return text.replace(" on", "\n\ton", 1)
    if choice == 3:
        return text.replace('" on', '"on', 1).replace("' on", "'on", 1)
    if choice == 4:
        return text.replace("<script", "<script\x00", 1).replace("<img", "<i\x00mg", 1)
    if choice == 5:
        return text.replace("</script>", "</script >", 1).replace("</script>", "</script\t/>", 1)
    if choice == 6:
        return text.replace("<", "<\x0c", 1) if rng.random() < 0.3 else text + "<"
    return text


def _piece(rng: random.Random, case: Case, depth: int = 0) -> str:
    draw = rng.random()
    carrier: str
    if depth < 2 and draw < 0.08:
        carrier = _srcdoc(rng, case, depth)
    elif depth < 2 and draw < 0.14:
        carrier = _data_document(rng, case, depth)
    elif depth < 2 and draw < 0.20:
        carrier = _folium_frame(rng, case, depth) if draw < 0.18 else _tensorboard_frame(rng, case)
    else:
        carrier = rng.choice((_script, _script, _handler, _handler, _svg_script, _svg_animation, _script_url))(
            rng, case
        )
    for _ in range(rng.choice((0, 1, 1, 1, 2, 2, 3))):
        opening, closing = rng.choice(WRAPPERS)
        carrier = f"{opening}{carrier}{closing}"
    return _noise(rng, carrier)


FILLER = ("", "text ", "<b>bold</b>", "<table><tr><td>1</td></tr></table>", "&lt;x&gt;", "<br>", "<p>")


class HtmlGenerator:
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def case(self, index: int) -> tuple[str, str]:
        """(HTML output, origin label) of case ``index``."""
        rng = random.Random(f"html:{self.seed}:{index}")
        case = Case(index)
        count = rng.choice((1, 1, 2, 3))
        parts = []
        for _ in range(count):
            parts.append(rng.choice(FILLER))
            parts.append(_piece(rng, case))
        return "".join(parts), f"gen:{count}"


def html_cases(seed: int, count: int, start: int = 0, shard: int = 0, shards: int = 1) -> Iterator[tuple[int, str]]:
    generator = HtmlGenerator(seed)
    for index in range(start + shard, count, shards):
        yield index, generator.case(index)[0]
