"""The non-pickle model formats of the benchmark: benign files from the real libraries, and
malicious or broken ones built by the test suite's fixture code (same builders, same payloads).

Each case writes one file into ``target`` and returns its path; ``work`` is scratch space.
Fixtures the tests prove with the real loader are marked "proven"; the others are built to the
format's documented structure ("structural"), as the tests say.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("KERAS_BACKEND", "torch")

from corpus import gguf_models as gm
from corpus import keras_models as km
from corpus import labelled_formats as lf
from corpus import protobuf_models as pm
from corpus import safe_formats as sf
from corpus import torch_archives as ta


class Case(NamedTuple):
    name: str
    malicious: bool
    write: Callable[[Path, Path], Path]


def _bytes(name: str, make: Callable[[Path], bytes]) -> Callable[[Path, Path], Path]:
    def write(target: Path, work: Path) -> Path:
        path = target / name
        path.write_bytes(make(work))
        return path

    return write


def _keras_benign(model: str, suffix: str) -> Callable[[Path, Path], Path]:
    def write(target: Path, work: Path) -> Path:
        path = target / f"{model}{suffix}"
        km.BENIGN_MODELS[model]().save(path)
        return path

    return write


def _keras_lambda(suffix: str) -> Callable[[Path, Path], Path]:
    return lambda target, work: km.save_lambda(target, work / "marker", suffix)


def _keras_edit(name: str, fields: dict) -> Callable[[Path, Path], Path]:
    def write(target: Path, work: Path) -> Path:
        km.sequential_model().save(work / "base.keras")
        return km.edit_layer_config(work / "base.keras", target / name, fields)

    return write


def _foreign_module(target: Path, work: Path) -> Path:
    km.sequential_model().save(work / "base.keras")
    return km.foreign_module_keras(work / "base.keras", target / "foreign_module.keras")


def _torch_wrapper(target: Path, work: Path) -> Path:
    path = km.save_torch_wrapper_payload(work)
    return Path(shutil.copy(path, target / path.name))


def _gguf(name: str, template: str | Callable[[Path], str]) -> Callable[[Path, Path], Path]:
    def write(target: Path, work: Path) -> Path:
        text = template(work / "marker") if callable(template) else template
        return gm.write_gguf(target / name, text)

    return write


def _onnx(name: str, make: Callable[[Path], Path]) -> Callable[[Path, Path], Path]:
    return lambda target, work: make(target / name)


def _skops_benign(estimator: str) -> Callable[[Path, Path], Path]:
    def write(target: Path, work: Path) -> Path:
        import skops.io

        path = target / f"{estimator}.skops"
        skops.io.dump(sf.benign_estimators()[estimator], path)
        return path

    return write


def _skops_payload(name: str) -> Callable[[Path, Path], bytes]:
    return lambda work: sf.skops_file(sf.payload_schemas(work / "marker")[name][0])


def _get_file_reference() -> dict:
    # CVE-2025-8747: keras.utils.get_file named as a layer's function downloads to any path.
    return {
        "activation": {
            "module": "keras.utils",
            "class_name": "function",
            "config": "get_file",
            "registered_name": "get_file",
        }
    }


def _custom_onnx_op(work: Path) -> bytes:
    from onnx import helper

    nodes = [helper.make_node("Backdoor", ["X"], ["Y"], domain="com.evil.ops")]
    return pm.onnx_model_bytes(nodes, opsets=[("com.evil.ops", 1)])


def _onnx_traversal(work: Path) -> bytes:
    from onnx import helper

    nodes = [helper.make_node("Add", ["X", "W"], ["Y"])]
    return pm.onnx_model_bytes(nodes, [pm.external_tensor("W", "../../../../etc/passwd", [2])])


def _pt2_opaque(work: Path) -> bytes:
    return ta.with_opaque_constant(ta.exported(work / "base.pt2"), ta.touch(work / "marker"))


def _nemo_target(work: Path) -> bytes:
    config = ta.NEMO_CONFIG.replace("nemo.collections.asr.losses.ctc.CTCLoss", "os.system").replace(
        "reduction: mean_batch", "command: touch marker"
    )
    return ta.nemo_archive(config, ta.nemo_weights())


BENIGN: list[Case] = [
    *(Case(f"keras-{m}{s}", False, _keras_benign(m, s)) for m in km.BENIGN_MODELS for s in (".keras", ".h5")),
    Case("onnx-torch-export", False, _onnx("small.onnx", pm.torch_onnx_export)),
    Case("onnx-if-ml", False, _onnx("if_ml.onnx", pm.onnx_if_ml_model)),
    Case("tensorflow-tf2-savedmodel", False, _bytes("saved_model.pb", lambda w: pm.benign_tf2_saved_model())),
    Case("tensorflow-tf1-savedmodel", False, _bytes("saved_model.pb", lambda w: pm.benign_tf1_saved_model())),
    *(Case(f"gguf-{name}", False, _gguf(f"{name}.gguf", text)) for name, text in gm.BENIGN_TEMPLATES.items()),
    Case("safetensors-numpy", False, _bytes("model.safetensors", lambda w: sf.numpy_safetensors())),
    *(
        Case(f"safetensors-torch-{Path(name).stem}", False, _bytes(name, lambda w, d=data: d))
        for name, data in list(sf.torch_safetensors().items())[:3]
    ),
    *(Case(f"skops-{name}", False, _skops_benign(name)) for name in ("logistic", "pipeline", "forest")),
    Case("torchscript-script", False, _bytes("scripted.pt", lambda w: ta.scripted("linear", w / "s.pt"))),
    Case("torchscript-trace", False, _bytes("traced.pt", lambda w: ta.traced(next(iter(ta.TRACED)), w / "t.pt"))),
    Case("pt2-export", False, _bytes("model.pt2", lambda w: ta.exported(w / "e.pt2"))),
    Case("nemo", False, _bytes("model.nemo", lambda w: ta.nemo_archive(ta.NEMO_CONFIG, ta.nemo_weights()))),
    Case("xgboost-json", False, _bytes("xgb.json", lambda w: lf.xgboost_model(w, ".json"))),
    Case("xgboost-ubj", False, _bytes("xgb.ubj", lambda w: lf.xgboost_model(w, ".ubj"))),
    Case("lightgbm-text", False, _bytes("lgbm.txt", lambda w: lf.lightgbm_model(w))),
    Case("flax-msgpack", False, _bytes("flax_model.msgpack", lambda w: lf.flax_bytes(lf.flax_state()))),
    Case("tflite", False, _bytes("model.tflite", lambda w: lf.tflite_model())),
    Case("pmml", False, _bytes("model.pmml", lambda w: lf.pmml_document().encode())),
]

MALICIOUS: list[Case] = [
    Case("keras-h5-lambda (proven)", True, _keras_lambda(".h5")),
    Case("keras-v3-lambda (proven)", True, _keras_lambda(".keras")),
    Case("keras-torch-wrapper-pickle (proven)", True, _torch_wrapper),
    Case("keras-foreign-module (structural)", True, _foreign_module),
    Case("keras-get-file CVE-2025-8747 (structural)", True, _keras_edit("get_file.keras", _get_file_reference())),
    Case("tensorflow-file-ops (structural)", True, _bytes("saved_model.pb", lambda w: pm.file_ops_in_library())),
    Case("tensorflow-pyfunc (structural)", True, _bytes("frozen.pb", lambda w: pm.py_func_graph())),
    Case(
        "keras-metadata-lambda (structural)",
        True,
        _bytes("keras_metadata.pb", lambda w: pm.keras_metadata_model(with_lambda=True)),
    ),
    Case("onnx-custom-domain (structural)", True, _bytes("custom.onnx", _custom_onnx_op)),
    Case("onnx-external-traversal (structural)", True, _bytes("traversal.onnx", _onnx_traversal)),
    *(
        Case(f"gguf-ssti-{name} (proven)", True, _gguf(f"{name}.gguf", lambda m, n=name: gm.payload(n, m)))
        for name in gm.PAYLOADS
    ),
    *(
        Case(f"skops-{name} (proven)", True, _bytes(f"{name}.skops", _skops_payload(name)))
        for name in sf.payload_schemas(Path("m"))
    ),
    Case(
        "torchscript-setstate-save (proven)", True, _bytes("saves.pt", lambda w: ta.saves_on_load(w / "s.pt", w / "m"))
    ),
    Case("torchscript-decoy (proven)", True, _bytes("decoy.pt", lambda w: ta.decoy_torchscript(w / "marker"))),
    Case("pt2-opaque-constant (proven)", True, _bytes("opaque.pt2", _pt2_opaque)),
    Case(
        "nemo-malicious-ckpt (structural)",
        True,
        _bytes("evil.nemo", lambda w: ta.nemo_archive(ta.NEMO_CONFIG, ta.torch_save_bytes(ta.touch(w / "m")))),
    ),
    Case("nemo-hydra-target (structural)", True, _bytes("target.nemo", _nemo_target)),
    Case("pmml-xxe (proven)", True, _bytes("xxe.pmml", lambda w: lf.pmml_xxe("file:///etc/hostname").encode())),
    Case(
        "tflite-flex-writefile (structural)",
        True,
        _bytes("flex.tflite", lambda w: lf.tflite_model("FlexWriteFile", lf.flex_options("WriteFile"))),
    ),
]

ALL = BENIGN + MALICIOUS
