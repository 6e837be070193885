"""Jupyter notebooks (.ipynb): JSON whose saved outputs a front end renders when the notebook is opened.

HTML, SVG and Markdown in outputs and Markdown cells, application/javascript outputs and saved widget
state run in the Jupyter page, with the user's session: script there can drive the kernel, so cross-site
scripting becomes code execution on the Jupyter host. Markup is tokenized as the HTML standard tokenizes it
(parsers/html_tokens.py), never rendered; text that is inert only if the tree builder puts its element where
the tokenizer assumes (comments, raw text, CDATA) is tokenized again, and active markup there is reported.
The output of known plotting libraries is told apart from unknown script by full-match fingerprints, never
by a prologue alone.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any, NamedTuple

from .. import rules
from ..context import Item, ScanContext
from ..core import AttackClass, Capability, ParseError, Rule, Severity
from ..data import load_toml
from ..limits import Limits
from ..mlcode import python_code, secrets
from ..parsers import html_tokens, js_calls
from ..registry import Format

_NOTEBOOK_FIX = (
    "Do not open or trust the notebook as it is. Clear its outputs (jupyter nbconvert --clear-output, or "
    "nbstripout) and rerun the cells you have read, or view it with the outputs sandboxed. "
)
NOTEBOOK_SCRIPT = Rule(
    id="MLO310",
    name="notebook-script",
    title="Notebook output or Markdown holds script from no known renderer",
    severity=Severity.HIGH,
    attack_class=AttackClass.NOTEBOOK_XSS,
    capability=Capability.CODE_EXECUTION,
    description=(
        "A <script> in an HTML, SVG or Markdown output runs in the Jupyter page with the user's session: it can "
        "start a kernel and run code on the Jupyter host. Known plotting libraries are recognised by full-match "
        "fingerprints; this script matched none."
    ),
    remediation=_NOTEBOOK_FIX,
    summary="Notebook output or Markdown holds script from no known renderer.",
)
NOTEBOOK_EVENT_HANDLER = Rule(
    id="MLO311",
    name="notebook-event-handler",
    title="Notebook markup has an event handler or a command attribute",
    severity=Severity.HIGH,
    attack_class=AttackClass.NOTEBOOK_XSS,
    capability=Capability.CODE_EXECUTION,
    description=(
        "on*= attributes (onerror, onload, onmouseover, ...) run script without a <script> tag; "
        "data-commandlinker-* attributes run JupyterLab commands on click. No plotting library writes them into "
        "saved outputs."
    ),
    remediation=_NOTEBOOK_FIX,
    summary="Notebook markup has an event handler or a command attribute.",
)
NOTEBOOK_SCRIPT_URL = Rule(
    id="MLO312",
    name="notebook-script-url",
    title="Notebook markup has a javascript: URL",
    severity=Severity.HIGH,
    attack_class=AttackClass.NOTEBOOK_XSS,
    capability=Capability.CODE_EXECUTION,
    description=(
        "A javascript: (or vbscript:) URL runs script when the link is followed or the frame loads. Entities, "
        "whitespace and control characters inside the scheme are ignored by browsers and were decoded here."
    ),
    remediation=_NOTEBOOK_FIX,
    summary="Notebook markup has a javascript: URL.",
)
NOTEBOOK_EMBEDDED_DOCUMENT = Rule(
    id="MLO313",
    name="notebook-embedded-document",
    title="Notebook markup embeds a document (iframe, object, embed)",
    severity=Severity.HIGH,
    attack_class=AttackClass.NOTEBOOK_XSS,
    capability=Capability.CODE_EXECUTION,
    description=(
        "An iframe, object or embed loads another document into the page; srcdoc frames and data: URLs "
        "inherit or imitate the Jupyter origin and carry script past output sanitizers, and a frame of the Jupyter "
        "server's own origin (a relative or local address) drives its API. A document of another https origin "
        "is walled off by the same-origin policy: MEDIUM, LOW when sandboxed without popups or top navigation."
    ),
    remediation=_NOTEBOOK_FIX,
    summary=(
        "Notebook markup embeds a document (iframe, object, embed): high for srcdoc, data:, script URLs and the "
        "Jupyter server's own origin; another https origin is walled off by the same-origin policy (medium, low when "
        "sandboxed without popups or top navigation)."
    ),
    severities="low to high",
)
NOTEBOOK_NAVIGATION = Rule(
    id="MLO314",
    name="notebook-navigation",
    title="Notebook markup redirects the page or posts a form elsewhere",
    severity=Severity.HIGH,
    attack_class=AttackClass.NOTEBOOK_XSS,
    capability=Capability.CODE_EXECUTION,
    description=(
        "<meta http-equiv=refresh> navigates to an attacker page, <base> re-points every relative URL of the "
        "Jupyter page, and a form with an action sends what the user types to another address."
    ),
    remediation=_NOTEBOOK_FIX,
    summary="Notebook markup redirects the page or posts a form elsewhere.",
)
NOTEBOOK_JAVASCRIPT_OUTPUT = Rule(
    id="MLO315",
    name="notebook-javascript-output",
    title="Notebook has an application/javascript output",
    severity=Severity.HIGH,
    attack_class=AttackClass.NOTEBOOK_XSS,
    capability=Capability.CODE_EXECUTION,
    description=(
        "Jupyter evaluates application/javascript outputs of a trusted notebook in the page, with full access "
        "to the kernel. Known renderer scripts are recognised by full-match fingerprints; this one matched none."
    ),
    remediation=_NOTEBOOK_FIX,
    summary="Notebook has an application/javascript output.",
)
NOTEBOOK_WIDGET_CODE = Rule(
    id="MLO316",
    name="notebook-widget-code",
    title="Saved widget state loads a widget module outside ipywidgets",
    severity=Severity.HIGH,
    attack_class=AttackClass.NOTEBOOK_XSS,
    capability=Capability.CODE_EXECUTION,
    description=(
        "Widget state saved in the notebook metadata is rendered on open. A model from a module other than "
        "ipywidgets' own makes the widget manager fetch and run that module's JavaScript."
    ),
    remediation="Remove metadata.widgets (or clear the outputs) unless you know the widget library and its version.",
    summary=(
        "Saved widget state loads a widget module outside ipywidgets and the reviewed widget libraries "
        "(data/notebook_renderers.toml), or carries its own JavaScript (anywidget `_esm`/`_css`, read as code, never "
        "as HTML)."
    ),
)
NOTEBOOK_KNOWN_RENDERER = Rule(
    id="MLO317",
    name="notebook-known-renderer",
    title="Notebook output holds active content from a known renderer",
    severity=Severity.LOW,
    attack_class=AttackClass.NOTEBOOK_XSS,
    capability=Capability.CODE_EXECUTION,
    description=(
        "The output's scripts all match fingerprints of a widely used rendering library (plotly, altair/vega, "
        "bokeh, ipywidgets): CDN script URLs, full script templates with only JSON data inside, or hashes of "
        "the library bundles. They still run in the page and load code from the library's CDN."
    ),
    remediation=(
        "Nothing to fix if you expected this chart or widget. Clear the outputs before sharing notebooks "
        "from unknown sources."
    ),
    summary="Notebook output holds active content from a known renderer.",
)


MAX_NOTEBOOK_BYTES = 128 << 20  # notebooks with inlined plotting bundles reach tens of MiB
# Findings of a srcdoc document held per rule until its frame is judged: a memory bound; the rest are counted.
HELD_PER_RULE = Limits().max_findings_per_rule
MAX_WIDGET_STRINGS = 200_000  # string values looked at in saved widget state
MAX_NESTING = 8  # output widgets hold outputs that may hold output widgets
MAX_TEMPLATE_CHARS = 8 << 20  # running scripts longer than this are only compared by hash
SNIPPET = 120

WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
HTML_MIMES = ("text/html", "image/svg+xml")
MARKDOWN_MIME = "text/markdown"
SCRIPT_MIMES = ("application/javascript", "text/javascript", "application/x-javascript")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# nbformat 3 stored outputs under short keys
V3_MIMES = {"html": "text/html", "svg": "image/svg+xml", "markdown": MARKDOWN_MIME, "javascript": SCRIPT_MIMES[0]}

EMBEDDING_TAGS = frozenset({"iframe", "frame", "frameset", "object", "embed", "applet", "portal"})
# A <script> runs only when its type is empty, "module" or a JavaScript MIME type (HTML, "prepare the script
# element"; jQuery's .html() and JupyterLab's re-created scripts keep the same rule). Import maps and speculation
# rules run nothing themselves but change what later scripts load: active too. es-module-shims, which the
# panel loader brings into the page, runs "module-shim" and "importmap-shim" scripts and takes its options
# (hooks named by global function names) from "esms-options": active as well. Any type naming a script
# language is taken as JavaScript, parameters or not; every other type (application/json, text/template,
# ...) is data.
ACTIVE_SCRIPT_TYPES = frozenset(
    {"", "module", "importmap", "speculationrules", "module-shim", "importmap-shim", "esms-options"}
)
SCRIPT_LANGUAGE = re.compile(r"(?:java|ecma|j|live|vb)script")
SCRIPT_URL = re.compile(r"(?:java|vb)script:")
URL_NOISE = re.compile(r"[\x00-\x20\x7f]+")  # browsers skip these around and inside a URL scheme
MAX_URL_PREFIX = 4096  # how much padding before the scheme is looked through
MAX_HIDDEN_DEPTH = 4  # comments and raw text inside comments and raw text, tokenized again this deep
MARKUP_START = re.compile(r"<[\s/]*[A-Za-z!?]")  # below that depth, anything that may open a tag is reported
MARKDOWN_LINK = re.compile(r"\]\(\s*<?([^)>\s]{1,4096})")
_HEAD_SCAN = re.compile(rb'"(?:cells|nbformat|worksheets)"\s*:')
_PLACEHOLDER = re.compile(r"@@(json|jsstring|id|ver|port|path|urls)@@")
_PLACEHOLDER_PATTERNS = {
    "id": re.compile(r"\s*[A-Za-z0-9_-]{1,128}"),
    "port": re.compile(r"\s*[1-9][0-9]{0,4}(?![0-9])"),
    # a JSON string holding an absolute path without dots, so a frame pointed there on the notebook's own
    # server reaches no file the user could have put there (Jupyter serves files only by their names)
    "path": re.compile(r'\s*"/[A-Za-z0-9_/-]{0,256}"'),
    "ver": re.compile(r"\s*[A-Za-z0-9.+]{1,40}"),  # no hyphen: templates follow it with "-ready", "-min"
    "jsstring": re.compile(r"\s*'(?:[^'\\\n\r]|\\[^\n\r])*'"),  # a literal: escapes cannot end it early
}
_JSON = json.JSONDecoder()


# ------------------------------------------------------------------ renderer fingerprints


class Renderer(NamedTuple):
    name: str
    why: str
    script_src: tuple[str, ...]
    mime_types: frozenset[str]
    bundles: frozenset[str]
    templates: tuple[tuple[Any, ...], ...]
    widget_code: frozenset[str]
    json_markup: bool  # strings of its JSON data become HTML in the page
    calls: js_calls.Grammar | None  # scripts made of calls to its reviewed functions
    code_strings: re.Pattern[str] | None  # data strings (values or keys) that make the library run code
    widget_modules: frozenset[str]  # its saved widget models, whose state is checked for code_strings
    widget_empty_fields: tuple[str, ...]  # fields of those models that must be null or empty
    handlers: frozenset[str]  # exact inline handler values it writes, which only restyle their element


class Renderers(NamedTuple):
    known: tuple[Renderer, ...]
    standard_widget_modules: frozenset[str]
    reviewed_widget_modules: frozenset[str]
    widget_code_fields: frozenset[str]
    script_mime_types: frozenset[str]  # extension mime types whose content the extension runs as script
    handlers: dict[str, str]  # known inline handler value -> the renderer that writes it


def _compile_template(text: str) -> tuple[Any, ...]:
    """Literal runs become whitespace-free regexes; placeholders stay names."""
    parts: list[Any] = []
    for index, piece in enumerate(_PLACEHOLDER.split(text)):
        if index % 2:
            parts.append(piece)
        elif piece.strip():
            parts.append(re.compile(r"\s*" + r"\s*".join(re.escape(word) for word in piece.split())))
    return tuple(parts)


@functools.cache
def renderers() -> Renderers:
    table = load_toml("notebook_renderers.toml")
    known = tuple(
        Renderer(
            name,
            spec["why"],
            tuple(spec["script_src"]),
            frozenset(spec["mime_types"]),
            frozenset(spec["bundles"]),
            tuple(_compile_template(text) for text in spec["templates"]),
            frozenset(spec.get("widget_code", [])),
            bool(spec.get("json_markup", False)),
            _call_grammar(spec["calls"]) if "calls" in spec else None,
            re.compile("|".join(f"(?:{item})" for item in spec["code_strings"])) if "code_strings" in spec else None,
            frozenset(spec.get("widget_modules", [])),
            tuple(spec.get("widget_empty_fields", [])),
            frozenset(spec.get("handlers", [])),
        )
        for name, spec in table.items()
    )
    script_mimes = frozenset(mime for spec in table.values() for mime in spec.get("script_mime_types", []))
    widgets = table["ipywidgets"]
    return Renderers(
        known,
        frozenset(widgets["standard_modules"]),
        frozenset(widgets["reviewed_modules"]),
        frozenset(widgets["code_fields"]),
        script_mimes,
        {handler: renderer.name for renderer in known for handler in renderer.handlers},
    )


def _call_grammar(spec: dict[str, Any]) -> js_calls.Grammar:
    return js_calls.Grammar(
        frozenset(spec["functions"]),
        frozenset(spec["string_only"]),
        frozenset(spec["methods"]),
        frozenset(spec["constants"]),
        frozenset(spec["globals"]),
        re.compile(spec["declared"]),
    )


def _matches_template(body: str, template: tuple[Any, ...], values: list[Any] | None = None) -> bool:
    """Whether ``body`` is ``template`` in full; the @@json@@ values it holds are added to ``values``."""
    position = 0
    for part in template:
        if part in ("json", "urls"):
            position = _skip_space(body, position)
            try:
                value, position = _JSON.raw_decode(body, position)
            except (ValueError, RecursionError):
                return False
            if part == "urls" and not _known_script_urls(value):
                return False
            if values is not None:
                values.append(value)
            continue
        pattern = _PLACEHOLDER_PATTERNS[part] if isinstance(part, str) else part
        match = pattern.match(body, position)
        if match is None:
            return False
        if part == "jsstring" and values is not None:
            values.append(_js_string_data(match.group(0).strip()[1:-1]))
        position = match.end()
    return _skip_space(body, position) == len(body)


def _known_script_urls(value: Any) -> bool:
    """A JSON list of script URLs a loader fetches, each on a known renderer's CDN as the browser reads it."""
    return isinstance(value, list) and all(isinstance(url, str) and identify_source(url) for url in value)


