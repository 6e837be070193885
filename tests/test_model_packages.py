"""Model packages that name code the loader imports: MLflow MLmodel and Hugging Face auto_map."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from corpus.prove import code_runs

from mloops.core import Severity
from mloops.scan import scan_path

# Saves an MLflow pyfunc model whose loader_module is a file of the model's code paths (what
# mlflow.pyfunc.save_model(loader_module=..., code_paths=[...]) writes), or a scikit-learn model.
SAVE_MLFLOW = r"""
import sys
import mlflow.pyfunc, mlflow.sklearn
kind, out, loader = sys.argv[1:4]
if kind == "loader":
    mlflow.pyfunc.save_model(out, loader_module="team_loader", code_paths=[loader], data_path=loader)
else:
    from sklearn.linear_model import LogisticRegression
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    mlflow.sklearn.save_model(model, out, serialization_format="cloudpickle")
"""

LOAD_MLFLOW = r"""
import sys
import mlflow.pyfunc
mlflow.pyfunc.load_model(sys.argv[1])
"""

LOAD_AUTO_CONFIG = r"""
import os, sys
os.environ.update(HF_HUB_OFFLINE="1", HF_HOME=sys.argv[2])
import transformers
transformers.AutoConfig.from_pretrained(sys.argv[1], trust_remote_code=True)
"""

LOADER_SOURCE = """\
import os

os.system({command!r})


def _load_pyfunc(path):
    return None
"""

CONFIG_SOURCE = """\
import subprocess
import zipfile

from transformers import PretrainedConfig

subprocess.run({command!r}, shell=True)


class TinyConfig(PretrainedConfig):
    model_type = "tiny"
