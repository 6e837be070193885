"""The result cache: a file (or remote object) scanned before, unchanged since, by the same mloops with the same
rules, allowlists and limits, is not read again.

A local file is known unchanged by its metadata (device, inode, size, modification and change times: the
change time moves on every write and cannot be set back by a user), a remote object by its ETag or revision
and the store its URI names (the endpoint variables of its source: the same ``models:/`` URI on another
tracking server is another object).
The key also holds a fingerprint of the installed package (every code and data file's size and modification
time), the limits and the file's layouts, so that any change to rules or allowlists misses. Entries are JSON
files named by the key's hash, written atomically; an unreadable or foreign entry is a miss, never a result.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from typing import Any

from . import __version__, registry
from .core import Asset, AttackClass, Capability, FileResult, Finding, Location, RemoteResult, Severity
from .limits import Limits
from .sources.remote import store_identity

PACKAGE = os.path.dirname(os.path.abspath(__file__))  # no pathlib: it costs every start


def default_folder() -> str:
    """``MLOOPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/mloops/results`` (``~/.cache`` by default)."""
    if os.environ.get("MLOOPS_CACHE_DIR"):
        return os.environ["MLOOPS_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mloops", "results")


class ResultCache:
    def __init__(self, folder: str, limits: Limits) -> None:
        self.folder = folder
        self.salt = f"{__version__}|{package_fingerprint()}|{tuple(limits)!r}"
        self.hits = 0

    def local_key(self, path: str, layouts: tuple[str, ...]) -> str | None:
        try:
            meta = os.stat(path)
        except OSError:
            return None  # the scan reports why
        facts = (os.path.abspath(path), meta.st_dev, meta.st_ino, meta.st_size, meta.st_mtime_ns, meta.st_ctime_ns)
        return self._key("file", repr(facts), repr(layouts))

    def remote_key(self, uri: str, version: str | None) -> str | None:
        if not version or version.startswith("W/"):  # a weak ETag does not promise the same bytes
            return None
        return self._key("remote", store_identity(uri), version)

    def put_remote(self, uri: str, result: RemoteResult) -> None:
        """Keep a remote object's result under the version the object had when it was read."""
        self.put(self.remote_key(uri, result.version), result)

    def get(self, key: str | None) -> FileResult | None:
        if key is None:
            return None
        try:
            with open(os.path.join(self.folder, key), encoding="utf-8") as handle:
                data = json.load(handle)
            result = _result_from(data)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        self.hits += 1
        return result

    def put(self, key: str | None, result: FileResult) -> None:
        if key is None or any(f.rule.operational for f in result.findings):  # a failed read is never kept
            return
        # Written whole under a name of this thread's own, then renamed into place.
        temporary = os.path.join(self.folder, f".{key}.{os.getpid()}.{threading.get_ident()}")
        try:
            os.makedirs(self.folder, exist_ok=True)
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(_result_to(result), handle)
            os.replace(temporary, os.path.join(self.folder, key))
        except OSError:
            return  # a cache that cannot be written only costs speed

    def _key(self, *parts: str) -> str:
        return hashlib.sha256("\0".join((self.salt, *parts)).encode("utf-8", "surrogatepass")).hexdigest()


@functools.cache
def package_fingerprint() -> str:
    """What the installed code, rules and allowlists are: each file's path, size and modification time."""
    facts = []
    for folder, names, files in os.walk(PACKAGE):
        names[:] = [name for name in names if name != "__pycache__"]  # compiled copies of what is listed
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name in files:
                    meta = entry.stat()
                    facts.append(f"{os.path.relpath(entry.path, PACKAGE)}|{meta.st_size}|{meta.st_mtime_ns}")
    return hashlib.sha256("\n".join(sorted(facts)).encode()).hexdigest()


def _result_to(result: FileResult) -> dict[str, Any]:
    remote = [result.size, result.version] if isinstance(result, RemoteResult) else None
    return {
        "path": result.path,
        "findings": [_finding_to(f) for f in result.findings],
        "assets": [[_location_to(a.location), a.format, a.size] for a in result.assets],
        "remote": remote,
    }


def _result_from(data: dict[str, Any]) -> FileResult:
    result = FileResult(data["path"]) if data["remote"] is None else RemoteResult(data["path"])
    if isinstance(result, RemoteResult):  # what this scan read of it is set by the scan
        result.size, result.version = data["remote"]
    result.findings = [_finding_from(f) for f in data["findings"]]
    result.assets = [Asset(_location_from(loc), fmt, size) for loc, fmt, size in data["assets"]]
    return result


def _finding_to(finding: Finding) -> list[Any]:
    surface = finding.surface.slug if finding.surface else None
    return [finding.rule.id, int(finding.severity), _location_to(finding.location), finding.message,
            finding.evidence, finding.capability.slug, surface, finding.suppressed]  # fmt: skip


def _finding_from(data: list[Any]) -> Finding:
    rule_id, severity, location, message, evidence, capability, surface, suppressed = data
    return Finding(
        _rules()[rule_id],
        Severity(severity),
        _location_from(location),
        message,
        {str(k): str(v) for k, v in evidence.items()},
        {c.slug: c for c in Capability}[capability],
        {a.slug: a for a in AttackClass}[surface] if surface else None,
        str(suppressed) if suppressed is not None else None,
    )


@functools.cache
def _rules() -> dict[str, Any]:
    return {rule.id: rule for rule in registry.all_rules()}


def _location_to(location: Location) -> list[Any]:
    return [location.path, list(location.members), location.offset]


def _location_from(data: list[Any]) -> Location:
    path, members, offset = data
    return Location(path, tuple(members), offset)