def _js_string_data(literal: str) -> Any:
    """What a single-quoted JS string holds once the page reads it: escapes decoded, then (as BokehJS does with
    the documents it embeds) HTML entities, then JSON when it is JSON."""
    text = unescape(js_calls.unescape_string(literal))
    try:
        return _JSON.decode(text)
    except (ValueError, RecursionError):
        return text


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def identify_script(
    body: str | None, digest: str, data: list[Any] | None = None, check_time: Callable[[], None] = lambda: None
) -> Renderer | None:
    """The renderer that wrote this inline script in full (None for a body too long to match), or None. For a
    renderer that writes its data into the page as HTML (json_markup), the matched template's data values, or
    the strings of its calls, are added to ``data``."""
    normalized = None if body is None else hashlib.sha256(_id_free(body)).hexdigest()
    for renderer in renderers().known:
        if digest in renderer.bundles or normalized in renderer.bundles:
            return renderer
        if body is None:
            continue
        wanted = renderer.code_strings is not None or (renderer.json_markup and data is not None)
        for template in renderer.templates:
            found: list[Any] | None = [] if wanted else None
            if _matches_template(body, template, found) and not _holds_code(found or [], renderer.code_strings):
                if data is not None and found and renderer.json_markup:
                    data.extend(found)
                return renderer
        strings = None if renderer.calls is None else js_calls.recognize(body, renderer.calls, check_time)
        if strings is not None:
            if data is not None and renderer.json_markup:
                data.extend(strings)
            return renderer
    return None


