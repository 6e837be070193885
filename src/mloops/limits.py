"""Bounds that keep hostile input from turning the scanner into the vulnerability."""

from __future__ import annotations

import os
import resource
import sys
import time
from typing import NamedTuple, NoReturn

MiB = 1 << 20
GiB = 1 << 30


class Limits(NamedTuple):
    max_depth: int = 8  # archives, compressed streams and nested pickles inside each other
    max_seconds_per_file: float = 300.0
    max_expanded_bytes: int = 32 * GiB  # decompressed bytes per top-level file
    max_ratio: int = 1100  # deflate cannot exceed ~1032:1, so more means a crafted stream
    # Decompressed bytes per byte of the top-level file, all nested layers and re-reads counted: a
    # stream at deflate's best ratio read a few times passes, nested bombs multiply ratios and do not.
    max_expansion_ratio: int = 5000
    ratio_floor_bytes: int = 64 * MiB  # small outputs may be highly compressible, never a bomb
    max_members: int = 200_000  # entries per archive
    max_memo_entries: int = 10_000_000
    max_stack_items: int = 10_000_000
    max_nested_bytes: int = 512 * MiB  # a byte string re-read to scan a nested pickle
    max_header_bytes: int = 1 * MiB  # .npy headers; NumPy itself refuses more than 10 kB by default
    # Findings of one rule listed per top-level file; the rest are counted in one summary finding.
    # Above the analyzers' own caps and their summaries (skops: 200 untrusted types, then a count).
    max_findings_per_rule: int = 256
    # Decompressed bytes kept in memory at once, so that an archive inside a compressed stream is
    # read with random access instead of decompressing again from the start for every member.
    max_held_bytes: int = 256 * MiB
    max_folder_depth: int = 256  # folders inside the folders named on the command line
    # Growth of the scanner's resident memory while it scans one top-level file (the pickle engine's
    # memo, stack and values): a memo flood is stopped here, far below what would exhaust the machine.
    max_memory_bytes: int = 768 * MiB


class LimitExceeded(Exception):
    """A bound was hit; the caller reports it as a finding and stops that asset.

    ``whole_file`` bounds (time, decompressed bytes) are spent for the whole top-level file:
    nothing more of it is scanned, and the bound is reported once."""

    def __init__(self, what: str, whole_file: bool = False) -> None:
        super().__init__(what)
        self.what = what
        self.whole_file = whole_file


class Budget:
    """Shared by everything scanned under one top-level file."""

    def __init__(self, limits: Limits, source_size: int | None = None) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_seconds_per_file
        self.expanded = 0
        # Size of the top-level file on disk: every decompressed byte, in every nested layer and
        # every re-read, is measured against it (one stream's ratio cannot see nesting).
        self.source_size = source_size
        self.held = 0
        self.spent: str | None = None  # the whole-file bound that ran out
        self.memory_floor = resident_bytes()

    def _exhaust(self, what: str) -> NoReturn:
        self.spent = what
        raise LimitExceeded(what, whole_file=True)

    def check_time(self) -> None:
        if self.spent is not None:
            raise LimitExceeded(self.spent, whole_file=True)
        if time.monotonic() > self.deadline:
            self._exhaust(f"time limit of {self.limits.max_seconds_per_file:g} s per file")

    def check_memory(self) -> None:
        """Called every few thousand steps of the long loops that build values (the pickle engine)."""
        grown = resident_bytes() - self.memory_floor
        if grown > self.limits.max_memory_bytes:
            limit = self.limits.max_memory_bytes // MiB
            self._exhaust(f"memory limit of {limit} MiB per file ({grown // MiB} MiB used)")

    def add_expanded(self, count: int) -> None:
        self.expanded += count
        limits = self.limits
        if self.expanded > limits.max_expanded_bytes:
            self._exhaust(f"more than {limits.max_expanded_bytes} decompressed bytes")
        if (
            self.source_size is not None
            and self.expanded > limits.ratio_floor_bytes
            and self.expanded > limits.max_expansion_ratio * max(self.source_size, 1)
        ):
            self._exhaust(
                f"{self.expanded} bytes decompressed from a file of {self.source_size}, all nested layers and "
                f"re-reads counted: an expansion ratio above {limits.max_expansion_ratio}:1, a decompression bomb"
            )

    def hold(self, count: int) -> bool:
        """Reserve memory for ``count`` decompressed bytes; False when the bound would be passed."""
        if self.held + count > self.limits.max_held_bytes:
            return False
        self.held += count
        return True

    def release(self, count: int) -> None:
        self.held -= count


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """This process's resident memory now (Linux /proc); elsewhere its peak, which only errs towards stopping."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak * (1 if sys.platform == "darwin" else 1024)
