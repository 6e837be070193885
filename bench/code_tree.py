"""A tree of 10,000 small Python files and notebooks, for the speed of the code, notebook and secret rules.

Files are generated from a fixed seed: training scripts and notebooks of a few dozen lines with ordinary
outputs (stream text, a PNG, a pandas-style table). One file in fifty carries a planted problem, each kind
in its own files, so the tools' reports can be checked against what is there:

    unsafe-load        pickle.load / torch.load(weights_only=False) on a downloaded artifact
    trust-remote-code  from_pretrained(..., trust_remote_code=True)
    yaml-load          yaml.load with the unsafe Loader
    secret             a Hugging Face token or AWS key written in the source
    xss                (notebooks) a <script> in an HTML output
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

FILES = 10_000
PLANT_EVERY = 50
PY_KINDS = ("unsafe-load", "trust-remote-code", "yaml-load", "secret")
NB_KINDS = (*PY_KINDS, "xss")

_IMPORTS = [
    "import os",
    "import json",
    "import numpy as np",
    "import pandas as pd",
    "import torch",
    "import torch.nn as nn",
    "from pathlib import Path",
    "from sklearn.model_selection import train_test_split",
    "import matplotlib.pyplot as plt",
]
_BODY = [
    "def load_frame(path):\n    return pd.read_csv(path)\n",
    "def split(frame):\n    return train_test_split(frame, test_size=0.2, random_state=0)\n",
    "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(16, 2)\n\n"
    "    def forward(self, x):\n        return self.fc(x)\n",
    "def train(model, data, epochs=3):\n    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
    "    for _ in range(epochs):\n        for x, y in data:\n            optimizer.zero_grad()\n"
    "            loss = nn.functional.cross_entropy(model(x), y)\n            loss.backward()\n"
    "            optimizer.step()\n    return model\n",
    "def save(model, path):\n    torch.save(model.state_dict(), path)\n",
    "def restore(model, path):\n    model.load_state_dict(torch.load(path, weights_only=True))\n    return model\n",
    "def describe(frame):\n    print(frame.describe())\n    print(json.dumps({'rows': len(frame)}))\n",
    "def plot(values):\n    plt.plot(values)\n    plt.savefig('loss.png')\n",
    "CONFIG = {'lr': 1e-3, 'batch_size': 32, 'epochs': 3}\n",
    "token = os.environ.get('HF_TOKEN')\n",
]


def _token(rng: random.Random, prefix: str, alphabet: str, count: int) -> str:
    return prefix + "".join(rng.choice(alphabet) for _ in range(count))


def _planted(kind: str, rng: random.Random) -> str:
    if kind == "unsafe-load":
        return rng.choice(
            [
                "import pickle\nmodel = pickle.load(open('downloads/model.pkl', 'rb'))\n",
                "import torch\nstate = torch.load('downloads/model.bin', weights_only=False)\n",
            ]
        )
    if kind == "trust-remote-code":
        return (
            "from transformers import AutoModel\n"
            "model = AutoModel.from_pretrained('someone/model', trust_remote_code=True)\n"
        )
    if kind == "yaml-load":
        return "import yaml\nconfig = yaml.load(open('config.yaml'), Loader=yaml.Loader)\n"
    alnum = string.ascii_letters + string.digits
    if rng.random() < 0.5:
        return f"hub_token = '{_token(rng, 'hf' + '_', alnum, 34)}'\n"
    return f"aws_access_key_id = '{_token(rng, 'AK' + 'IA', string.ascii_uppercase + string.digits, 16)}'\n"


def _script(rng: random.Random, planted: str | None) -> str:
    parts = ["\n".join(sorted(set(rng.sample(_IMPORTS, 5)))) + "\n", *rng.sample(_BODY, 5)]
    if planted:
        parts.insert(rng.randrange(1, len(parts) + 1), _planted(planted, rng))
    return "\n".join(parts)


_PNG = base64.b64encode(bytes(range(256)) * 8).decode()  # stands in for a small plot's bytes
_TABLE = (
    '<div><table border="1" class="dataframe"><thead><tr><th></th><th>loss</th></tr></thead>'
    "<tbody>"
    + "".join(f"<tr><th>{i}</th><td>{1 / (i + 1):.3f}</td></tr>" for i in range(10))
    + "</tbody></table></div>"
)


def _notebook(rng: random.Random, planted: str | None) -> str:
    cells = []
    for index in range(6):
        source = _script(rng, planted if index == 3 and planted != "xss" else None)
        outputs = [
            {"output_type": "stream", "name": "stdout", "text": [f"epoch {index}: loss 0.{rng.randrange(100, 999)}\n"]},
            {"output_type": "display_data", "data": {"image/png": _PNG, "text/plain": ["<Figure>"]}, "metadata": {}},
            {"output_type": "display_data", "data": {"text/html": [_TABLE], "text/plain": ["frame"]}, "metadata": {}},
        ]
        if planted == "xss" and index == 3:
            html = "<div>done</div><script>fetch('/api/kernels', {method: 'POST'})</script>"
            outputs.append({"output_type": "display_data", "data": {"text/html": [html]}, "metadata": {}})
        cells.append(
            {
                "cell_type": "code",
                "execution_count": index + 1,
                "id": f"c{index}",
                "metadata": {},
                "source": source.splitlines(keepends=True),
                "outputs": outputs,
            }
        )
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1)


def build(root: Path) -> dict[str, str]:
    """Write the tree under ``root``; the planted files as {relative path: kind}."""
    rng = random.Random(10_000)
    planted: dict[str, str] = {}
    root.mkdir(parents=True, exist_ok=True)
    for index in range(FILES):
        notebook = index % 2 == 1
        folder = root / f"project{index // 200:02d}" / ("notebooks" if notebook else "src")
        folder.mkdir(parents=True, exist_ok=True)
        kind = None
        if index % PLANT_EVERY == 0 or index % PLANT_EVERY == 1:
            kinds = NB_KINDS if notebook else PY_KINDS
            kind = kinds[(index // PLANT_EVERY) % len(kinds)]
        name = f"{'analysis' if notebook else 'train'}_{index:05d}.{'ipynb' if notebook else 'py'}"
        path = folder / name
        path.write_text(_notebook(rng, kind) if notebook else _script(rng, kind))
        if kind:
            planted[str(path.relative_to(root))] = kind
    return planted