def _holds_code(values: list[Any], code: re.Pattern[str] | None) -> str | None:
    """The first string or key under ``values`` that makes the renderer run code (a bokeh CustomJS model, a
    pydeck expression outside the safe subset), or None. JSON text inside strings is looked into too."""
    if code is None:
        return None
    return next((text for text in _data_strings(values, inner=True) if code.fullmatch(text)), None)


def markup_strings(values: list[Any]) -> list[str]:
    """The strings with markup anywhere inside template data values."""
    return [text for text in _data_strings(values, inner=False) if "<" in text]


def _data_strings(values: list[Any], inner: bool) -> Iterator[str]:
    """The strings under ``values``, dicts and lists walked without recursion; with ``inner``, dict keys too and
    the strings of JSON text held in a string (widget fields and bokeh keep documents so)."""
    pending = list(values)
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            yield value
            if inner and value[:1] in ("{", "[") and value[-1:] in ("}", "]"):
                try:
                    pending.append(_JSON.decode(value))
                except (ValueError, RecursionError):
                    pass
        elif isinstance(value, dict):
            if inner:
                pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def _id_free(body: str) -> bytes:
    """The script with its per-output element ids (UUIDs) replaced, so one digest covers every output."""
    return _UUID.sub("@@id@@", body).encode("utf-8", "surrogatepass")


