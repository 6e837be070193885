"""Where units are scanned: ``local`` (processes and threads of this machine, the default) or a Ray cluster
(``ray_cluster``). ``interface.py`` says what an executor does."""

from __future__ import annotations

from ..core import UsageError
from .interface import Executor
from .local import LocalExecutor

NAMES = "process, ray or ray://HOST:PORT"


def executor(name: str, jobs: int | None) -> Executor:
    """The executor ``--executor NAME`` names."""
    if name == "process":
        return LocalExecutor(jobs)
    if name == "ray" or name.startswith("ray://"):
        from .ray_cluster import RayExecutor  # Ray is imported only by scans that use it

        return RayExecutor(None if name == "ray" else name)
    raise UsageError(f"--executor {name}: expected {NAMES}")
