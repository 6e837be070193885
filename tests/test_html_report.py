"""The HTML report: one self-contained file that opens on the chains drawn as a graph, then the feature map
and a findings table filtered by severity, surface and rule. Rendered in a real headless browser (Debian's
Chromium driven by Playwright: corpus/report_browser.py) with hostile inputs everywhere a scanned string reaches
the page: a file name, a notebook's HTML output and a platform's answers. No script from them may run."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from corpus.replay_server import serving

from mloops.cli import main

pytestmark = pytest.mark.xdist_group("kernels")  # one browser at a time on this 2-CPU machine; one apt-get

MARK = "window.mloopsHit=1"
HOSTILE_NAME = f"<img src=x onerror={MARK}>.pkl"
HOSTILE_HTML = f'<script>{MARK}</script><img src=x onerror="{MARK}"><svg onload="{MARK}"></svg>'
HOSTILE_MODEL = f'<iframe srcdoc="<script>top.{MARK}</script>">'


class Payload:
    def __reduce__(self):  # what an attacker uploads: loading it would run a command
        return (os.system, ("true",))


def hostile_workspace(folder: Path, server: str) -> Path:
    folder.mkdir()
    (folder / HOSTILE_NAME).write_bytes(pickle.dumps(Payload()))
    cells = [
        f"import os, mlflow\nmlflow.set_tracking_uri({server!r})\n",
        'os.environ["MLFLOW_TRACKING_TOKEN"] = "dapi0a1b2c3d4e5f60718293a4b5c6d7e8f9"\n',
        'model = mlflow.pyfunc.load_model("models:/fraud/1")\n',
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells])
    notebook.cells[2].outputs = [nbformat.v4.new_output("display_data", data={"text/html": HOSTILE_HTML})]
    nbformat.write(notebook, str(folder / "train.ipynb"))
    return folder


def hostile_mlflow() -> dict[str, dict]:
    """Answers of an open MLflow whose registry holds a model an attacker named with HTML, and whose version
    banner carries a script."""
    models = json.dumps({"registered_models": [{"name": HOSTILE_MODEL}]})
    experiments = json.dumps({"experiments": [{"experiment_id": "0", "name": HOSTILE_MODEL}]})
    return {
        "/": {"body": "<html><head><title>MLflow</title></head></html>", "content_type": "text/html"},
        "/version": {"body": f"3.17.2<script>{MARK}</script>", "content_type": "text/plain"},
        "/api/2.0/mlflow/registered-models/search?max_results=1000": {"body": models},
        "/api/2.0/mlflow/experiments/search?max_results=1000": {"body": experiments},
    }


def browse(report: Path, shot: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "corpus.report_browser", str(report), str(shot)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("html-report")
    with serving(hostile_mlflow()) as (server, _):
        folder = hostile_workspace(tmp_path / "ws", server)
        report = tmp_path / "report.html"
        code = main(["audit", str(folder), "--endpoint", server, "--format", "html", "--output", str(report)])
        main(["audit", str(folder), "--endpoint", server, "--format", "json", "--output", str(tmp_path / "r.json")])
    assert code == 1
    return report, json.loads((tmp_path / "r.json").read_text()), browse(report, tmp_path / "shot.png"), tmp_path


def test_the_report_opens_on_the_chain_graph_with_the_tables_below(rendered):
    _, document, seen, tmp_path = rendered
    assert seen["loaded"] and seen["screenshot"] == [1400, 1000] and (tmp_path / "shot.png").stat().st_size > 10_000
    width, height = seen["graph"]
    assert width > 600 and height > 100 and seen["graph_nodes"] >= 4
    assert seen["findings"][1] > 0 and seen["feature_rows"] == len(document["feature_map"]) >= 2
    assert seen["finding_rows"] == len(document["findings"]) == int(seen["shown"])
    assert seen["text"].index("Attack chains") < seen["text"].index("Feature map") < seen["text"].index("Findings (")
    assert "client-side ML worm" in seen["text"]


def test_no_script_from_scanned_input_runs_and_every_hostile_string_reads_as_text(rendered):
    report, _, seen, _ = rendered
    assert not seen["hit"] and seen["title"] == "mloops 0.1.0 report"
    assert seen["foreign"] == 0 and seen["scripts"] == 1  # no element came from the inputs; one script: ours
    for hostile in (HOSTILE_NAME, "inline <script>", "<img onerror=...>", "<svg onload=...>"):
        assert hostile in seen["text"]  # a file name, what the notebook's output holds: shown as the text it is
    assert "<img src=x" not in report.read_text()


def test_the_marker_would_have_been_seen(tmp_path: Path):
    """The control: the same markers on a page without escaping or policy do run in this browser."""
    page = tmp_path / "unsafe.html"
    page.write_text(f"<!doctype html><html><body><h1>x</h1>{HOSTILE_HTML}</body></html>")
    seen = browse(page, tmp_path / "unsafe.png")
    assert seen["hit"] and seen["foreign"] >= 1


def test_the_findings_filters_hide_rows(tmp_path: Path):
    """The page's own script filters the table: a scan report of the workspace, severity "high and above"."""
    with serving(hostile_mlflow()) as (server, _):
        folder = hostile_workspace(tmp_path / "ws", server)
    report = tmp_path / "scan.html"
    main(["scan", str(folder), "--format", "html", "--output", str(report), "--no-cache"])
    text = report.read_text()
    assert 'id="chain-graph"' not in text  # a scan has no chains
    filtered = tmp_path / "filtered.html"
    filtered.write_text(
        text.replace('<option value="3">high and above</option>', '<option value="3" selected>x</option>')
    )
    document = json.loads(
        subprocess.run(
            [sys.executable, "-m", "mloops", "scan", str(folder), "--format", "json", "--no-cache"],
            capture_output=True, text=True, check=False,
        ).stdout
    )  # fmt: skip
    high = sum(1 for finding in document["findings"] if finding["severity"] in ("critical", "high"))
    assert browse(report, tmp_path / "all.png")["finding_rows"] == len(document["findings"]) > high
    assert browse(filtered, tmp_path / "high.png")["finding_rows"] == high > 0
