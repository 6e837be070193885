"""Is a value inert? The walk behind every implicit use the loader makes of a value.

Hashing a key, iterating, converting or reading an argument runs the dunders of the value
and, for containers and library objects, of everything inside it. A value is inert when
nothing reachable from it is live (see values.py). The walk is iterative, visits each
object once (shared references cost nothing, whatever they would expand to), and counts
its steps against a per-machine bound so that a hostile file cannot make it quadratic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..limits import Budget, LimitExceeded
from .values import Attr, Blob, Call, Ext, Global, Instance, Live, Opaque, Persistent, Seq

CONSTANT_TYPES = frozenset({type(None), bool, int, float, str, bytes, bytearray, Blob})
MAX_WALK_STEPS = 20_000_000  # per machine: far beyond any real file, reached only by crafted repetition
TIME_CHECK_STEPS = 1 << 16
# Hashing a tuple hashes its items again every time (CPython caches no tuple hash), and repr
# expands every container: work beyond this many items is a denial of service on the loader.
MAX_EXPANSION = 1 << 24
# A loaded object whose walk (repr, deepcopy, serialization, comparison by whoever uses it) visits
# more items than this, shared references counted each time: a "billion laughs". Far above what
# shared references in real data add up to.
MAX_OBJECT_EXPANSION = 1 << 30


class Walker:
    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.steps = 0

    def _step(self) -> None:
        self.steps += 1
        if not self.steps % TIME_CHECK_STEPS:
            self.budget.check_time()
            if self.steps > MAX_WALK_STEPS:
                raise LimitExceeded(f"more than {MAX_WALK_STEPS} steps checking values the loader uses")

    def first_live(self, value: Any) -> Live | None:
        """The provenance of the first live object reachable from ``value``, or None when it is inert."""
        if type(value) in CONSTANT_TYPES:
            return None
        if type(value) is Seq and value.state is None and not value.extra:
            if all(type(item) in CONSTANT_TYPES for item in value.items):
                return None  # the common case: a tuple of plain arguments
        pending = [value]
        seen: set[int] = set()
        while pending:
            current = pending.pop()
            kind = type(current)
            if kind in CONSTANT_TYPES or id(current) in seen:
                continue
            seen.add(id(current))
            self._step()
            if kind is Seq:
                pending.extend(current.items)
                pending.extend(current.extra)
            else:
                live = current.live
                if live is not None:
                    return live
                pending.extend(_parts(current))
            if current.state is not None:
                pending.append(current.state)
        return None

    def expansion(self, value: Any, tuples_only: bool, cap: int = MAX_EXPANSION) -> int:
        """How many items a recursive hash (tuples) or repr (every container) of ``value`` visits,
        counting shared references each time they are met; ``cap`` + 1 when it is more."""
        if not _expands(value, tuples_only):
            return 1
        sizes: dict[int, int] = {}
        on_path = {id(value)}
        stack: list[tuple[Seq, Iterator[Any], int]] = [(value, _items(value), _leaf_count(value))]
        while stack:
            node, children, total = stack[-1]
            descended = False
            for child in children:
                if not _expands(child, tuples_only) or id(child) in on_path:
                    total += 1  # a leaf, or a cycle back up (repr prints "[...]" there)
                elif id(child) in sizes:
                    total += sizes[id(child)]
                else:
                    stack[-1] = (node, children, total)
                    on_path.add(id(child))
                    stack.append((child, _items(child), _leaf_count(child)))
                    descended = True
                    break
                if total > cap:
                    return cap + 1
            if descended:
                continue
            self._step()
            stack.pop()
            on_path.discard(id(node))
            sizes[id(node)] = total
            if not stack:
                return total
            parent, rest, parent_total = stack[-1]
            if parent_total + total > cap:
                return cap + 1
            stack[-1] = (parent, rest, parent_total + total)
        return 1


def own_live(value: Any) -> Live | None:
    """The value's own provenance, not looking inside it: built-in containers and constants are never live."""
    if type(value) in CONSTANT_TYPES or type(value) is Seq:
        return None
    live: Live | None = value.live
    return live


def _parts(value: Any) -> list[Any]:
    """What a library object holds, for the walk: arguments, state and items it was given."""
    kind = type(value)
    if kind is Call:
        parts = [value.args]
        if value.added:
            parts.extend(value.added)
        return parts
    if kind is Instance:
        return list(value.added) if value.added else []
    if kind is Attr:
        return [value.base]
    if kind is Persistent:
        return [value.pid]
    if kind in (Global, Ext, Opaque):
        return []
    raise TypeError(f"not a symbolic value: {kind.__name__}")


def _expands(value: Any, tuples_only: bool) -> bool:
    return type(value) is Seq and (not tuples_only or value.kind == "tuple")


def _items(seq: Seq) -> Iterator[Any]:
    return iter((*seq.items, *seq.extra))


def _leaf_count(seq: Seq) -> int:
    """The node itself and the constants it holds beyond the kept items."""
    return 1 + seq.dropped - len(seq.extra)
