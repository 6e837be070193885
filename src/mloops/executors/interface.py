"""What an executor does: scan a list of work units and give one result per unit, in the units' order.

A unit is a local file with the layouts its folder gives it, or a remote object as its source listed it.
The driver has already answered what the result cache knew; an executor scans the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..core import FileResult
from ..limits import Limits
from ..sources.remote.interface import Listed

if TYPE_CHECKING:
    from ..cache import ResultCache

LocalFile = tuple[str, tuple[str, ...]]  # path, layouts
Unit = LocalFile | Listed


class Executor(Protocol):
    def run(self, units: list[Unit], limits: Limits, cache: ResultCache | None) -> list[FileResult]: ...


def scan_unit(unit: Unit, limits: Limits, cache: ResultCache | None = None) -> FileResult:
    """One unit scanned where this process runs: a file by path, a remote object by ranged reads."""
    from ..scan import scan_file, scan_remote

    if isinstance(unit, Listed):
        return scan_remote(unit, limits, cache=cache)
    path, layouts = unit
    return scan_file(path, limits, layouts)
