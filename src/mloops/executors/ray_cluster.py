"""The Ray executor (``--executor ray`` or ``--executor ray://HOST:PORT``): units spread over a Ray cluster.

``ray`` joins the cluster ``RAY_ADDRESS`` names (or starts one on this machine); ``ray://`` connects through
Ray Client. Units go out in batches, one task per batch; a task whose worker dies is run again by Ray (up to
``RETRIES`` times) and its batch's results are taken once, from the run that finished, so nothing is lost or
counted twice. A batch that never finishes becomes a finding for each of its units, never a pass. Results come
back in the units' order, so the report is the one a local scan writes. Workers read local paths at the same
path (a shared filesystem) and remote objects from their stores; they run the same mloops version as the
driver, or the scan stops.
"""

from __future__ import annotations

import importlib
import os
import socket
import time
import warnings
from typing import TYPE_CHECKING, Any

from .. import __version__, rules
from ..core import FileResult, Location, RemoteResult, UsageError
from ..limits import Limits
from ..sources.remote.interface import Listed
from .interface import Unit
from .local import LocalExecutor

if TYPE_CHECKING:
    from ..cache import ResultCache

RETRIES = 3  # runs of a batch after its worker died
SESSION_ATTEMPTS = 3  # Ray Client sessions asked for when the last one's server died as it started
SESSION_PAUSE = 0.5  # seconds between them
BATCHES_PER_CPU = 8  # enough batches to even out slow files, few enough that task overhead stays small
MAX_BATCH = 500
CONNECT_TIMEOUT = 10.0  # seconds for the cluster's address to answer


class WrongVersion(Exception):
    """A worker's mloops is not the driver's: its verdicts would not be this scan's."""


def scan_batch(units: list[Unit], limits: Limits, version: str) -> list[FileResult]:
    """A task: the units of one batch, scanned on a worker (its remote objects a few at a time, as locally)."""
    if version != __version__:
        raise WrongVersion(f"a Ray worker runs mloops {__version__}, this scan mloops {version}")
    return LocalExecutor(jobs=1).run(units, limits, None)


class RayExecutor:
    def __init__(self, address: str | None) -> None:
        self.address = address  # ray://HOST:PORT, or None for RAY_ADDRESS or a cluster of this machine

    def run(self, units: list[Unit], limits: Limits, cache: ResultCache | None) -> list[FileResult]:
        if not units:
            return []
        ray = _connect(self.address)
        task = ray.remote(max_retries=RETRIES, retry_exceptions=False, num_cpus=1)(scan_batch)
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        size = max(1, min(MAX_BATCH, -(-len(units) // (cpus * BATCHES_PER_CPU))))
        batches = [units[start : start + size] for start in range(0, len(units), size)]
        pending = [task.remote(batch, limits, __version__) for batch in batches]
        results = [result for batch, ref in zip(batches, pending, strict=True) for result in _gather(ray, ref, batch)]
        if cache:  # a remote object is kept under the version it had when the worker read it
            for unit, result in zip(units, results, strict=True):
                if isinstance(unit, Listed) and isinstance(result, RemoteResult):
                    cache.put_remote(unit.uri, result)
        return results


def _gather(ray: Any, ref: Any, batch: list[Unit]) -> list[FileResult]:
    try:
        found: list[FileResult] = ray.get(ref)
        return found
    except ray.exceptions.RayTaskError as error:
        if isinstance(error.cause, WrongVersion):
            raise UsageError(str(error.cause)) from None
        reason = f"{type(error.cause).__name__}: {error.cause}"
    except ray.exceptions.RayError as error:  # the worker died more often than Ray retries
        reason = f"{type(error).__name__} after {RETRIES} retries"
    return [_failed(unit, reason) for unit in batch]


def _failed(unit: Unit, reason: str) -> FileResult:
    where = unit.uri if isinstance(unit, Listed) else unit[0]
    finding = rules.INTERNAL_ERROR.finding(Location(where), f"the Ray task scanning it failed ({reason})")
    return FileResult(where, [finding])


def _connect(address: str | None) -> Any:
    try:
        ray = importlib.import_module("ray")
    except ImportError:
        raise UsageError(
            "--executor ray needs Ray on this machine and the workers: pip install 'ray[default]'"
        ) from None
    if not ray.is_initialized():
        joining = address or os.environ.get("RAY_ADDRESS")
        if joining and joining != "auto":
            _reachable(joining)
        _start_session(ray, joining)
    return ray


def _start_session(ray: Any, joining: str | None) -> None:
    """``ray.init``, asked again when Ray Client's server for this session died as it started: its proxy forks
    that server while gRPC threads run, and the child sometimes dies (ray-project/ray#63202); the next session
    gets a new server."""
    for attempt in range(1, SESSION_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():  # Ray's advice on a failed connection repeats the error below
                warnings.simplefilter("ignore")
                ray.init(address=joining or None, logging_level="ERROR", log_to_driver=False)
            return
        except (ConnectionError, RuntimeError, ValueError) as error:
            died = "Initialization failure from server" in str(error)
            if not died or attempt == SESSION_ATTEMPTS:
                raise UsageError(f"cannot reach the Ray cluster {joining or 'of this machine'}: {error}") from None
            ray.shutdown()
            time.sleep(SESSION_PAUSE)


def _reachable(address: str) -> None:
    """Ray waits minutes for a cluster address nothing answers at; one connection attempt says so at once."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot reach the Ray cluster {address}: {error}") from None
