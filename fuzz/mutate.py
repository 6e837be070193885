"""Mutations of real, benign checkpoints, made at campaign start by the real libraries.

Seeds (``make_seeds``, run in a child process so that the oracle never imports the libraries):
  torch      the data.pkl member of ``torch.save(model.state_dict())`` (persistent ids for storages)
  sklearn    a fitted LogisticRegression and a DecisionTreeClassifier, by pickle
  pandas     a DataFrame with int, float, text, datetime and categorical columns, by pickle
  numpy      an object array, by pickle

Mutations (``Mutator.case``), each reproducible from (seed, index):
  byte flips, opcode deletion, insertion of a generated fragment at an opcode boundary, splicing a
  fragment over an opcode, GLOBAL/STACK_GLOBAL name swaps, memo index swaps, FRAME length edits,
  truncation, and two or three of these stacked.
"""

from __future__ import annotations

import itertools
import json
import pickletools
import random
import struct
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from .generator import PAYLOADS, UNLISTED_CLASSES, Program, split, vocabulary

ROOT = Path(__file__).resolve().parent.parent


def make_seeds() -> dict[str, bytes]:
    """Benign pickles made by the real libraries (imported here: call this in a child process)."""
    import io
    import pickle
    import zipfile

    import numpy as np
    import pandas as pd
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    seeds: dict[str, bytes] = {}
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.ReLU())
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        member = next(name for name in archive.namelist() if name.endswith("/data.pkl"))
        seeds["torch-state-dict"] = archive.read(member)
    rng = np.random.RandomState(0)
    x = rng.rand(30, 3)
    y = (x[:, 0] > 0.5).astype(int)
    seeds["sklearn-logistic"] = pickle.dumps(LogisticRegression().fit(x, y), protocol=4)
    seeds["sklearn-tree"] = pickle.dumps(DecisionTreeClassifier(max_depth=2).fit(x, y), protocol=5)
    frame = pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [0.5, 1.5, 2.5],
            "s": ["a", "b", "c"],
            "t": pd.to_datetime(["2020-01-01", "2021-01-01", "2022-01-01"]),
            "c": pd.Categorical(["u", "v", "u"]),
        }
    )
    seeds["pandas-frame"] = pickle.dumps(frame, protocol=4)
    seeds["numpy-object-array"] = pickle.dumps(np.array([1, "a", None, 2.5], dtype=object), protocol=2)
    seeds["numpy-object-array-p0"] = pickle.dumps(np.array([1, "a"], dtype=object), protocol=0)
    return seeds


def seeds_from_child(timeout: float = 600) -> dict[str, bytes]:
    """make_seeds() in a child interpreter; the bytes come back as hex in JSON."""
    code = (
        "import json, sys; from fuzz.mutate import make_seeds; "
        "json.dump({k: v.hex() for k, v in make_seeds().items()}, sys.stdout)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=True
    )
    return {name: bytes.fromhex(value) for name, value in json.loads(result.stdout).items()}


@dataclass
class Op:
    code: str
    arg: object
    start: int
    end: int


def opcodes(data: bytes) -> list[Op]:
    """The opcodes of a valid pickle with their byte spans (FRAME contents count as opcodes too)."""
    found = []
    previous = None
    with warnings.catch_warnings():  # STRING arguments with odd escapes warn while they are decoded
        warnings.simplefilter("ignore")
        ops = list(pickletools.genops(data))
    for opcode, arg, pos in ops:
        if previous is not None:
            previous.end = pos
        previous = Op(opcode.name, arg, pos, len(data))
        found.append(previous)
        if opcode.name == "STOP":
            previous.end = pos + 1
            break
    return found


class Mutator:
    """Case ``index`` of a campaign: one seed, one to three mutations."""

    def __init__(self, seeds: dict[str, bytes], seed: int) -> None:
        self.seeds = sorted(seeds.items())
        self.seed = seed
        self.ops = {name: opcodes(data) for name, data in self.seeds}
        self.vocab = vocabulary()

    def case(self, index: int) -> tuple[bytes, str]:
        rng = random.Random(self.seed * 7_000_003 + index)
        name, data = rng.choice(self.seeds)
        ops = self.ops[name]
        applied = []
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            mutation = rng.choice(MUTATIONS)
            data = mutation(self, rng, data, ops)
            applied.append(mutation.__name__.lstrip("_"))
            ops = self.ops[name] if len(applied) == 1 and data == dict(self.seeds)[name] else _safe_ops(data)
            if not ops:
                break
        return data, f"mut:{name}:{'+'.join(applied)}"

    def fragment(self, rng: random.Random, protocol: int) -> bytes:
        """One generated value, as opcode bytes without a PROTO header."""
        program = Program(rng, self.vocab, protocol, rng.choice((0.0, 0.2, 0.6)))
        program.value()
        out = bytes(program.e.out)
        return out[2:] if protocol >= 2 else out


def _safe_ops(data: bytes) -> list[Op]:
    try:
        return opcodes(data)
    except Exception:  # noqa: BLE001 - a mutant that no longer parses gets byte-level mutations only
        return []


def _protocol(data: bytes) -> int:
    return data[1] if len(data) > 1 and data[0] == 0x80 and data[1] <= 5 else 0


def _flip(m: Mutator, rng: random.Random, data: bytes, ops: list[Op]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(out))
        out[pos] = rng.randrange(256) if rng.random() < 0.5 else out[pos] ^ (1 << rng.randrange(8))
    return bytes(out)