# A script URL is matched against a renderer's CDN prefixes only when the browser would fetch it as written:
# no percent-escapes, backslashes, controls or dot segments, which the URL parser rewrites ("vega@5/../evil@1/"
# on a shared CDN is another package).
_PLAIN_URL = re.compile(r"https://[A-Za-z0-9.-]+(?:/[A-Za-z0-9@_~+*^=:,.-]*)*(?:[?#][A-Za-z0-9@_~+*^=:,./&?#-]*)?")
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|$)")
_C0_OR_SPACE = "".join(map(chr, range(0x21)))  # what the URL parser trims from both ends (not U+00A0)


def identify_source(url: str) -> Renderer | None:
    if _PLAIN_URL.fullmatch(url) is None or _DOT_SEGMENT.search(url.split("?", 1)[0].split("#", 1)[0]):
        return None
    for renderer in renderers().known:
        if any(url.startswith(prefix) for prefix in renderer.script_src):
            return renderer
    return None


# ------------------------------------------------------------------ findings


class Where(NamedTuple):
    """Where in the notebook JSON a piece of content sits."""

    path: str
    cell: int | None = None
    output: int | None = None
    mime: str = ""

    def evidence(self, **more: str) -> dict[str, str]:
        found = {"path": self.path}
        if self.cell is not None:
            found["cell"] = str(self.cell)
        if self.output is not None:
            found["output"] = str(self.output)
        if self.mime:
            found["mime"] = self.mime
        return found | more


FrameReader = Callable[[str], "str | None"]


def _no_frame_files(source: str) -> str | None:
    """The frame reader where no folder is at hand (archive members, nested outputs)."""
    return None


_FRAME_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*")


def _frame_reader(ctx: ScanContext, item: Item) -> FrameReader:
    """Reads the document a frame's relative src names, when the notebook is a file on disk: JupyterLab resolves
    such URLs against the notebook's folder. Only plain paths below that folder (no dot segments, hidden names,
    escapes, queries or links out of it); anything else gives None, and the frame stays HIGH."""
    from pathlib import Path  # with urllib and ipaddress: paid by scans that meet a notebook only

    notebook_file = Path(ctx.result.path)
    if item.depth != 0 or not notebook_file.is_file():
        return _no_frame_files
    folder = notebook_file.resolve().parent

    def read(source: str) -> str | None:
        relative = source.strip(_C0_OR_SPACE)
        if _FRAME_PATH.fullmatch(relative) is None or "/." in relative:
            return None
        target = (folder / relative).resolve()
        if folder not in target.parents or not target.is_file() or target.stat().st_size > MAX_NOTEBOOK_BYTES:
            return None
        return target.read_bytes().decode("utf-8", "replace")

    return read


class Reporter:
    """Reports a notebook finding where it sits in the notebook's JSON (the context caps floods)."""

    def __init__(self, ctx: ScanContext, item: Item, frame_file: FrameReader = _no_frame_files) -> None:
        self.ctx = ctx
        self.item = item
        self.frame_file = frame_file

    def __call__(self, rule: Rule, where: Where, what: str, severity: Severity | None = None, **more: str) -> None:
        message = f"{what} at {where.path}"
        self.ctx.report(rule.finding(self.item.location, message, where.evidence(**more), severity=severity))

    def unlisted(self, rule: Rule, count: int) -> None:
        """Findings a nested document held back beyond its buffer: counted into the rule's summary line."""
        self.ctx.count_unlisted(rule.finding(self.item.location, "held back"), count)


def _snippet(text: str) -> str:
    return text[:SNIPPET]


# ------------------------------------------------------------------ markup


