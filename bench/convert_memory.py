"""mloops convert on a large PyTorch checkpoint: time and peak memory, beside the usual route (torch.load with
weights_only, then safetensors' save_file), each in a fresh process measured by its maximum resident size.

    python bench/convert_memory.py [--gib 2] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

import peers

ROOT = peers.ROOT  # importing peers put the repository root on the path

from bench.sections import BENCHMARKS, replace_section  # noqa: E402

MAKE = """
import sys, torch
gib, path = float(sys.argv[1]), sys.argv[2]
count = 8
numel = int(gib * (1 << 30) / 4 / count)
torch.save({f"layer{i}.weight": torch.rand(numel) for i in range(count)}, path)
"""
MLOOPS = "import sys; from mloops.mitigations.convert import convert; convert(sys.argv[1], sys.argv[2])"
USUAL = (
    "import sys, torch; from safetensors.torch import save_file; "
    "save_file(torch.load(sys.argv[1], weights_only=True), sys.argv[2])"
)
CHECK = """
import json, sys, torch
from safetensors import safe_open
expected = torch.load(sys.argv[1], weights_only=True, mmap=True)
with safe_open(sys.argv[2], "pt") as got:
    print(json.dumps(all(torch.equal(got.get_tensor(k), v) for k, v in expected.items()) and
                     set(got.keys()) == set(expected)))
"""


def measured(code: str, *arguments: str) -> tuple[float, float]:
    """Seconds and peak resident MiB of ``python -c code arguments`` in a fresh process."""
    script = (
        "import resource, sys, time\n"
        f"started = time.monotonic()\nexec(compile({code!r}, 'bench', 'exec'))\n"
        "print(time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, *arguments], capture_output=True, text=True, check=True)
    seconds, peak = done.stdout.split()[-2:]
    return float(seconds), float(peak)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mloops-convert-bench-") as folder:
        checkpoint = os.path.join(folder, "model.pt")
        subprocess.run([sys.executable, "-c", MAKE, str(args.gib), checkpoint], check=True)
        size = os.path.getsize(checkpoint) / (1 << 30)
        rows = []
        for name, code in (("mloops convert", MLOOPS), ("torch.load + save_file", USUAL)):
            output = os.path.join(folder, "out.safetensors")
            seconds, peak = measured(code, checkpoint, output)
            check = subprocess.run([sys.executable, "-c", CHECK, checkpoint, output], capture_output=True, text=True)
            equal = json.loads(check.stdout or "false")
            rows.append(f"| {name} | {seconds:.1f} | {peak:,.0f} | {'yes' if equal else 'NO'} |")
            os.unlink(output)
            print(rows[-1], flush=True)
    lines = [
        "## Converting to safetensors",
        "",
        f"`bench/convert_memory.py` on {datetime.date.today()}: a {size:.2f} GiB PyTorch checkpoint (8 float32 "
        "tensors, written by torch.save) converted to safetensors, each route in a fresh process; peak is the "
        "process's maximum resident size (Python, torch or mloops' imports included). mloops reads the pickle "
        "with stand-ins and copies each storage to the output a MiB at a time, so its peak does not grow with "
        "the checkpoint; the usual route holds every tensor in memory. Both outputs are checked equal to "
        "torch.load(weights_only=True).",
        "",
        "| route | seconds | peak MiB | equal |",
        "|---|---|---|---|",
        *rows,
    ]
    print("\n".join(lines))
    if args.write:
        BENCHMARKS.write_text(replace_section(BENCHMARKS.read_text(), lines))


if __name__ == "__main__":
    main()
