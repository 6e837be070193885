"""What every source and analyzer receives: the item to look at and the scan it belongs to."""

from __future__ import annotations

from collections.abc import Callable

from . import rules
from .core import Asset, FileResult, Finding, Location, Severity
from .limits import Budget, LimitExceeded, Limits
from .picklevm.policy import Policy
from .streams import Stream


class Item:
    """One byte stream to identify and analyze: a file, a member, or a nested payload."""

    __slots__ = ("depth", "layouts", "location", "name", "size", "stream")

    def __init__(
        self,
        stream: Stream,
        location: Location,
        size: int | None,
        name: str,
        depth: int,
        layouts: tuple[str, ...] = (),
    ) -> None:
        self.stream = stream
        self.location = location
        self.size = size
        self.name = name  # file or member name: a hint for the format, never the deciding factor
        self.depth = depth
        # The loader layouts of the archive this member sits in ("keras", "torchscript-zip", ...):
        # there a member's role comes from its place, as it does for the real loader.
        self.layouts = layouts

    def child(
        self, stream: Stream, member: str, size: int | None, name: str | None = None, layouts: tuple[str, ...] = ()
    ) -> Item:
        return Item(stream, self.location.child(member), size, name or member, self.depth + 1, layouts)


class ScanContext:
    """Collects the findings and assets of one top-level file, under one budget."""

    def __init__(
        self, path: str, limits: Limits, policy: Policy, dispatch: Callable[[ScanContext, Item], None]
    ) -> None:
        self.result = FileResult(path)
        self.limits = limits
        self.policy = policy
        self.budget = Budget(limits)
        self._dispatch = dispatch

    def report(self, finding: Finding) -> None:
        self.result.findings.append(finding)

    def read_all(self, item: Item, limit: int, what: str, severity: Severity | None = None) -> bytes | None:
        """The item's bytes, or None when they exceed ``limit`` (reported, at ``severity`` when given: the
        content goes unchecked)."""
        item.stream.seek(0)
        data = item.stream.read(limit + 1)
        if len(data) > limit:
            message = f"{what} larger than {limit} bytes; not analyzed"
            self.report(rules.SCAN_LIMIT.finding(item.location, message, severity=severity))
            return None
        return data

    def record(self, item: Item, fmt: str) -> None:
        self.result.assets.append(Asset(item.location, fmt, item.size))

    def scan(self, item: Item) -> None:
        """Identify the item by content and hand it to the matching source or analyzer."""
        if item.depth > self.limits.max_depth:
            self.report(
                rules.SCAN_LIMIT.finding(
                    item.location, f"nested deeper than {self.limits.max_depth} levels; not scanned"
                )
            )
            return
        try:
            self._dispatch(self, item)
        except LimitExceeded as exc:
            self.report(
                rules.SCAN_LIMIT.finding(item.location, f"{exc.what}; the rest of this content was not checked")
            )
