"""The default executor: files in a pool of processes (parsing is CPU work), remote objects in threads
(reading them is waiting on round trips)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..core import FileResult
from ..limits import Limits
from ..sources.remote.interface import Listed
from .interface import LocalFile, Unit, scan_unit

if TYPE_CHECKING:
    from ..cache import ResultCache

AUTO_PARALLEL_FILES = 256  # starting worker processes costs more than scanning a few hundred typical files
REMOTE_WORKERS = 8  # remote objects read at a time


class LocalExecutor:
    def __init__(self, jobs: int | None) -> None:
        self.jobs = jobs  # None: every CPU when there are enough files to repay the workers' start

    def run(self, units: list[Unit], limits: Limits, cache: ResultCache | None) -> list[FileResult]:
        files = [(index, unit) for index, unit in enumerate(units) if not isinstance(unit, Listed)]
        remote = [(index, unit) for index, unit in enumerate(units) if isinstance(unit, Listed)]
        results: list[FileResult | None] = [None] * len(units)
        for (index, _), result in zip(files, self._scan_files([unit for _, unit in files], limits), strict=True):
            results[index] = result
        for (index, _), result in zip(remote, _scan_remote([u for _, u in remote], limits, cache), strict=True):
            results[index] = result
        return [result for result in results if result is not None]

    def _scan_files(self, files: list[LocalFile], limits: Limits) -> list[FileResult]:
        jobs = self.jobs
        if jobs is None:
            jobs = (os.cpu_count() or 1) if len(files) > AUTO_PARALLEL_FILES else 1
        if jobs > 1 and len(files) > 1:
            from concurrent.futures import ProcessPoolExecutor  # only parallel runs pay for its import

            with ProcessPoolExecutor(max_workers=min(jobs, len(files))) as pool:
                chunksize = max(1, len(files) // (jobs * 8))
                return list(pool.map(scan_unit, files, [limits] * len(files), chunksize=chunksize))
        return [scan_unit(unit, limits) for unit in files]


def _scan_remote(objects: list[Listed], limits: Limits, cache: ResultCache | None) -> list[FileResult]:
    if len(objects) < 2:
        return [scan_unit(listed, limits, cache) for listed in objects]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=REMOTE_WORKERS) as pool:
        return list(pool.map(lambda listed: scan_unit(listed, limits, cache), objects))
