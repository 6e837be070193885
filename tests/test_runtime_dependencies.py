"""A fresh ``pip install mloops`` scans every format: the ML libraries are never imported.

Files are written here by the real libraries; a child process then scans them with those
libraries made unimportable, and must report exactly what this process reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

from corpus import (
    gguf_models,
    keras_models,
    labelled_formats,
    protobuf_models,
    safe_formats,
    torch_archives,
)

from mloops import scan_path

HEAVY = [
    "torch", "keras", "tensorflow", "onnx", "h5py", "numpy", "gguf", "safetensors", "skops",
    "sklearn", "xgboost", "lightgbm", "msgpack", "yaml", "google.protobuf", "joblib", "pandas",
]  # fmt: skip

CHILD = r"""
import importlib.abc, json, sys
heavy = json.loads(sys.argv[1])

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == h or name.startswith(h + ".") for h in heavy):
            raise ImportError(f"{name} must not be imported by the scanner")
        return None

sys.meta_path.insert(0, Refuse())
import mloops
report = mloops.scan_path(sys.argv[2])
loaded = sorted(h for h in heavy if h in sys.modules)
print(json.dumps({"findings": sorted([f.location.nested_name, f.rule.id] for f in report.findings), "loaded": loaded}))
"""


def _write_every_format(folder: Path) -> None:
    keras_models.save_benign(folder)
    keras_models.save_lambda(folder, folder.parent / "marker", ".keras")
    protobuf_models.torch_onnx_export(folder / "small.onnx")
    (folder / "saved_model.pb").write_bytes(protobuf_models.file_ops_in_library())
    gguf_models.write_gguf(folder / "chat.gguf", gguf_models.CHATML)
    gguf_models.write_gguf(folder / "evil.gguf", gguf_models.payload("lipsum", folder.parent / "marker"))
    (folder / "weights.safetensors").write_bytes(safe_formats.numpy_safetensors())
    (folder / "model.skops").write_bytes(
        safe_formats.skops_file(safe_formats.payload_schemas(Path("m"))["os.system"][0])
    )
    torch_archives.scripted("linear", folder / "scripted.pt")
    torch_archives.exported(folder / "model.pt2")
    (folder / "model.tflite").write_bytes(labelled_formats.tflite_model())
    (folder / "xgb.ubj").write_bytes(labelled_formats.xgboost_model(folder.parent, ".ubj"))
    (folder / "lgbm.txt").write_bytes(labelled_formats.lightgbm_model(folder.parent))
    (folder / "flax_model.msgpack").write_bytes(labelled_formats.flax_bytes(labelled_formats.flax_state()))
    (folder / "model.pmml").write_text(labelled_formats.pmml_document())


def test_every_format_scans_the_same_without_the_ml_libraries(tmp_path: Path):
    folder = tmp_path / "models"
    folder.mkdir()
    _write_every_format(folder)
    report = scan_path(str(folder))
    expected = sorted([f.location.nested_name, f.rule.id] for f in report.findings)
    assert {"MLO130", "MLO140", "MLO170", "MLO180"} <= {rule for _, rule in expected}
    assert not any(rule == "MLO903" for _, rule in expected)

    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(HEAVY), str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(child.stdout)
    assert result["loaded"] == []
    assert result["findings"] == expected
