"""STUB: to be written (issue 3)."""

from __future__ import annotations

from ..context import Item, ScanContext


def detect(head: bytes, name: str) -> bool:
    return False


def analyze(ctx: ScanContext, item: Item) -> None:
    raise NotImplementedError
