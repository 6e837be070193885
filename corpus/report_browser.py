"""Open an HTML report in a real headless browser (Debian's Chromium, driven by Playwright), offline, and tell
what a reader sees: run as ``python -m corpus.report_browser REPORT.html SHOT.png``. It prints one JSON object:
the visible size of the chain graph and of each table, the rows shown, the text of the page, whether any
marker a hostile input could set ran (``window.mloopsHit``, the page title) and the screenshot's size.

Chromium comes from the Debian packages (Playwright's own browser download does not reach this network);
``chromium()`` installs it with apt-get when it is missing. Nothing leaves the machine: every request other
than the report file itself and data: URLs is aborted before it is sent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

SETTLE_MS = 400  # after load: the page's own script, and any event a hostile element could fire
BOUND_MS = 180_000  # launching Chromium and loading the page
VIEWPORT = {"width": 1400, "height": 1000}

PROBE = """() => {
  const size = (selector) => {
    const found = document.querySelector(selector);
    if (!found) return null;
    const box = found.getBoundingClientRect();
    const style = getComputedStyle(found);
    return style.display === "none" || style.visibility === "hidden" ? [0, 0] : [box.width, box.height];
  };
  const rows = (selector) =>
    Array.from(document.querySelectorAll(selector + " tbody tr")).filter((row) => !row.hidden).length;
  return {
    graph: size("#chain-graph"), chains: size("#chain-list"), features: size("#feature-map"),
    findings: size("#findings"), finding_rows: rows("#findings"), feature_rows: rows("#feature-map"),
    graph_nodes: document.querySelectorAll("#chain-graph g.node").length,
    shown: document.getElementById("shown")?.textContent,
    hit: Boolean(window.mloopsHit), title: document.title, text: document.body.innerText,
    foreign: document.querySelectorAll("img, iframe, object, embed, [onerror], [onload], [onclick]").length,
    scripts: document.scripts.length,
  };
}"""


def chromium() -> str:
    """The system Chromium, installed from the Debian packages when it is missing (as root, with apt-get)."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("the HTML report tests need Debian's chromium: apt-get install chromium")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, env=environment, timeout=600)
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]
    subprocess.run(command, check=True, capture_output=True, env=environment, timeout=900)
    return shutil.which("chromium") or "/usr/bin/chromium"


def main() -> None:
    from playwright.sync_api import Route, sync_playwright

    report, shot = Path(sys.argv[1]).resolve(), Path(sys.argv[2])

    def offline(route: Route) -> None:
        url = route.request.url
        allowed = url == report.as_uri() or url.startswith(("data:", "about:"))
        route.continue_() if allowed else route.abort()

    with sync_playwright() as playwright:
        # generous bounds: on a busy 2-CPU machine Chromium can take longer than Playwright's 30 s to start
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"], timeout=BOUND_MS)
        page = browser.new_page(viewport=VIEWPORT)
        page.route("**/*", offline)
        response = page.goto(report.as_uri(), timeout=BOUND_MS)
        page.wait_for_timeout(SETTLE_MS)
        facts = page.evaluate(PROBE)
        page.screenshot(path=str(shot))
        browser.close()
    facts["loaded"] = response is not None and response.ok
    facts["screenshot"] = [VIEWPORT["width"], VIEWPORT["height"]] if shot.stat().st_size else None
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
