"""Open an HTML report in a real browser engine (Chromium's, as Qt WebEngine, pip-installed), offline, and tell
what a reader sees: run as ``python -m corpus.report_browser REPORT.html SHOT.png``. It prints one JSON object:
the visible size of the chain graph and of each table, the rows shown, the text of the page, whether any
marker a hostile input could set ran (``window.mloopsHit``, the page title) and the screenshot's size.

Nothing leaves the machine: every request other than data: and about: URLs is blocked before it is sent.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

SETTLE_MS = 400  # after load: the page's own script, and any event a hostile element could fire

PROBE = """(() => {
  const size = (selector) => {
    const found = document.querySelector(selector);
    if (!found) return null;
    const box = found.getBoundingClientRect();
    const style = getComputedStyle(found);
    return style.display === "none" || style.visibility === "hidden" ? [0, 0] : [box.width, box.height];
  };
  const rows = (selector) =>
    Array.from(document.querySelectorAll(selector + " tbody tr")).filter((row) => !row.hidden).length;
  return JSON.stringify({
    graph: size("#chain-graph"), chains: size("#chain-list"), features: size("#feature-map"),
    findings: size("#findings"), finding_rows: rows("#findings"), feature_rows: rows("#feature-map"),
    graph_nodes: document.querySelectorAll("#chain-graph g.node").length,
    shown: document.getElementById("shown")?.textContent,
    hit: Boolean(window.mloopsHit), title: document.title, text: document.body.innerText,
    foreign: document.querySelectorAll("img, iframe, object, embed, [onerror], [onload], [onclick]").length,
    scripts: document.scripts.length,
  });
})()"""


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--disable-gpu --no-sandbox --disable-logging")
    os.environ.setdefault("QT_LOGGING_RULES", "*=false")
    from PyQt6.QtCore import QTimer, QUrl
    from PyQt6.QtWebEngineCore import QWebEngineUrlRequestInfo, QWebEngineUrlRequestInterceptor
    from PyQt6.QtWebEngineWidgets import QWebEngineView
    from PyQt6.QtWidgets import QApplication

    class Offline(QWebEngineUrlRequestInterceptor):
        def interceptRequest(self, info: QWebEngineUrlRequestInfo) -> None:
            if info.requestUrl().scheme() not in ("data", "about", "blob"):
                info.block(True)

    report, shot = Path(sys.argv[1]), Path(sys.argv[2])
    app = QApplication(["report-browser"])
    view = QWebEngineView()
    view.resize(1400, 1000)
    offline = Offline()
    view.page().profile().setUrlRequestInterceptor(offline)
    facts: dict[str, Any] = {}

    def probed(answer: str) -> None:
        facts.update(json.loads(answer))
        image = view.grab()
        image.save(str(shot))
        facts["screenshot"] = [image.width(), image.height()]
        app.quit()

    def loaded(ok: bool) -> None:
        facts["loaded"] = ok
        QTimer.singleShot(SETTLE_MS, lambda: view.page().runJavaScript(PROBE, probed))

    view.loadFinished.connect(loaded)
    view.setHtml(report.read_text(encoding="utf-8"), QUrl("http://127.0.0.1:9/"))
    view.show()
    QTimer.singleShot(30_000, app.quit)  # a page that never loads ends the run; the caller sees no facts
    app.exec()
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