class _Markup:
    """Collects active content from one HTML/SVG/Markdown text, by the tokens a browser reads in it."""

    def __init__(
        self,
        report: Reporter | _Worst,
        where: Where,
        depth: int = 0,
        frames: int = 0,
        frame_file: FrameReader = _no_frame_files,
    ) -> None:
        self.report = report
        self.where = where
        self.frame_file = frame_file  # the document a relative frame src names, read from beside the notebook
        self.depth = depth  # how many comments or raw texts this text sits in
        self.frames = frames  # how many srcdoc documents this text sits in
        self.check_time: Callable[[], None] = lambda: None
        # attributes, text, running hash, and whether its type runs
        self.script: tuple[dict[str, str], list[str], Any, bool] | None = None
        self.script_chars = 0
        self.renderers: set[str] = set()
        self.unknown_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name, value in values.items():
            self._attribute(tag, name, value)
        if tag == "script":
            if self.script is not None:  # an SVG <script> left open: its text ends where the next one starts
                self._script_done(*self.script)
            self.script = (values, [], hashlib.sha256(), _is_active_script_type(values.get("type", "")))
            self.script_chars = 0
        elif tag in EMBEDDING_TAGS and "srcdoc" in values:
            self._frame_document(tag, values["srcdoc"])
        elif tag in EMBEDDING_TAGS:
            source = values.get("src") or values.get("data") or ""
            sandbox = values.get("sandbox", "(none)")
            severity, reach = _embedding_reach(values, source)
            document = self.frame_file(source) if severity >= Severity.HIGH and tag in ("iframe", "frame") else None
            if document is not None:  # a figure file beside the notebook (plotly's iframe renderer)
                self._frame_document(tag, document, source)
                return
            self.report(
                NOTEBOOK_EMBEDDED_DOCUMENT, self.where, f"<{tag}> embeds a document ({reach})", severity,
                tag=tag, source=_snippet(source), sandbox=sandbox,
            )  # fmt: skip
        elif tag == "meta" and values.get("http-equiv", "").strip().lower() == "refresh":
            content = values.get("content", "")
            self.report(NOTEBOOK_NAVIGATION, self.where, "<meta http-equiv=refresh> redirects the page",
                        tag=tag, content=_snippet(content))  # fmt: skip
        elif tag == "base":
            self.report(NOTEBOOK_NAVIGATION, self.where, "<base> changes where relative URLs point",
                        tag=tag, href=_snippet(values.get("href", "")))  # fmt: skip
        elif tag == "form" and _elsewhere(values.get("action", "")):
            self.report(NOTEBOOK_NAVIGATION, self.where, "<form> posts to another address",
                        tag=tag, action=_snippet(values.get("action", "")))  # fmt: skip

    def feed(self, text: str, check_time: Callable[[], None]) -> None:
        self.check_time = check_time
        for event in html_tokens.tokens(text, check_time):
            kind = event[0]
            if kind == "text":
                self.handle_data(event[1])
            elif kind == "start":
                self.handle_starttag(event[1], event[2])
                if event[3] and event[1] == "script":  # <script/> in SVG: an element with no text
                    self.handle_endtag(event[1])
            elif kind == "end":
                self.handle_endtag(event[1])
            elif kind == "hidden":
                self._look_for_hidden(event[2], event[1])
                if event[1] == html_tokens.CDATA:  # read as a bogus comment instead, it ends at the first ">"
                    self._look_for_hidden(event[2].partition(">")[2], event[1])
            else:
                self._look_for_hidden(event[1], "a comment")

    def _attribute(self, tag: str, name: str, value: str) -> None:
        if name.startswith("on") and len(name) > 2:
            known = renderers().handlers.get(value)  # exact reviewed values only, such as HoloViews' logo fade
            if known is not None:
                self.renderers.add(known)
            else:
                self.report(NOTEBOOK_EVENT_HANDLER, self.where, f"<{tag} {name}=...> runs script on an event",
                            tag=tag, attribute=name, value=_snippet(value))  # fmt: skip
        elif name.startswith("data-commandlinker-"):
            self.report(NOTEBOOK_EVENT_HANDLER, self.where, f"<{tag} {name}=...> runs a JupyterLab command",
                        tag=tag, attribute=name, value=_snippet(value))  # fmt: skip
        elif name == "formaction" and _elsewhere(value):
            self.report(NOTEBOOK_NAVIGATION, self.where, f"<{tag} formaction=...> posts to another address",
                        tag=tag, action=_snippet(value))  # fmt: skip
        if is_script_url(value):
            self.report(NOTEBOOK_SCRIPT_URL, self.where, f"<{tag} {name}=javascript:...> runs script",
                        tag=tag, attribute=name, value=_snippet(value))  # fmt: skip

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self.script is not None:
            self._script_done(*self.script)
            self.script = None

    def handle_data(self, data: str) -> None:
        # Text outside scripts is text for the browser too (raw-text elements included): nothing runs.
        if self.script is not None:
            _attrs, parts, digest, active = self.script
            digest.update(data.encode("utf-8", "surrogatepass"))
            self.script_chars += len(data)
            # A data script's text is kept whole: all of it is tokenized again, however long (within the
            # notebook's size limit), since markup hidden past any cut would otherwise pass.
            if self.script_chars <= MAX_TEMPLATE_CHARS or not active:
                parts.append(data)

    def _look_for_hidden(self, data: str, where: str) -> None:
        """Text a browser reads as markup if the tree builder nests its element otherwise than assumed (or, for a
        comment, if the namespace guess made CDATA of it): tokenized again, its active markup is reported."""
        if "<" not in data:
            return
        if self.depth >= MAX_HIDDEN_DEPTH:
            match = MARKUP_START.search(data)
            worst = Severity.HIGH if match else None
            detail = data[match.start() :] if match else ""
        else:
            collected = _Worst()
            self._nested(collected, data)
            worst, detail = collected.severity, collected.what
        if worst is not None:
            self.report(NOTEBOOK_SCRIPT, self.where,
                        f"active markup inside {where}, which a browser parses as markup when its element lands "
                        f"in SVG or MathML (namespace confusion): {detail}", worst, snippet=_snippet(data))  # fmt: skip

    def _script_done(self, attrs: dict[str, str], parts: list[str], digest: Any, active: bool) -> None:
        body = "".join(parts)
        if not active:
            # Data to the browser, if the script is where the tokenizer thinks: when tree construction ends it
            # elsewhere, what follows is markup (campaign case 175183 hid a handler after a JSON script).
            self._look_for_hidden(body, f"<script type={attrs.get('type', '')!r}>")
            return
        source = attrs.get("src") or attrs.get("href") or attrs.get("xlink:href") or ""
        data: list[Any] = []  # what the renderer's template held, when it writes that data as HTML
        if source:
            renderer = identify_source(source.strip(_C0_OR_SPACE)) if not body.strip() else None
            what, detail = f"<script src={_snippet(source)}>", source
        else:
            complete = self.script_chars <= MAX_TEMPLATE_CHARS
            renderer = identify_script(body if complete else None, digest.hexdigest(), data, self.check_time)
            what, detail = "inline <script>", body
        if renderer is None:
            self.unknown_scripts += 1
            self.report(NOTEBOOK_SCRIPT, self.where, f"{what} from no known renderer",
                        snippet=_snippet(detail.strip()), sha256=digest.hexdigest())  # fmt: skip
        else:
            self.renderers.add(renderer.name)
            if self.depth < MAX_HIDDEN_DEPTH:
                for markup in markup_strings(data):
                    self._nested(self.report, markup)

    def _nested(self, report: Reporter | _Worst, text: str) -> None:
        """Scan ``text`` as markup one level deeper, reporting to ``report``."""
        inner = _Markup(report, self.where, self.depth + 1, self.frames, self.frame_file)
        inner.feed(text, self.check_time)
        inner.finish()

    def _frame_document(self, tag: str, document: str, source: str = "") -> None:
        """A srcdoc document, or a file beside the notebook that a frame shows (``source``), runs in the
        notebook's origin: HIGH, unless a known renderer drew all of it and it holds nothing at HIGH (folium and
        pydeck draw their maps so, plotly's iframe renderer writes figure files). Its findings follow."""
        if self.frames >= MAX_NESTING:
            self.report(NOTEBOOK_EMBEDDED_DOCUMENT, self.where, f"srcdoc documents nested deeper than "
                        f"{MAX_NESTING}", Severity.HIGH, tag=tag)  # fmt: skip
            return
        held = _Held()
        inner = _Markup(held, self.where, self.depth, self.frames + 1, self.frame_file)
        inner.feed(document, self.check_time)
        inner.finish()
        label = f"src={_snippet(source)}" if source else "srcdoc"
        if inner.renderers and not inner.unknown_scripts and (held.severity is None or held.severity < Severity.HIGH):
            names = ", ".join(sorted(inner.renderers))
            what = f"<{tag} {label}> document drawn by a known renderer ({names})"
            self.report(NOTEBOOK_KNOWN_RENDERER, self.where, what, renderer=names, tag=tag)
        else:
            self.report(NOTEBOOK_EMBEDDED_DOCUMENT, self.where,
                        f"<{tag}> embeds a document ({label}: runs in the notebook's origin)", Severity.HIGH,
                        tag=tag, source=label, sandbox="(none)")  # fmt: skip
        held.replay(self.report)

    def finish(self) -> None:
        if self.script is not None:  # never closed: the browser runs it up to the end of the output
            self._script_done(*self.script)
            self.script = None


