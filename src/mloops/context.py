"""What every source and analyzer receives: the item to look at and the scan it belongs to."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from typing import Protocol

from . import registry, rules
from .core import Asset, AttackClass, FileResult, Finding, Location, Severity
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
        self._listed: Counter[str] = Counter()  # findings listed per rule id
        self._listed_length = 0  # length of result.findings when _listed was last right
        self._unlisted: dict[str, tuple[int, Finding]] = {}  # rule id -> (count, worst finding) over the cap
        self._spent_reported = False
        self._surface: AttackClass | None = None  # the attack class of the format being analyzed
        self._keys: set[tuple[str, Hashable]] = set()  # (rule id, key) of findings reported with a key

    def report(self, finding: Finding, key: Hashable | None = None) -> None:
        """The one finding sink of a file. A finding whose rule already reported the same ``key`` in this file
        is dropped (one finding per workload and problem, per operator and library, ...). Past
        ``max_findings_per_rule`` listed findings of a rule, the rest are counted into one summary line: a
        flood of findings (one per opcode, one per global) must not become a flood of output."""
        if key is not None:
            if (finding.rule.id, key) in self._keys:
                return
            self._keys.add((finding.rule.id, key))
        finding = self._on_surface(finding)
        findings = self.result.findings
        if len(findings) != self._listed_length:  # someone edited the list directly: count again
            self._listed = Counter(f.rule.id for f in findings)
        rule_id = finding.rule.id
        if self._listed[rule_id] < self.limits.max_findings_per_rule:
            findings.append(finding)
            self._listed[rule_id] += 1
        else:
            self.count_unlisted(finding, 1)
        self._listed_length = len(findings)

    def count_unlisted(self, finding: Finding, count: int) -> None:
        """Count ``count`` findings like ``finding`` that an analyzer held back past the cap (it kept only as
        many as could be listed) into the rule's summary line."""
        if count > 0:
            finding = self._on_surface(finding)
            held, worst = self._unlisted.get(finding.rule.id, (0, finding))
            self._unlisted[finding.rule.id] = (held + count, finding if finding.severity > worst.severity else worst)

    def _on_surface(self, finding: Finding) -> Finding:
        """A shared rule's finding with the attack class of the format being analyzed."""
        if finding.rule.shared and finding.surface is None and self._surface is not None:
            return finding._replace(surface=self._surface)
        return finding

    def _list_unlisted(self) -> None:
        """One summary per capped rule, at the worst severity it left out, so that nothing cut from the
        listing lowers the file's verdict or exit code."""
        for rule_id, (count, worst) in self._unlisted.items():
            message = f"... and {count} more {rule_id} findings in this file were not listed"
            evidence = {"not_listed": str(count), "listed": str(self.limits.max_findings_per_rule)}
            summary = worst.rule.finding(Location(self.result.path), message, evidence, severity=worst.severity)
            self.result.findings.append(summary._replace(surface=worst.surface))
        self._unlisted.clear()

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
        if fmt not in registry.catalog():  # an undeclared label fails here, loudly, never becomes "other"
            raise LookupError(f"format label {fmt!r} is declared by no module's FORMATS")
        self.result.assets.append(Asset(item.location, fmt, item.size))
        self._surface = registry.surfaces().get(fmt, self._surface)

    def scan(self, item: Item) -> None:
        """Identify the item by content and hand it to the matching source or analyzer."""
        if item.depth == 0 and item.size is not None:
            self.budget.source_size = item.size
        try:
            self._scan(item)
        finally:
            if item.depth == 0:
                self._list_unlisted()

    def _scan(self, item: Item) -> None:
        if self.budget.spent is not None:
            return  # reported where it ran out
        if item.depth > self.limits.max_depth:
            self.report(
                rules.SCAN_LIMIT.finding(
                    item.location, f"nested deeper than {self.limits.max_depth} levels; not scanned"
                )
            )
            return
        outer = self._surface
        try:
            self._dispatch(self, item)
        except LimitExceeded as exc:
            if not exc.whole_file:
                message = f"{exc.what}; the rest of this content was not checked"
            elif self._spent_reported:
                return
            else:
                self._spent_reported = True
                message = f"{exc.what}; the rest of this file was not checked"
            self.report(rules.SCAN_LIMIT.finding(item.location, message))
        finally:
            self._surface = outer  # the item's own format decided its findings' class, not its parent's


class Handler(Protocol):
    """The interface of every analyzer and source: judge one item (a file, an archive member, a nested stream)
    into the context - record its format label, report findings, scan what it contains. Registered through
    a format's ``handler`` or a layout's member roles (registry.py)."""

    def __call__(self, ctx: ScanContext, item: Item, /) -> None: ...
