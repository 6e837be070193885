"""Whether a stream is a pickle, told by emulating its first opcodes (nothing is unpickled).

Pickles have no magic; a protocol 0 pickle is even text. The stream's first opcodes are run through the
pickle machine with an observer that only notes imports and calls.
"""

from __future__ import annotations

import io
from typing import Any

from ..limits import Budget, LimitExceeded, Limits
from ..picklevm.policy import default_policy
from ..picklevm.reader import Reader
from ..picklevm.vm import Machine, Malformed, Name, Observer
from ..sniff import HEAD_BYTES
from ..sources.compressed import without_compression

# Names a pickle loader is pointed at: a stream there that imports anything before it breaks is
# judged as a pickle, because the loader runs those imports before it fails.
PICKLE_EXTENSIONS = (
    *(".pkl", ".pickle", ".pck", ".pcl", ".joblib", ".jbl", ".dill", ".cloudpickle", ".pt", ".pth"),
    *(".ckpt", ".bin", ".pth.tar", ".pt.tar", ".model", ".sav"),
)


def has_pickle_extension(name: str) -> bool:
    return without_compression(name).lower().endswith(PICKLE_EXTENSIONS)


def detect(head: bytes, name: str) -> bool:
    return looks_like_pickle(head, complete=len(head) < HEAD_BYTES, pickle_named=has_pickle_extension(name))


class _Sniffer(Observer):
    """An observer that only notes whether the stream imports or calls anything.

    EXT is no call here: it fetches only what the loading process registered (standard libraries
    register nothing), so on its own it runs no code, and msgpack maps of two to four entries start
    with EXT's bytes."""

    saw_global = False
    saw_call = False

    def reference(self, name: Name, offset: int, opcode: str, spelled: str | None) -> None:
        self.saw_global = True

    def call(self, name: Name | None, callee: Any, args: Any, offset: int, opcode: str) -> None:
        self.saw_call = True

    def instantiate(self, name: Name | None, cls: Any, offset: int, opcode: str) -> None:
        self.saw_call = True

    def build(self, target: Any, name: Name | None, offset: int, opcode: str) -> None:
        self.saw_call = True

    def computed_global(self, offset: int, detail: str) -> None:
        self.saw_call = True


_SNIFF_LIMITS = Limits(max_seconds_per_file=5.0)
# A prefix that parses cleanly for this many opcodes, and is only cut off by the end of the
# sample, is a pickle; random binary data and text fail within a few opcodes.
_PLAUSIBLE_OPCODES = 64
_PLAUSIBLE_AFTER_HEADER = 2
_ENOUGH_AFTER_HEADER = 16


def looks_like_pickle(head: bytes, complete: bool, pickle_named: bool = False) -> bool:
    """Whether a pickle loader would run this stream (at least in part).

    Under a pickle-family name the loader is certain to try it: then any import or call before
    the stream breaks, or a stream that parses until its data ends, makes it a (broken) pickle.
    """
    if not head:
        return False
    observer = _Sniffer()
    # An incomplete sample has no known end, so large payloads are stepped over, not "truncated".
    reader = Reader(io.BytesIO(head), 0, len(head) if complete else None)
    machine = Machine(reader, default_policy(), observer, _SNIFF_LIMITS, Budget(_SNIFF_LIMITS))
    protocol_header = head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5
    try:
        # After a protocol header a few clean opcodes decide; without one, the whole sample must parse.
        machine.run(_ENOUGH_AFTER_HEADER if protocol_header else 0)
        return True
    except Malformed as exc:
        # Text and binaries often parse for a few opcodes. A real (possibly broken) pickle shows
        # a call, an import after a protocol header, or many valid opcodes up to where data stops.
        if observer.saw_call or (observer.saw_global and (protocol_header or pickle_named)):
            return True
        if not exc.truncated:
            return False
        if protocol_header or pickle_named:
            return machine.opcode_count >= _PLAUSIBLE_AFTER_HEADER
        return not complete and machine.opcode_count >= _PLAUSIBLE_OPCODES
    except LimitExceeded:
        return True
    except RecursionError:
        return observer.saw_call