def _is_active_script_type(value: str) -> bool:
    kind = value.strip(html_tokens.ASCII_WHITESPACE).lower()
    return kind in ACTIVE_SCRIPT_TYPES or SCRIPT_LANGUAGE.search(kind) is not None


class _Worst:
    """Stands in for the Reporter inside hidden text: keeps the worst finding only."""

    def __init__(self) -> None:
        self.severity: Severity | None = None
        self.what = ""

    def __call__(self, rule: Rule, where: Where, what: str, severity: Severity | None = None, **more: str) -> None:
        level = severity if severity is not None else rule.severity
        if self.severity is None or level > self.severity:
            self.severity, self.what = level, what

    def unlisted(self, rule: Rule, count: int) -> None:
        """Findings beyond the cap are no worse than the ones listed."""


class _Held(_Worst):
    """Findings of a srcdoc document, kept back until its frame is judged (at most the cap per rule)."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[tuple[Rule, Where, str, Severity | None, dict[str, str]]] = []
        self.counts: dict[Rule, int] = {}

    def __call__(self, rule: Rule, where: Where, what: str, severity: Severity | None = None, **more: str) -> None:
        super().__call__(rule, where, what, severity)
        self.counts[rule] = self.counts.get(rule, 0) + 1
        if self.counts[rule] <= HELD_PER_RULE:
            self.kept.append((rule, where, what, severity, more))

    def unlisted(self, rule: Rule, count: int) -> None:
        self.counts[rule] = max(self.counts.get(rule, 0), HELD_PER_RULE) + count

    def replay(self, report: Reporter | _Worst) -> None:
        for rule, where, what, severity, more in self.kept:
            report(rule, where, what, severity, **more)
        for rule, count in self.counts.items():
            if count > HELD_PER_RULE:
                report.unlisted(rule, count - HELD_PER_RULE)


_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "0.0.0.0", ""})


def _embedding_reach(values: dict[str, str], source: str) -> tuple[Severity, str]:
    """How far an embedded document reaches. Another https origin is walled off from the notebook by the
    same-origin policy (LOW when sandboxed without popups or top navigation, else MEDIUM); srcdoc, data:,
    blob:, script URLs and the Jupyter server's own origin (relative or local addresses) run with, or
    next to, the notebook: HIGH."""
    if "srcdoc" in values:
        return Severity.HIGH, "srcdoc: runs in the notebook's origin"
    if not source:  # about:blank: only a script can fill it, and scripts are judged on their own
        return Severity.LOW, "an empty frame"
    url = re.sub(r"[\x00-\x20]", "", unescape(source)).lower().replace("\\", "/")  # browsers read \ as /
    scheme, _, rest = url.partition(":") if re.match(r"[a-z][a-z0-9+.-]*:", url) else ("", "", url)
    host = rest[2:].split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0] if rest.startswith("//") else ""
    if scheme in ("https", "http", "") and host not in _LOCAL_HOSTS:
        if scheme != "https":
            return Severity.MEDIUM, "another origin, not over https"
        sandbox = values.get("sandbox")
        contained = sandbox is not None and not {"allow-popups", "allow-top-navigation"} & set(sandbox.lower().split())
        return (
            (Severity.LOW, "another https origin, sandboxed")
            if contained
            else (Severity.MEDIUM, "another https origin")
        )
    return Severity.HIGH, "the notebook's own origin or an inline document"


def _elsewhere(action: str) -> bool:
    """A form target that leaves the page: anything but empty or a fragment."""
    action = action.strip()
    return bool(action) and not action.startswith("#")


def is_script_url(value: str) -> bool:
    """javascript:/vbscript: URL as a browser reads it: entities decoded, controls and whitespace dropped."""
    return SCRIPT_URL.match(URL_NOISE.sub("", value[:MAX_URL_PREFIX]).lower()) is not None


def scan_markup(ctx: ScanContext, report: Reporter, where: Where, text: str, markdown: bool = False) -> None:
    """One output's markup, and the srcdoc documents inside it."""
    parser = _Markup(report, where, frame_file=report.frame_file)
    parser.feed(text, ctx.budget.check_time)
    parser.finish()
    if markdown:
        for match in MARKDOWN_LINK.finditer(text):
            if is_script_url(match.group(1)):
                report(NOTEBOOK_SCRIPT_URL, where, "Markdown link to a javascript: URL",
                       value=_snippet(match.group(1)))  # fmt: skip
    if parser.renderers and not parser.unknown_scripts:
        names = ", ".join(sorted(parser.renderers))
        whys = "; ".join(renderer.why for renderer in renderers().known if renderer.name in parser.renderers)
        report(NOTEBOOK_KNOWN_RENDERER, where, f"script from a known renderer ({names}): {whys}",
               renderer=names)  # fmt: skip


