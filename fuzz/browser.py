"""A real browser for the notebook oracle: Chromium's engine (Qt WebEngine, pip-installed) renders HTML outputs
as JupyterLab renders a trusted text/html output, and reports which generated markers ran.

Run as a throwaway subprocess (``python -m fuzz.browser``). It reads JSON lines from stdin, each a batch
``[[case_id, html], ...]``, and answers each with one JSON line ``{"hits": [[case_id, marker], ...]}``.

JupyterLab sets the output element's innerHTML, then replaces every <script> in it with a fresh copy so that
it runs (the DOM never runs scripts that innerHTML inserts). Markers are ``top.postMessage("mloops-hit:<case>:
<marker>", "*")``, which reaches the harness from any frame, sandboxed or cross-origin. Nothing leaves the
machine: every request other than the harness page and data: URLs is blocked before it is sent, and the page
may not navigate away.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

ORIGIN = "http://127.0.0.1:9/"  # the page's address only: requests to it are blocked, never sent
SETTLE_MS = 120  # time after a batch for load and error events, frames and timers to fire

HARNESS = """<!doctype html><html><head><meta charset="utf-8"><script>
window.__hits = [];
addEventListener("message", (event) => {
  if (typeof event.data === "string" && event.data.startsWith("mloops-hit:")) __hits.push(event.data.slice(11));
});
function __render(cases) {
  const root = document.getElementById("root");
  root.replaceChildren();
  for (const [id, html] of cases) {
    const host = document.createElement("div");
    host.className = "jp-RenderedHTMLCommon";
    root.appendChild(host);
    try {
      host.innerHTML = html;
      for (const old of Array.from(host.getElementsByTagName("script"))) {
        if (!old.parentNode) continue;
        const fresh = document.createElement("script");
        for (const attribute of Array.from(old.attributes)) fresh.setAttribute(attribute.name, attribute.value);
        fresh.textContent = old.textContent;
        old.parentNode.replaceChild(fresh, old);
      }
    } catch (error) {}
  }
}
function __take() { const taken = __hits; window.__hits = []; return taken; }
</script></head><body><div id="root"></div></body></html>"""


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--disable-gpu --no-sandbox --disable-logging")
    os.environ.setdefault("QT_LOGGING_RULES", "*=false")
    from PyQt6.QtCore import QTimer, QUrl
    from PyQt6.QtWebEngineCore import (
        QWebEnginePage,
        QWebEngineProfile,
        QWebEngineUrlRequestInfo,
        QWebEngineUrlRequestInterceptor,
    )
    from PyQt6.QtWidgets import QApplication

    class Offline(QWebEngineUrlRequestInterceptor):
        """Only data: and about: URLs load; the harness page itself is set from memory."""

        def interceptRequest(self, info: QWebEngineUrlRequestInfo) -> None:
            if info.requestUrl().scheme() not in ("data", "about", "blob"):
                info.block(True)

    class Page(QWebEnginePage):
        ready = False

        def acceptNavigationRequest(self, url: QUrl, kind: Any, main_frame: bool) -> bool:
            return not (main_frame and self.ready)  # a case may not replace the harness

        def javaScriptConsoleMessage(self, *args: Any) -> None:
            pass

    app = QApplication(sys.argv[:1])
    profile = QWebEngineProfile()  # off the record: nothing stored on disk
    interceptor = Offline()
    profile.setUrlRequestInterceptor(interceptor)
    page = Page(profile)
    loop_state: dict[str, Any] = {}

    def loaded(ok: bool) -> None:
        if not page.ready:
            page.ready = True
            next_batch()

    def next_batch() -> None:
        line = sys.stdin.readline()
        if not line:
            app.quit()
            return
        loop_state["batch"] = json.loads(line)
        page.runJavaScript(f"__render({line.strip()}); 0", lambda _result: QTimer.singleShot(SETTLE_MS, collect))

    def collect() -> None:
        page.runJavaScript("__take()", answer)

    def answer(taken: Any) -> None:
        hits = [item.split(":", 1) for item in (taken or []) if isinstance(item, str) and ":" in item]
        sys.stdout.write(json.dumps({"hits": hits}) + "\n")
        sys.stdout.flush()
        next_batch()

    page.loadFinished.connect(loaded)
    page.setHtml(HARNESS, QUrl(ORIGIN))
    app.exec()


if __name__ == "__main__":
    main()
