"""The oldest PyTorch checkpoints: a tar of ``storages``, ``tensors`` and ``pickle``.

``storages`` and ``tensors`` interleave small pickles with raw tensor bytes, in the
order torch's legacy loader reads them; ``pickle`` is an ordinary pickle. This layout
matters because the loader never honoured ``weights_only`` for it (CVE-2025-32434).
"""

from __future__ import annotations

import struct

from ..context import Item, ScanContext
from ..picklevm.reader import Truncated
from ..picklevm.values import Global, Seq
from ..picklevm.vm import Malformed
from ..registry import Format, Layout
from .pickle_stream import PickleSession

# Bytes per element of the storage classes the legacy format names.
_ELEMENT_SIZE = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
    "QUInt8Storage": 1,
    "QInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
    "UntypedStorage": 1,
}


def analyze_member(ctx: ScanContext, item: Item, member: str) -> None:
    session = PickleSession(ctx, item)
    try:
        if member == "storages":
            _storages(session)
        else:
            _tensors(session)
        if not session.reader.at_end():
            session.next_pickle()  # whatever follows is judged as a pickle; garbage is reported
    except Truncated as exc:
        session.malformed(f"truncated: {exc}")
    except Malformed:
        pass  # reported by the session
    finally:
        session.finish("pytorch-legacy-tar")


def _count(session: PickleSession) -> int:
    count = session.next_pickle()
    if not isinstance(count, int) or count < 0:
        raise session.malformed("record count is not a non-negative integer")
    return count


def _storages(session: PickleSession) -> None:
    for _ in range(_count(session)):
        record = session.next_pickle()
        size = _element_size(record)
        if size is None:
            raise session.malformed("storage record does not name a known storage type")
        numel = struct.unpack("<q", session.reader.read(8))[0]
        if numel < 0:
            raise session.malformed("negative storage size")
        session.reader.skip(numel * size)
    session.next_pickle()  # storage views


def _tensors(session: PickleSession) -> None:
    for _ in range(_count(session)):
        session.next_pickle()
        ndim = struct.unpack("<i", session.reader.read(4))[0]
        if ndim < 0:
            raise session.malformed("negative tensor rank")
        session.reader.skip(4 + 16 * ndim + 8)


def _element_size(record: object) -> int | None:
    if not isinstance(record, Seq) or len(record.items) != 3 or not isinstance(record.items[2], Global):
        return None
    storage = record.items[2]
    if not storage.module.startswith("torch"):
        return None
    return _ELEMENT_SIZE.get(storage.qualname.rsplit(".", 1)[-1])


LABEL = "pytorch-legacy-tar"
FORMATS = (
    Format(
        LABEL,
        "code",
        "PyTorch legacy tar checkpoint",
        extensions=(".pth.tar", ".pt.tar"),
        layout=Layout("tar", 10, lambda names: {"storages", "tensors", "pickle"} <= set(names)),
        pickled=True,
    ),
)
