"""Bounds that keep hostile input from turning the scanner into the vulnerability."""

from __future__ import annotations

import time
from typing import NamedTuple

MiB = 1 << 20
GiB = 1 << 30


class Limits(NamedTuple):
    max_depth: int = 8  # archives, compressed streams and nested pickles inside each other
    max_seconds_per_file: float = 300.0
    max_expanded_bytes: int = 32 * GiB  # decompressed bytes per top-level file
    max_ratio: int = 1100  # deflate cannot exceed ~1032:1, so more means a crafted stream
    ratio_floor_bytes: int = 64 * MiB  # small outputs may be highly compressible, never a bomb
    max_members: int = 200_000  # entries per archive
    max_memo_entries: int = 10_000_000
    max_stack_items: int = 10_000_000
    max_nested_bytes: int = 512 * MiB  # a byte string re-read to scan a nested pickle
    max_header_bytes: int = 1 * MiB  # .npy headers; NumPy itself refuses more than 10 kB by default


class LimitExceeded(Exception):
    """A bound was hit; the caller reports it as a finding and stops that asset."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class Budget:
    """Shared by everything scanned under one top-level file."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_seconds_per_file
        self.expanded = 0

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"time limit of {self.limits.max_seconds_per_file:g} s per file")

    def add_expanded(self, count: int) -> None:
        self.expanded += count
        if self.expanded > self.limits.max_expanded_bytes:
            raise LimitExceeded(f"more than {self.limits.max_expanded_bytes} decompressed bytes")