def _delete(m: Mutator, rng: random.Random, data: bytes, ops: list[Op]) -> bytes:
    if len(ops) < 3:
        return _flip(m, rng, data, ops)
    op = rng.choice(ops[1:-1])
    return data[: op.start] + data[op.end :]


def _insert(m: Mutator, rng: random.Random, data: bytes, ops: list[Op]) -> bytes:
    if len(ops) < 2:
        return _flip(m, rng, data, ops)
    op = rng.choice(ops[1:])
    fragment = m.fragment(rng, _protocol(data))
    if rng.random() < 0.5:
        fragment += b"0"  # pushed and popped: the rest of the stream is unchanged
    return _fix_frames(data[: op.start] + fragment + data[op.start :], op.start, len(fragment))


def _splice(m: Mutator, rng: random.Random, data: bytes, ops: list[Op]) -> bytes:
    pushers = [op for op in ops if op.code not in ("PROTO", "FRAME", "STOP", "MARK")]
    if not pushers:
        return _flip(m, rng, data, ops)
    op = rng.choice(pushers)
    fragment = m.fragment(rng, _protocol(data))
    return _fix_frames(data[: op.start] + fragment + data[op.end :], op.start, len(fragment) - (op.end - op.start))


def _rename(m: Mutator, rng: random.Random, data: bytes, ops: list[Op]) -> bytes:
    """Another name in place of a GLOBAL or of STACK_GLOBAL's two strings."""
    names = [op for op in ops if op.code in ("GLOBAL", "INST")]
    pool = m.vocab.allow_call + m.vocab.allow_build
    choice = rng.random()
    if choice < 0.5:
        dotted = rng.choice(pool)
    elif choice < 0.8:
        module, name = rng.choice(UNLISTED_CLASSES)
        dotted = f"{module}.{name}"
    else:
        module, name, _ = rng.choice(PAYLOADS)
        dotted = f"{module}.{name}"
    module, qualname = split(dotted)
    if names:
        op = rng.choice(names)
        replacement = (b"c" if op.code == "GLOBAL" else b"i") + module.encode() + b"\n" + qualname.encode() + b"\n"
        return _replace(data, op, replacement)
    follow = ("SHORT_BINUNICODE", "MEMOIZE", "BINPUT")
    strings = [op for op, after in itertools.pairwise(ops) if op.code == "SHORT_BINUNICODE" and after.code in follow]
    if not strings:
        return _flip(m, rng, data, ops)
    text = (module if rng.random() < 0.5 else qualname).encode()
    return _replace(data, rng.choice(strings), b"\x8c" + bytes([len(text)]) + text)


def _replace(data: bytes, op: Op, replacement: bytes) -> bytes:
    return _fix_frames(
        data[: op.start] + replacement + data[op.end :], op.start, len(replacement) - (op.end - op.start)
    )


def _memo_swap(m: Mutator, rng: random.Random, data: bytes, ops: list[Op]) -> bytes:
    gets = [op for op in ops if op.code in ("BINGET", "BINPUT")]
    if not gets:
        return _flip(m, rng, data, ops)
    op = rng.choice(gets)
    indices = [o.arg for o in ops if o.code in ("BINPUT", "BINGET") and isinstance(o.arg, int)] or [0]
    out = bytearray(data)
    out[op.start + 1] = rng.choice(indices) if rng.random() < 0.8 else rng.randrange(256)
    return bytes(out)


def _frame_length(m: Mutator, rng: random.Random, data: bytes, ops: list[Op]) -> bytes:
    frames = [op for op in ops if op.code == "FRAME"]
    if not frames:
        return _flip(m, rng, data, ops)
    op = rng.choice(frames)
    length = int(op.arg)  # type: ignore[call-overload]
    new = rng.choice((0, 1, length - 1, length + 1, length * 2, 2**63, rng.randrange(0, length + 64)))
    return data[: op.start + 1] + struct.pack("<Q", max(0, min(new, 2**64 - 1))) + data[op.start + 9 :]


def _truncate(m: Mutator, rng: random.Random, data: bytes, ops: list[Op]) -> bytes:
    return data[: rng.randrange(1, len(data))]


def _fix_frames(data: bytes, at: int, delta: int) -> bytes:
    """Keep the FRAME that holds offset ``at`` consistent with a change of ``delta`` bytes inside it."""
    try:
        frames = [op for op in opcodes(data[:at]) if op.code == "FRAME"] if at else []
    except Exception:  # noqa: BLE001 - an unparsable prefix keeps its frames as they are
        return data
    if not frames:
        return data
    frame = frames[-1]
    length = int(frame.arg)  # type: ignore[call-overload]
    if frame.start + 9 + length - delta < at:
        return data  # the change is after that frame
    return data[: frame.start + 1] + struct.pack("<Q", max(0, length + delta)) + data[frame.start + 9 :]


MUTATIONS = (_flip, _delete, _insert, _insert, _splice, _splice, _rename, _rename, _memo_swap, _frame_length, _truncate)


if __name__ == "__main__":
    made = seeds_from_child()
    for seed_name, blob in made.items():
        print(seed_name, len(blob))
    mutator = Mutator(made, 0)
    for number in range(5):
        blob, label = mutator.case(number)
        print(label, len(blob))
