"""mloops probe against the real platforms, started by the tests on 127.0.0.1 and stopped after.

Each test starts its own server (so parallel test workers never share one), probes it, and checks what a
user would see: the platform, its version, open or protected features, and, for MLflow, that the server's
own request log holds nothing but read-only requests.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from corpus.probing import of, platforms, probe
from corpus.servers import BIN, free_port, jupyter, kill_processes_naming, mlflow_server, server

from mloops.core import Severity


def installed(module: str) -> None:
    pytest.importorskip(module)


# ------------------------------------------------------------ MLflow


def test_open_mlflow_is_an_open_registry_and_the_probe_sends_only_reads(tmp_path: Path):
    installed("mlflow")
    port = free_port()
    with mlflow_server(tmp_path, port):
        report = probe(f"http://127.0.0.1:{port}")
    assert platforms(report) == ["mlflow"]
    (detected,) = of(report, "MLO500")
    assert re.fullmatch(r"3\.\d+\.\d+", detected.evidence["version"])
    registry = next(f for f in of(report, "MLO501") if f.evidence["feature"] == "model registry")
    assert registry.severity == Severity.HIGH and registry.evidence["attack"] == "registry-hijack"
    assert "overwrite the versions every consumer loads" in registry.message
    assert report.exit_code(Severity.HIGH) == 1
    requests = re.findall(
        r'"(GET|HEAD|OPTIONS|POST|PUT|PATCH|DELETE) (\S+) HTTP', (tmp_path / "mlflow.log").read_text()
    )
    assert len(requests) >= 5  # the server logged the probe's requests
    assert {method for method, _ in requests} <= {"GET", "HEAD", "OPTIONS"}


def test_mlflow_basic_auth_is_auth_enforced(tmp_path: Path):
    installed("flask_wtf")  # mlflow[auth]
    port = free_port()
    env = {"MLFLOW_AUTH_ADMIN_PASSWORD": "a-Long-test-passw0rd", "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only"}
    with mlflow_server(tmp_path, port, "--app-name", "basic-auth", env=env):
        report = probe(f"http://127.0.0.1:{port}")
    assert platforms(report) == ["mlflow"]
    assert of(report, "MLO501") == []
    (enforced,) = of(report, "MLO502")
    assert "HTTP 401" in enforced.message
    assert report.exit_code(Severity.LOW) == 0


# ------------------------------------------------------------ Jupyter Server


def test_jupyter_without_token_is_kernel_rce(tmp_path: Path):
    installed("jupyter_server")
    port = free_port()
    (tmp_path / "notes.txt").write_text("x")
    with jupyter(tmp_path, port, ""):
        report = probe(f"http://127.0.0.1:{port}")
    assert platforms(report) == ["jupyter"]
    opened = {f.evidence["attack"]: f for f in of(report, "MLO501")}
    assert opened["kernel-rce"].severity == Severity.CRITICAL
    assert "start kernels or terminals" in opened["kernel-rce"].message
    assert opened["file-read"].evidence["reveals"].endswith("entries in the server's root folder")


def test_jupyter_with_token_is_auth_enforced(tmp_path: Path):
    installed("jupyter_server")
    port = free_port()
    with jupyter(tmp_path, port, "a-test-token-0123456789"):
        report = probe(f"http://127.0.0.1:{port}")
    assert platforms(report) == ["jupyter"]
    assert of(report, "MLO501") == [] and len(of(report, "MLO502")) == 1


# ------------------------------------------------------------ Ray


def test_ray_dashboard_is_jobs_api_rce(tmp_path: Path):
    installed("ray")
    dashboard, gcs = free_port(), free_port()
    temp = Path("/tmp") / f"ray-{os.getpid()}-{dashboard}"  # Ray's socket paths must stay short
    command = [
        str(BIN / "ray"), "start", "--head", "--block", "--disable-usage-stats", "--num-cpus", "1",
        "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
        "--port", str(gcs), "--temp-dir", str(temp), "--node-ip-address", "127.0.0.1",
    ]  # fmt: skip
    try:
        with server(command, f"http://127.0.0.1:{dashboard}/api/version", tmp_path / "ray.log", tmp_path):
            report = probe(f"http://127.0.0.1:{dashboard}")
    finally:
        kill_processes_naming(str(temp))  # only this head's processes, not other tests' Ray clusters
    assert platforms(report) == ["ray"]
    jobs = next(f for f in of(report, "MLO501") if f.evidence["feature"] == "Jobs API")
    assert jobs.severity == Severity.CRITICAL and jobs.evidence["attack"] == "job-rce"
    assert of(report, "MLO500")[0].evidence["version"].startswith("2.")


# ------------------------------------------------------------ TensorBoard, Gradio, Streamlit


def test_tensorboard_exposes_training_logs(tmp_path: Path):
    installed("tensorboard")
    port = free_port()
    command = [str(BIN / "tensorboard"), "--logdir", str(tmp_path), "--host", "127.0.0.1", "--port", str(port)]
    with server(command, f"http://127.0.0.1:{port}/data/environment", tmp_path / "tb.log", tmp_path):
        report = probe(f"http://127.0.0.1:{port}")
    assert platforms(report) == ["tensorboard"]
    assert [f.evidence["attack"] for f in of(report, "MLO501")] == ["data-exposure"]
    assert of(report, "MLO500")[0].evidence["version"] != "unknown"


GRADIO_APP = """
import sys
import gradio as gr
demo = gr.Interface(fn=lambda text: text[::-1], inputs="text", outputs="text")
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), auth=({auth}))
"""


@pytest.mark.parametrize("protected", [False, True])
def test_gradio_app(tmp_path: Path, protected: bool):
    installed("gradio")
    port = free_port()
    app = tmp_path / "app.py"
    app.write_text(GRADIO_APP.format(auth='("user", "a-test-passw0rd")' if protected else "None"))
    with server([sys.executable, str(app), str(port)], f"http://127.0.0.1:{port}/", tmp_path / "g.log", tmp_path):
        report = probe(f"http://127.0.0.1:{port}")
    assert platforms(report) == ["gradio"]
    if protected:
        assert of(report, "MLO501") == [] and of(report, "MLO502")
    else:
        (opened,) = of(report, "MLO501")
        assert opened.severity == Severity.LOW and opened.evidence["attack"] == "app-exposure"
        assert re.fullmatch(r"\d+\.\d+\.\d+", of(report, "MLO500")[0].evidence["version"])


def test_streamlit_app(tmp_path: Path):
    installed("streamlit")
    port = free_port()
    (tmp_path / "app.py").write_text("import streamlit as st\nst.write('hello')\n")
    command = [
        str(BIN / "streamlit"), "run", "app.py", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with server(command, f"http://127.0.0.1:{port}/_stcore/health", tmp_path / "st.log", tmp_path):
        report = probe(f"http://127.0.0.1:{port}")
    assert platforms(report) == ["streamlit"]
    assert [f.evidence["attack"] for f in of(report, "MLO501")] == ["app-exposure"]
