"""Pickle streams: raw pickles, several pickles back to back, joblib, and legacy PyTorch files.

A stream may hold several pickles: legacy ``torch.save`` writes five in a row, and any
loader calling ``pickle.load`` repeatedly reads on. Every pickle is emulated until the
data ends. The legacy PyTorch layout is recognised by its leading magic number; after
its five pickles come raw tensor bytes that no loader unpickles.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from .. import rules
from ..context import Item, ScanContext
from ..picklevm.joblib_arrays import WRAPPER_CLASSES, check_object_array_state, step_over_array
from ..picklevm.judge import Judge
from ..picklevm.policy import Policy
from ..picklevm.reader import Reader
from ..picklevm.vm import BuildHook, Machine, Malformed
from ..registry import Format, Layout
from . import pickle_sniff

TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
TORCH_LEGACY_PICKLES = 5  # magic, protocol version, sys info, the object, storage keys

BUILD_HOOKS: dict[str, BuildHook] = {
    **{name: step_over_array for name in WRAPPER_CLASSES},
    **{name: check_object_array_state for name in ("numpy.ndarray", "numpy.matrix", "numpy.char.chararray")},
}
PADDING_MAX = 4096


class PickleSession:
    """Emulates the pickles of one item in order, with one judge for all of them."""

    def __init__(self, ctx: ScanContext, item: Item, start: int = 0, policy: Policy | None = None) -> None:
        self.ctx = ctx
        self.item = item
        # A layout's loader may resolve names its own way (TorchScript's C++ unpickler); nested
        # payloads are scanned with the context's policy again.
        self.policy = policy or ctx.policy
        self.judge = Judge(self.policy, item.location, self._scan_nested)
        self.reader = Reader(item.stream, start, item.size)
        self.count = 0

    def next_pickle(self) -> Any:
        """Run one pickle to its STOP; raises Malformed where the real loader would stop."""
        events_before = self.judge.events
        start = self.reader.tell()
        machine = Machine(self.reader, self.policy, self.judge, self.ctx.limits, self.ctx.budget, BUILD_HOOKS)
        try:
            result = machine.run()
        except Malformed as exc:
            self._report_break(exc, start, self.judge.events > events_before)
            raise
        self.count += 1
        return result

    def _report_break(self, exc: Malformed, start: int, ran: bool) -> None:
        location = self.item.location
        if self.count > 0 and not ran:
            finding = rules.TRAILING_DATA.finding(
                location.at(start),
                f"bytes after pickle #{self.count} (from byte {start}) are not a valid pickle: {exc}",
                {"pickles_before": str(self.count)},
            )
        else:
            finding = rules.MALFORMED.finding(location.at(exc.offset), f"pickle #{self.count + 1}: {exc}")
        self.ctx.report(finding)

    def at_padding_end(self) -> bool:
        """True at the end of data, or when only a little whitespace or NUL padding is left
        (old NumPy wrote a newline after object arrays); such bytes cannot hide anything."""
        remaining = self.reader.remaining()
        if remaining is None or remaining > PADDING_MAX:
            return self.reader.at_end()
        return not self.reader.read_at(self.reader.tell(), remaining).strip(b" \t\r\n\x00")

    def malformed(self, message: str) -> Malformed:
        """Report a break found outside the machine (in data a loader reads itself)."""
        exc = Malformed(message, self.reader.tell())
        self.ctx.report(rules.MALFORMED.finding(self.item.location.at(exc.offset), message))
        return exc

    def _scan_nested(self, data: bytes, offset: int, via: str) -> None:
        self.ctx.scan(self.item.child(io.BytesIO(data), f"<bytes@{offset} via {via}>", len(data), "nested"))

    def finish(self, label: str) -> None:
        for finding in self.judge.judged():
            self.ctx.report(finding)
        self.ctx.record(self.item, self._refine(label))

    def _refine(self, label: str) -> str:
        """A more precise label for the format summary, from the modules the stream used."""
        if label != "pickle":
            return label
        modules = {module.split(".", 1)[0] for module, _ in self.judge.uses}
        for module, refined in (
            ("joblib", "joblib"),
            ("dill", "dill"),
            ("cloudpickle", "cloudpickle"),
            ("torch", "pytorch-pickle"),
        ):
            if module in modules:
                return refined
        return label


def analyze(ctx: ScanContext, item: Item, start: int = 0, label: str = "pickle", policy: Policy | None = None) -> None:
    """Emulate every pickle in ``item`` from ``start`` to the end of its data."""
    session = PickleSession(ctx, item, start, policy)
    try:
        while session.count == 0 or not session.at_padding_end():
            result = session.next_pickle()
            if session.count == 1 and result == TORCH_LEGACY_MAGIC and not isinstance(result, bool):
                label = "pytorch-legacy"
            if label == "pytorch-legacy" and session.count == TORCH_LEGACY_PICKLES:
                break
    except Malformed:
        pass  # reported by the session
    finally:
        session.finish(label)


def _has_data_pkl(names: Sequence[str]) -> bool:
    return any(name == "data.pkl" or name.endswith("/data.pkl") for name in names)


FORMATS = (
    Format(
        "pickle",
        "code",
        "Python pickle",
        handler=analyze,
        detect=pickle_sniff.detect,
        order=300,  # after every binary format, before the text formats: a protocol 0 pickle is text
        extensions=(
            ".pkl",
            ".pickle",
            ".pck",
            ".pcl",
            ".joblib",
            ".jbl",
            ".dill",
            ".cloudpickle",
            ".pt",
            ".pth",
            ".ckpt",
        ),
        pickled=True,
    ),
    Format("joblib", "code", "joblib", pickled=True),
    Format("dill", "code", "dill", pickled=True),
    Format("cloudpickle", "code", "cloudpickle", pickled=True),
    Format("pytorch-pickle", "code", "PyTorch checkpoint pickle", pickled=True),
    Format("pytorch-legacy", "code", "PyTorch legacy checkpoint", pickled=True),
    # torch.load's ZIP checkpoints: the members are sniffed (data.pkl is a pickle); TorchScript and .pt2
    # archives also hold a data.pkl, and go to their own layouts instead
    Format("pytorch-zip", "code", "PyTorch checkpoint (ZIP)", layout=Layout("zip", 30, _has_data_pkl, fallback=True)),
)
