"""Speed checks that used to be wall-clock assertions in the unit tests.

    .venv/bin/python bench/unit_speed.py [--repeat N] [--only TEXT ...]

The unit tests check what a scan finds; how long it takes depends on the machine and on
whatever else runs on it, so it is measured here instead. Each check builds the input its test
builds (with the builder the test uses, from corpus/, not timed), times the scan (best of N runs), and
compares it with the bound the test used to assert (measured on an idle machine; several were
generous hang guards). Prints a Markdown table; exits 1 when a check is over its bound.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import peers

ROOT = peers.ROOT  # importing peers put the repository root on the path

from bench import sections  # noqa: E402

Timed = Callable[[], object]
Prepare = Callable[[Path], list[tuple[str, Timed]]]  # builds the inputs in a folder: (case, what to time)


class Check(NamedTuple):
    name: str
    bound: float  # seconds
    prepare: Prepare


CHECKS: list[Check] = []


def check(name: str, bound: float) -> Callable[[Prepare], Prepare]:
    def register(prepare: Prepare) -> Prepare:
        CHECKS.append(Check(name, bound, prepare))
        return prepare

    return register


def _scan_file(path: Path) -> Timed:
    from mloops import scan_path

    return lambda: scan_path(str(path))


def _scan_bytes(folder: Path, name: str, data: bytes) -> Timed:
    from corpus.scanning import scan_bytes

    return lambda: scan_bytes(folder, name, data)


# ------------------------------------------------------------------ notebooks (tests/test_notebook.py)


@check("notebook: the benign notebook with the 4.8 MB plotly bundle inlined", 2.0)
def _notebook_bundle(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import notebook as fx

    data = fx.benign_notebook()
    return [("", lambda: fx.run(data))]


@check("notebook: 100,000 event handlers (capped)", 20.0)
def _notebook_handlers(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import notebook as fx

    data = fx.many_handlers_notebook()
    return [("", lambda: fx.run(data))]


@check("notebook: a 20 MiB unclosed script", 20.0)
def _notebook_script(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import notebook as fx

    data = fx.huge_unclosed_script_notebook()
    return [("", lambda: fx.run(data))]


# ------------------------------------------------------------------ data files (tests/test_arrow_data.py)


@check("arrow/parquet: hostile footer", 1.0)
def _arrow_hostile(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import arrow_data

    cases = []
    for case in sorted(arrow_data.HOSTILE):
        data = arrow_data.HOSTILE[case]()
        cases.append((case, lambda case=case, data=data: arrow_data.analyze(arrow_data.hostile_name(case), data)))
    return cases


@check("parquet: only the footer of a 30 MB file is read", 1.0)
def _parquet_footer(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import arrow_data

    data = arrow_data.large_parquet()
    return [("", lambda: arrow_data.analyze("big.parquet", data))]


@check("parquet: a schema of 5,000 columns", 5.0)
def _parquet_wide(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import arrow_data

    data = arrow_data.wide_parquet()
    return [("", lambda: arrow_data.analyze("wide.parquet", data))]


# ------------------------------------------------------------------ deployments (tests/test_deployments.py)


@check("YAML: an alias bomb", 5.0)
def _alias_bomb(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import deployments
    from corpus.scanning import scan_text

    text = deployments.alias_bomb()
    return [("", lambda: scan_text(folder, "bomb.yaml", text))]


@check("YAML: a 10 MB ConfigMap over the size bound", 10.0)
def _huge_yaml(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import deployments
    from corpus.scanning import scan_text

    text = deployments.huge_config_map()
    return [("", lambda: scan_text(folder, "huge.yaml", text))]


# ------------------------------------------------------------------ GGUF (tests/test_gguf.py)


@check("GGUF: 150k-token vocabulary and 75k merges", 0.5)
def _gguf_vocab(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import gguf_models as models

    path = models.write_gguf(folder / "big-vocab.gguf", models.LLAMA3, vocab_size=150_000)
    return [("", _scan_file(path))]


@check("chat template: constants that would fold into huge values", 2.0)
def _template_folding(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import gguf_models as models

    from mloops.mlcode import chat_template

    return [
        (name, lambda source=source: chat_template.template_findings(source))
        for name, (source, _) in models.HUGE_VALUE_TEMPLATES.items()
    ]


@check("GGUF: hostile header", 1.0)
def _gguf_hostile(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import gguf_models as models

    return [(name, _scan_bytes(folder, "model.gguf", data)) for name, data in models.HOSTILE.items()]


# ------------------------------------------------------------------ Keras and HDF5 (tests/test_keras.py)


@check("HDF5: 20,000 attributes in a deep B-tree, a huge heap object", 10.0)
def _dense_h5(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import keras_models as km

    return [("", _scan_file(km.dense_h5(folder / "dense.h5")))]


@check("marshal walker: 600 hostile blobs", 5.0)
def _marshal_blobs(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import keras_models as km

    from mloops.parsers import pymarshal

    blobs = km.hostile_marshal_blobs()

    def walk_all() -> None:
        for blob in blobs:
            pymarshal.code_strings(blob)

    return [("", walk_all)]


@check("HDF5: hostile file", 2.0)
def _hdf5_hostile(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import keras_models as km

    return [(name, _scan_bytes(folder, f"{name}.h5", data)) for name, data in km.hostile_files().items()]


# ------------------------------------------------------------------ XGBoost, LightGBM, Flax, TFLite


@check("XGBoost UBJSON: a typed array claiming exabytes", 2.0)
def _ubj(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import labelled_formats as lf

    return [("", _scan_bytes(folder, "model.ubj", lf.UBJ_EXABYTE_ARRAY))]


@check("XGBoost JSON: 30 MB, streamed", 15.0)
def _xgboost_json(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import labelled_formats as lf

    return [("", _scan_bytes(folder, "big.json", lf.large_xgboost_json(folder)))]


@check("LightGBM: tree sizes of 2^62", 2.0)
def _lightgbm(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import labelled_formats as lf

    return [("", _scan_bytes(folder, "model.txt", lf.lightgbm_with_huge_tree_sizes(folder)))]


@check("Flax: hostile array dimensions; a map claiming 2^32 entries", 2.0)
def _flax(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import labelled_formats as lf

    return [
        ("dimensions", _scan_bytes(folder, "m.msgpack", lf.flax_with_hostile_dimensions())),
        ("map", _scan_bytes(folder, "m.msgpack", lf.flax_map_claiming_billions())),
    ]


@check("TFLite: a vector claiming a billion elements", 2.0)
def _tflite(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import labelled_formats as lf

    return [("", _scan_bytes(folder, "m.tflite", lf.tflite_vector_claiming_a_billion()))]


# ------------------------------------------------------------------ ONNX and TensorFlow protobuf


@check("ONNX: a 2 GiB model (weights never read)", 0.5)
def _onnx_big(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import protobuf_models as pm

    return [("", _scan_file(pm.big_onnx(folder / "big.onnx", 2 * 1024**3)))]


@check("ONNX: hostile protobuf", 2.0)
def _onnx_hostile(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import protobuf_models as pm

    exported = pm.torch_onnx_export(folder / "m.onnx").read_bytes()
    return [
        ("truncated", _scan_bytes(folder, "cut.onnx", exported[: len(exported) // 2])),
        ("length past the end", _scan_bytes(folder, "long.onnx", pm.length_past_the_end())),
        ("varint over 64 bits", _scan_bytes(folder, "overflow.onnx", pm.overlong_varint())),
        ("nesting bomb", _scan_bytes(folder, "deep.onnx", pm.nesting_bomb())),
    ]


@check("TensorFlow: hostile protobuf", 2.0)
def _tensorflow_hostile(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import protobuf_models as pm
    from corpus import tensorflow_graphs as graphs

    saved = pm.benign_tf2_saved_model()
    return [
        ("truncated", _scan_bytes(folder, "saved_model.pb", saved[: len(saved) * 2 // 3])),
        ("length past the end", _scan_bytes(folder, "saved_model.pb", graphs.saved_model_length_past_the_end())),
        ("varint over 64 bits", _scan_bytes(folder, "graph.pb", graphs.graph_with_overlong_varint())),
        ("nesting bomb", _scan_bytes(folder, "graph.pb", graphs.graph_with_nested_function_attributes())),
    ]


@check("TensorFlow: a 2 GiB frozen graph (weights never read)", 0.5)
def _frozen_graph(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import tensorflow_graphs as graphs

    return [("", _scan_file(graphs.big_frozen_graph(folder)))]


# ------------------------------------------------------------------ code, secrets


@check("Python: deep nesting and long chains", 5.0)
def _python_deep(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import python_code

    from mloops.core import Location
    from mloops.mlcode.python_code import check_source

    return [
        (source[:16].replace("\n", " "), lambda source=source: check_source(source, Location("deep.py")))
        for source in python_code.deep_sources()
    ]


@check("secrets: a 50 MB image output", 2.0)
def _secrets_image(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import secret_texts

    text = secret_texts.big_image_output()
    return [("", lambda: secret_texts.scan_text(text))]


@check("secrets: short lines and hostile prefix runs", 5.0)
def _secrets_runs(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import secret_texts

    from mloops.mlcode.secrets import find_secrets

    return [(text[:8], lambda text=text: find_secrets(text)) for text in secret_texts.hostile_runs()]


# ------------------------------------------------------------------ TorchScript and NeMo (tests/test_torchscript.py)


@check("TorchScript: 1 MB of code (about 3 s idle)", 120.0)
def _torchscript_code(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import torch_archives as T

    path = folder / "m.pt"
    path.write_bytes(T.scripted_with_code(path, T.LARGE_CODE_BODY))
    return [("", _scan_file(path))]


@check("TorchScript: code over the size bound", 10.0)
def _torchscript_oversized(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import torch_archives as T

    path = folder / "m.pt"
    path.write_bytes(T.scripted_with_code(path, T.OVERSIZED_CODE_BODY))
    return [("", _scan_file(path))]


@check("NeMo: a 3 MB model config (a few seconds idle)", 120.0)
def _nemo_config(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import torch_archives as T

    cases = []
    for name, extra in T.LARGE_NEMO_CONFIGS.items():
        path = folder / f"{name}.nemo"
        path.write_bytes(T.nemo_archive(T.NEMO_CONFIG + extra, T.nemo_weights()))
        cases.append((name, _scan_file(path)))
    return cases


# ------------------------------------------------------------------ safetensors and skops


@check("safetensors: a 4 GiB data section (never read)", 2.0)
def _safetensors_big(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import safe_formats

    return [("", _scan_file(safe_formats.sparse_four_gib_safetensors(folder / "big.safetensors")))]


@check("safetensors: 100,000 tensors", 5.0)
def _safetensors_many(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import safe_formats

    return [("", _scan_bytes(folder, "model.safetensors", safe_formats.many_tensors_safetensors()))]


@check("safetensors: shapes whose byte count overflows", 1.0)
def _safetensors_shapes(folder: Path) -> list[tuple[str, Timed]]:
    from corpus.safe_formats import OVERFLOWING_SHAPES, safetensors_bytes, tensor

    return [
        (name, _scan_bytes(folder, "model.safetensors", safetensors_bytes({"a": tensor("F32", shape, 0, 0)})))
        for name, shape in OVERFLOWING_SHAPES.items()
    ]


@check("skops: deep nesting", 5.0)
def _skops_deep(folder: Path) -> list[tuple[str, Timed]]:
    from corpus.safe_formats import deeply_nested_skops

    from mloops.models import skops

    depths = (skops.MAX_NODE_DEPTH + 40, 3000)
    return [(str(depth), _scan_bytes(folder, "deep.skops", deeply_nested_skops(depth))) for depth in depths]


@check("skops: a schema of 80,000 nodes", 5.0)
def _skops_wide(folder: Path) -> list[tuple[str, Timed]]:
    from corpus import safe_formats

    return [("", _scan_bytes(folder, "wide.skops", safe_formats.wide_skops()))]


# ------------------------------------------------------------------ running


def best_of(timed: Timed, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        timed()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best counts (default 3)")
    parser.add_argument("--only", nargs="*", help="run the checks whose name contains one of these")
    parser.add_argument("--write", action="store_true", help="replace the Unit speed section of BENCHMARKS.md")
    args = parser.parse_args()
    selected = [c for c in CHECKS if not args.only or any(text.lower() in c.name.lower() for text in args.only)]
    header = [f"| check | case | seconds (best of {args.repeat}) | bound | within |", "|---|---|---:|---:|---|"]
    print("\n".join(header))
    rows = []
    over = 0
    for entry in selected:
        with tempfile.TemporaryDirectory(prefix="mloops-unit-speed-") as work:
            for case, timed in entry.prepare(Path(work)):
                seconds = best_of(timed, args.repeat)
                within = seconds < entry.bound
                over += not within
                rows.append(
                    f"| {entry.name} | {case} | {seconds:.3f} | {entry.bound:g} | {'yes' if within else 'NO'} |"
                )
                print(rows[-1], flush=True)
    if args.write:
        intro = (
            f"`bench/unit_speed.py` on {time.strftime('%Y-%m-%d')}: the speed bounds that unit tests used to assert "
            f"(they failed CI on a busy machine), each on the test's own input; {len(rows) - over} of {len(rows)} "
            "within."
        )
        sections.write_section(["## Unit speed", "", intro, "", *header, *rows])
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
