"""Loading a pickle-family model safely: scan it first, refuse it when the scan finds anything at or above the
threshold, and load what passed with an unpickler that resolves only the names the scanner's allowlist
admits (the same data files: one source of truth). The scan refuses before a single name is resolved; the
restricted unpickler is the second wall, for anything the file gained between scan and load.

The library that wrote the file (torch, joblib, NumPy) does the loading, so it must be installed; mloops
itself never imports them for a scan.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import tempfile
import zipfile
from collections.abc import Iterator
from types import SimpleNamespace
from typing import IO, Any

from ..core import Finding, Severity
from ..limits import Limits
from ..picklevm.policy import BUILD_ONLY, SAFE, default_policy
from ..scan import scan_file

Source = str | os.PathLike[str] | IO[bytes]
TORCH = frozenset({"pytorch-zip", "pytorch-legacy"})


class UnsafeModelError(pickle.UnpicklingError):
    """The file was refused: ``findings`` are the scan's findings at or above the threshold (empty when the
    restricted unpickler refused a name the scan did not see)."""

    def __init__(self, message: str, findings: list[Finding] | None = None) -> None:
        super().__init__(message)
        self.findings = findings or []


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves a global only when the allowlist admits it (callable or data class); anything else stops the
    load before it is imported."""

    def find_class(self, module: str, name: str) -> Any:
        admit(module, name)
        return super().find_class(module, name)


def admit(module: str, name: str) -> None:
    policy = default_policy()
    verdict = policy.judge(policy.canonical(module, name))
    if verdict.status not in (SAFE, BUILD_ONLY):
        raise UnsafeModelError(f"refused {module}.{name}: not on the allowlist of mloops ({verdict.status.lower()})")


def safe_load(source: Source, *, fail_on: Severity = Severity.HIGH) -> Any:
    """Load a raw pickle, a PyTorch checkpoint (ZIP or legacy), a joblib file or a NumPy ``.npy``/``.npz``
    file, after a scan found nothing at or above ``fail_on``; raise UnsafeModelError otherwise. An ``.npz``
    comes back as a dict of its arrays."""
    with opened_for_scan(source) as (handle, path):
        formats = scan_or_refuse(path, fail_on)
        if formats & TORCH:
            return _torch_load(handle)
        if "joblib" in formats or compressions(formats):  # joblib writes and reads every compression it sniffs
            return _joblib_load(handle, path)
        if "npy" in formats or "numpy-object" in formats:
            return _numpy_load(handle)
        return RestrictedUnpickler(handle).load()


def safe_torch_load(source: Source, map_location: Any = None, *, fail_on: Severity = Severity.HIGH) -> Any:
    """``torch.load`` of a checkpoint a scan passed, with the restricted unpickler instead of pickle."""
    with opened_for_scan(source) as (handle, path):
        scan_or_refuse(path, fail_on)
        return _torch_load(handle, map_location)


@contextlib.contextmanager
def opened_for_scan(source: Source) -> Iterator[tuple[IO[bytes], str]]:
    """The file to load and a path the scan reads: the open file's own path, so that a rename between scan
    and load changes neither; a file object is copied to a temporary file for the scan."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as handle:
            yield handle, f"/proc/self/fd/{handle.fileno()}" if os.path.isdir("/proc/self/fd") else os.fspath(source)
        return
    data = source.read()
    with tempfile.NamedTemporaryFile(prefix="mloops-safe-load-") as copy:
        copy.write(data)
        copy.flush()
        yield io.BytesIO(data), copy.name


def scan_or_refuse(path: str, fail_on: Severity) -> frozenset[str]:
    """The formats of a file the scan passed; UnsafeModelError naming its worst findings otherwise."""
    result = scan_file(path, Limits())
    refused = sorted((f for f in result.findings if f.severity >= fail_on), key=lambda f: -f.severity)
    if refused:
        first = refused[0]
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        where = str(first.location).removeprefix(path)
        raise UnsafeModelError(
            f"refused to load: {first.rule.id} {first.rule.name} ({first.severity.label}) "
            f"{where.lstrip('!') or 'in the file'}: {first.message}{more}",
            refused,
        )
    return frozenset(asset.format for asset in result.assets)


def compressions(formats: frozenset[str]) -> list[str]:
    """The compression layers (the catalog's wrappers) among a scan's formats."""
    from ..registry import catalog

    return [label for label in formats if catalog()[label].kind == "wrapper"]


def _torch_load(handle: IO[bytes], map_location: Any = None) -> Any:
    import torch

    module = SimpleNamespace(
        Unpickler=RestrictedUnpickler,
        load=lambda file, **kwargs: RestrictedUnpickler(file, **kwargs).load(),
        __name__="mloops.restricted_pickle",
    )
    return torch.load(handle, map_location=map_location, weights_only=False, pickle_module=module)


def _joblib_load(handle: IO[bytes], path: str) -> Any:
    from joblib.numpy_pickle import NumpyUnpickler
    from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

    class Restricted(NumpyUnpickler):
        def find_class(self, module: str, name: str) -> Any:
            admit(module, name)
            return super().find_class(module, name)

    with _validate_fileobject_and_memmap(handle, path, None) as (stream, _):
        if isinstance(stream, str):
            raise UnsafeModelError(f"{path}: a joblib file older than joblib 0.10; not loaded")
        return Restricted(path, stream, True).load()


def _numpy_load(handle: IO[bytes]) -> Any:
    if handle.read(6) != b"\x93NUMPY":
        handle.seek(0)
        with zipfile.ZipFile(handle) as archive:
            return {
                name.removesuffix(".npy"): _npy(io.BytesIO(archive.read(name)))
                for name in archive.namelist()
                if name.endswith(".npy")
            }
    handle.seek(0)
    return _npy(handle)


def _npy(stream: IO[bytes]) -> Any:
    import numpy

    npy = numpy.lib.format
    major, _ = npy.read_magic(stream)
    # version 3 differs from 2 only in the header's text encoding (UTF-8 field names)
    _, _, dtype = (npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0)(stream)
    if dtype.hasobject:
        return RestrictedUnpickler(stream).load()
    stream.seek(0)
    return numpy.lib.format.read_array(stream, allow_pickle=False)