"""


def _save_mlflow(tmp_path: Path, kind: str, loader_source: str = "") -> Path:
    loader = tmp_path / "team_loader.py"
    loader.write_text(loader_source)
    out = tmp_path / "model"
    proc = subprocess.run(
        [sys.executable, "-c", SAVE_MLFLOW, kind, str(out), str(loader)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loader.unlink()
    return out


def _package_findings(path: Path) -> list[tuple[str, Severity, str]]:
    return [(f.rule.id, f.severity, f.message) for f in scan_path(str(path)).findings if f.rule.id == "MLO350"]


def test_an_mlflow_loader_module_that_runs_a_command_is_critical(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    marker = tmp_path / "marker"
    model = _save_mlflow(tmp_path, "loader", LOADER_SOURCE.format(command=f"touch {marker}"))
    marker.unlink(missing_ok=True)  # save_model does not import the loader; be sure all the same
    ran, stderr = code_runs([LOAD_MLFLOW, str(model)], tmp_path, marker)
    assert ran, stderr  # the real loader imports the model's own module
    marker.unlink()
    (finding,) = _package_findings(model)
    assert finding[1] == Severity.CRITICAL and "team_loader" in finding[2] and "os.system" in finding[2]
    assert not marker.exists()


def test_a_quiet_mlflow_loader_module_is_still_high(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    model = _save_mlflow(tmp_path, "loader", "def _load_pyfunc(path):\n    return None\n")
    assert [(rule, severity) for rule, severity, _ in _package_findings(model)] == [("MLO350", Severity.HIGH)]


def test_a_builtin_mlflow_flavor_names_no_code(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    model = _save_mlflow(tmp_path, "sklearn")
    assert _package_findings(model) == []
    assert [a.format for r in scan_path(str(model / "MLmodel")).files for a in r.assets] == ["mlflow-model"]


def test_an_mlflow_loader_module_missing_from_the_package_is_reported(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: corp_models.loader\n    code: code\n"
    )
    ((_, severity, message),) = _package_findings(tmp_path)
    assert severity == Severity.MEDIUM and "not in the package" in message  # the environment's own module


def _remote_code_repo(folder: Path, command: str) -> Path:
    folder.mkdir()
    (folder / "configuration_tiny.py").write_text(CONFIG_SOURCE.format(command=command))
    config = {
        "model_type": "tiny",
        "architectures": ["TinyModel"],
        "auto_map": {"AutoConfig": "configuration_tiny.TinyConfig", "AutoModel": "modeling_tiny.TinyModel"},
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "modeling_tiny.py").write_text("import torch\n\n\nclass TinyModel(torch.nn.Module):\n    pass\n")
    return folder


def test_auto_map_code_that_runs_a_command_is_critical(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    marker = tmp_path / "marker"
    repo = _remote_code_repo(tmp_path / "tiny", f"touch {marker}")
    ran, stderr = code_runs([LOAD_AUTO_CONFIG, str(repo), str(tmp_path / "hf")], tmp_path, marker)
    assert ran, stderr  # trust_remote_code=True imports the repository's configuration module
    marker.unlink()
    found = {message.split("'")[1]: severity for _, severity, message in _package_findings(repo / "config.json")}
    assert found == {"configuration_tiny": Severity.CRITICAL, "modeling_tiny": Severity.HIGH}


def test_auto_map_code_from_another_repository_is_high(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "org/code--modeling_x.XModel"}}))
    ((_, severity, message),) = _package_findings(tmp_path)
    assert severity == Severity.HIGH and "another repository (org/code)" in message


def test_a_config_without_auto_map_names_no_code(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    assert _package_findings(tmp_path) == []


def _mar(path: Path, handler: str, members: dict[str, bytes]) -> Path:
    # The layout torch-model-archiver writes: the files at the root, MAR-INF/MANIFEST.json describing them.
    manifest = {
        "createdOn": "07/12/2026 10:00:00",
        "runtime": "python",
        "model": {"modelName": "classifier", "serializedFile": "model.pt", "handler": handler, "modelVersion": "1.0"},
        "archiverVersion": "0.12.0",
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("MAR-INF/MANIFEST.json", json.dumps(manifest, indent=2))
    return path


def _state_dict_bytes(tmp_path: Path) -> bytes:
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "weights.pt")
    return (tmp_path / "weights.pt").read_bytes()


def test_a_torchserve_handler_that_runs_a_command_is_critical(tmp_path: Path) -> None:
    handler = b"import os\nos.system('id')\n\n\ndef handle(data, context):\n    return data\n"
    mar = _mar(
        tmp_path / "classifier.mar", "handler.py", {"handler.py": handler, "model.pt": _state_dict_bytes(tmp_path)}
    )
    report = scan_path(str(mar))
    assert next(a.format for a in report.files[0].assets) == "torchserve-mar"
    ((_, severity, message),) = _package_findings(mar)
    assert severity == Severity.CRITICAL and "os.system" in message


def test_a_torchserve_archive_with_a_builtin_handler_names_no_code(tmp_path: Path) -> None:
    mar = _mar(tmp_path / "classifier.mar", "image_classifier", {"model.pt": _state_dict_bytes(tmp_path)})
    report = scan_path(str(mar))
    assert [f.rule.id for f in report.findings if f.severity >= Severity.MEDIUM] == []


def test_a_torchserve_handler_from_the_serving_image_is_medium(tmp_path: Path) -> None:
    mar = _mar(tmp_path / "classifier.mar", "corp_handlers.vision:handle", {"model.pt": _state_dict_bytes(tmp_path)})
    ((_, severity, message),) = _package_findings(mar)
    assert severity == Severity.MEDIUM and "corp_handlers.vision" in message


def test_a_bento_service_module_is_judged_as_code_that_runs_on_serve(tmp_path: Path) -> None:
    # The layout `bentoml build` writes: bento.yaml naming the service, the user's code under src/.
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "service.py").write_text("import subprocess\nsubprocess.Popen(['id'])\nsvc = None\n")
    (tmp_path / "bento.yaml").write_text(
        "service: 'service:svc'\nname: classifier\nversion: abc123\nbentoml_version: 1.4.0\nlabels: {}\n"
    )
    ((_, severity, message),) = _package_findings(tmp_path)
    assert severity == Severity.CRITICAL and "service" in message and "subprocess.Popen" in message


def test_a_tokenizer_config_auto_map_is_judged_too(tmp_path: Path) -> None:
    # Custom tokenizers name their module in tokenizer_config.json, which the chat-template reader handles.
    (tmp_path / "tokenization_tiny.py").write_text("import os\nos.system('id')\n")
    config = {"auto_map": {"AutoTokenizer": ["tokenization_tiny.TinyTokenizer", None]}, "chat_template": "{{ x }}"}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    ((_, severity, message),) = _package_findings(tmp_path / "tokenizer_config.json")
    assert severity == Severity.CRITICAL and "tokenization_tiny" in message