# ------------------------------------------------------------------ notebook structure


class Malformed(ParseError):
    """The JSON parses but is not a notebook a front end would render as such."""


def detect(head: bytes, name: str) -> bool:
    """A JSON object with notebook keys; other JSON needs "nbformat" or "cell_type" too, the name alone is no proof."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped.startswith(b"{"):
        return False
    if _HEAD_SCAN.search(stripped) is None:
        return False
    return name.lower().endswith(".ipynb") or b'"nbformat"' in head or b'"cell_type"' in head


def analyze(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "notebook")
    data = ctx.read_all(item, MAX_NOTEBOOK_BYTES, "notebook")
    if data is None:
        return
    report = Reporter(ctx, item, _frame_reader(ctx, item))
    try:
        notebook = json.loads(data)
        _check_notebook(ctx, report, notebook)
    except (ValueError, RecursionError, Malformed) as exc:  # UnicodeDecodeError and JSONDecodeError included
        message = f"notebook is not valid notebook JSON: {_snippet(str(exc))}"
        ctx.report(rules.MALFORMED.finding(item.location, message, {"error": type(exc).__name__}))
        return
    credentials: set[str] = set()
    for index, source in code_cells(notebook):
        checked = python_code.check_source(source, item.location.child(f"cell {index}"))
        for finding in checked.findings:
            ctx.report(finding)
        credentials |= checked.credentials
    # Cells and outputs alike: the notebook's JSON text holds every string the user would share.
    secrets.report_secrets(ctx, item.location, data.decode("utf-8", "replace"), {}, credentials)


def notebook_cells(notebook: Any) -> list[tuple[str, dict[str, Any]]]:
    """(JSON path, cell) for nbformat 4 ("cells") and 3 ("worksheets"); Malformed when neither fits."""
    if not isinstance(notebook, dict):
        raise Malformed("top level is not an object")
    if "cells" in notebook:
        cells = _list(notebook["cells"], "cells")
        return [(f"cells[{index}]", _dict(cell, f"cells[{index}]")) for index, cell in enumerate(cells)]
    if "worksheets" in notebook:
        found = []
        for sheet_index, sheet in enumerate(_list(notebook["worksheets"], "worksheets")):
            path = f"worksheets[{sheet_index}].cells"
            for index, cell in enumerate(_list(_dict(sheet, path).get("cells", []), path)):
                found.append((f"{path}[{index}]", _dict(cell, f"{path}[{index}]")))
        return found
    raise Malformed("no 'cells' or 'worksheets'")


def code_cells(notebook: Any) -> list[tuple[int, str]]:
    """(cell index, source) of every code cell, for the code rules; [] when the JSON is not a notebook."""
    try:
        cells = notebook_cells(notebook)
        return [(index, _text(cell.get("source", cell.get("input", "")), path))
                for index, (path, cell) in enumerate(cells) if cell.get("cell_type") == "code"]  # fmt: skip
    except Malformed:
        return []


def _check_notebook(ctx: ScanContext, report: Reporter, notebook: Any) -> None:
    for index, (path, cell) in enumerate(notebook_cells(notebook)):
        ctx.budget.check_time()
        kind = cell.get("cell_type")
        if kind in ("markdown", "heading", "raw"):
            where = Where(f"{path}.source", index, mime=f"{kind} cell")
            # raw cells render only when converted, and then as whatever format they name: checked as markup
            scan_markup(ctx, report, where, _text(cell.get("source", ""), where.path), markdown=kind != "raw")
        for name, bundle in _dict(cell.get("attachments", {}), f"{path}.attachments").items():
            _check_bundle(ctx, report, Where(f"{path}.attachments.{name}", index), bundle, depth=0)
        for output_index, output in enumerate(_list(cell.get("outputs", []), f"{path}.outputs")):
            where = Where(f"{path}.outputs[{output_index}]", index, output_index)
            _check_output(ctx, report, where, output, depth=0)
    metadata = _dict(notebook.get("metadata", {}), "metadata")
    widgets = _dict(metadata.get("widgets", {}), "metadata.widgets")
    if WIDGET_STATE_MIME in widgets:
        _check_widget_state(ctx, report, Where(f"metadata.widgets.{WIDGET_STATE_MIME}"), widgets[WIDGET_STATE_MIME])


def _check_output(ctx: ScanContext, report: Reporter, where: Where, output: Any, depth: int) -> None:
    output = _dict(output, where.path)
    if "data" in output:
        _check_bundle(ctx, report, where._replace(path=f"{where.path}.data"), output["data"], depth)
    for short, mime in V3_MIMES.items():  # nbformat 3 keeps mime data on the output itself
        if short in output:
            _check_content(ctx, report, where._replace(path=f"{where.path}.{short}", mime=mime), mime, output[short])


def _check_bundle(ctx: ScanContext, report: Reporter, where: Where, bundle: Any, depth: int) -> None:
    for mime, value in _dict(bundle, where.path).items():
        located = where._replace(path=f"{where.path}.{mime}", mime=mime)
        if mime == WIDGET_STATE_MIME:
            _check_widget_state(ctx, report, located, value, depth)
        else:
            _check_content(ctx, report, located, mime, value)


def _check_content(ctx: ScanContext, report: Reporter, where: Where, mime: str, value: Any) -> None:
    if mime in HTML_MIMES or mime == MARKDOWN_MIME:
        scan_markup(ctx, report, where, _text(value, where.path), markdown=mime == MARKDOWN_MIME)
    elif mime in SCRIPT_MIMES or mime in renderers().script_mime_types:
        body = _text(value, where.path)
        if not body.strip():
            return  # nothing to run
        digest = hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
        renderer = identify_script(body, digest, check_time=ctx.budget.check_time)
        if renderer is None:
            report(NOTEBOOK_JAVASCRIPT_OUTPUT, where, f"{mime} output runs when the notebook is trusted",
                   snippet=_snippet(body.strip()), sha256=hashlib.sha256(_id_free(body)).hexdigest())  # fmt: skip
        else:
            report(NOTEBOOK_KNOWN_RENDERER, where, f"script from a known renderer: {renderer.why}",
                   renderer=renderer.name)  # fmt: skip
    else:
        for renderer in renderers().known:
            if mime in renderer.mime_types:
                report(NOTEBOOK_KNOWN_RENDERER, where, f"rendered by an extension: {renderer.why}",
                       renderer=renderer.name)  # fmt: skip


def _check_widget_state(ctx: ScanContext, report: Reporter, where: Where, state: Any, depth: int = 0) -> None:
    """Saved widget models render on open: modules outside ipywidgets load JavaScript, strings may be HTML."""
    models = _dict(_dict(state, where.path).get("state", {}), f"{where.path}.state")
    standard = renderers().standard_widget_modules
    reviewed = renderers().reviewed_widget_modules
    code_fields = renderers().widget_code_fields
    custom = 0
    strings = 0
    for model_id, model in models.items():
        ctx.budget.check_time()
        path = f"{where.path}.state.{model_id}"
        model = _dict(model, path)
        fields = _dict(model.get("state", {}), f"{path}.state")
        modules = {model.get("model_module"), fields.get("_model_module"), fields.get("_view_module")} - {None}
        foreign = sorted(str(module) for module in modules if module not in standard)
        unknown = [module for module in foreign if module not in reviewed]
        code = {field: fields[field] for field in code_fields if isinstance(fields.get(field), str) and fields[field]}
        shipped = {field: _shipped_widget_code(text) for field, text in code.items()}
        carried = sorted(field for field, renderer in shipped.items() if renderer is None)
        foreign += sorted({renderer.name for renderer in shipped.values() if renderer is not None})
        named = _named_widget_code(modules, fields)
        if unknown or carried or named:
            custom += 1
            if carried:
                digests = (
                    hashlib.sha256(code[field].encode("utf-8", "surrogatepass")).hexdigest() for field in carried
                )
                what = (
                    f"saved widget carries its own JavaScript ({', '.join(carried)}), which runs on open "
                    f"(sha256 {', '.join(digests)})"
                )
            elif named:
                what = f"saved widget state names code its library runs on open: {_snippet(named)}"
            else:
                what = (
                    "saved widget uses a module outside ipywidgets and the reviewed widget libraries, whose "
                    "JavaScript loads on open"
                )
            report(NOTEBOOK_WIDGET_CODE, where._replace(path=path), what,
                   module=", ".join(foreign), model=str(model.get("model_name", "")))  # fmt: skip
        elif foreign:
            report(NOTEBOOK_KNOWN_RENDERER, where._replace(path=path),
                   "saved widget of a reviewed widget library (its published JavaScript draws it)",
                   renderer=", ".join(foreign), model=str(model.get("model_name", "")))  # fmt: skip
        outputs = fields.get("outputs")
        if isinstance(outputs, list):  # Output widgets keep whole output bundles
            if depth >= MAX_NESTING:
                report(NOTEBOOK_WIDGET_CODE, where._replace(path=path), "output widgets nested too deep")
                continue
            for index, output in enumerate(outputs):
                _check_output(ctx, report, where._replace(path=f"{path}.state.outputs[{index}]"), output, depth + 1)
        plain = {key: value for key, value in fields.items() if value is not outputs and key not in code_fields}
        for key, text in _strings(plain, f"{path}.state"):
            strings += 1
            if strings > MAX_WIDGET_STRINGS:
                report(NOTEBOOK_WIDGET_CODE, where, f"more than {MAX_WIDGET_STRINGS} strings in widget state")
                return
            if "<" in text:  # HTML/HTMLMath values and HTML descriptions render as markup
                scan_markup(ctx, report, where._replace(path=key), text)
    if not custom:
        report(NOTEBOOK_KNOWN_RENDERER, where,
               "saved widget state with ipywidgets and reviewed widget libraries' models only",
               renderer="ipywidgets", models=str(len(models)))  # fmt: skip


def _named_widget_code(modules: set[Any], fields: dict[str, Any]) -> str | None:
    """A string in a reviewed library's widget state that makes its JavaScript run code (bokeh CustomJS in a
    jupyter_bokeh document, a pydeck expression), or None."""
    for renderer in renderers().known:
        if renderer.widget_modules & modules:
            filled = [f"{field}: {fields[field]!r}" for field in renderer.widget_empty_fields if fields.get(field)]
            found = filled[0] if filled else _holds_code(list(fields.values()), renderer.code_strings)
            if found is not None:
                return found
    return None


def _shipped_widget_code(text: str) -> Renderer | None:
    """The renderer whose installed package ships exactly this widget code (anywidget _esm or _css)."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return next((renderer for renderer in renderers().known if digest in renderer.widget_code), None)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(JSON path, string) for every string under value, without recursion."""
    stack = [(path, value)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            yield path, value
        elif isinstance(value, dict):
            stack.extend((f"{path}.{key}", child) for key, child in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(value))


def _text(value: Any, path: str) -> str:
    """Multiline strings are stored as a string or a list of strings."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    raise Malformed(f"{path} is not text")


def _dict(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{path} is not an object")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise Malformed(f"{path} is not a list")
    return value


FORMATS = (Format("notebook", "code", "Jupyter notebook", "notebook", handler=analyze, detect=detect, order=400),)
