"""mloops convert on torchvision's models: each architecture's state dict saved by torch.save (ZIP and legacy
format), converted, and compared tensor by tensor with torch.load(weights_only=True).

torchvision from PyPI does not import beside the CPU build of torch the test extras install, so this runs in
a virtual environment of its own (weights are initialised at random: nothing is downloaded):

    python3 -m venv bench/.venv-torchvision
    bench/.venv-torchvision/bin/pip install torch==2.14.1 torchvision==0.29.1 safetensors -e .
    bench/.venv-torchvision/bin/python bench/torchvision_convert.py [--write]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time

import torch
import torchvision
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.sections import BENCHMARKS, replace_section

from mloops.mitigations.convert import convert

MODELS = (
    "resnet18", "resnet50", "mobilenet_v3_small", "efficientnet_b0", "densenet121", "convnext_tiny", "swin_t",
    "vit_b_16", "regnet_y_400mf", "squeezenet1_1", "shufflenet_v2_x1_0", "mnasnet0_5", "googlenet", "alexnet",
    "maxvit_t", "fasterrcnn_mobilenet_v3_large_fpn", "deeplabv3_mobilenet_v3_large", "r3d_18",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mloops-torchvision-") as folder:
        for name in MODELS:
            # detection and segmentation models would fetch backbone weights: none here, nothing downloaded
            backbone = {"weights_backbone": None} if "rcnn" in name or "deeplab" in name else {}
            model = torchvision.models.get_model(name, weights=None, **backbone)
            for legacy in (False, True):
                checkpoint = os.path.join(folder, f"{name}.pt")
                torch.save(model.state_dict(), checkpoint, _use_new_zipfile_serialization=not legacy)
                output = os.path.join(folder, f"{name}.safetensors")
                started = time.monotonic()
                done = convert(checkpoint, output)
                seconds = time.monotonic() - started
                expected = torch.load(checkpoint, weights_only=True)
                got = load_file(output)
                equal = got.keys() == expected.keys() and all(torch.equal(got[k], v) for k, v in expected.items())
                size = os.path.getsize(checkpoint) / (1 << 20)
                fmt = "legacy" if legacy else "zip"
                rows.append(
                    f"| {name} | {fmt} | {size:,.1f} | {done.tensors} | {seconds:.2f} | {'yes' if equal else 'NO'} |"
                )
                print(rows[-1], flush=True)
    lines = [
        "## Converting torchvision checkpoints",
        "",
        f"`bench/torchvision_convert.py` on {datetime.date.today()}, torch {torch.__version__}, torchvision "
        f"{torchvision.__version__} (a virtual environment of its own: PyPI's torchvision does not import beside "
        "the CPU torch of the test extras): each architecture's state dict, at random initialisation, saved by "
        "torch.save in both formats, converted by mloops convert and compared tensor by tensor with "
        "torch.load(weights_only=True).",
        "",
        "| model | format | MiB | tensors | seconds | equal |",
        "|---|---|---|---|---|---|",
        *rows,
    ]
    print("\n".join(lines))
    if args.write:
        BENCHMARKS.write_text(replace_section(BENCHMARKS.read_text(), lines))


if __name__ == "__main__":
    main()
