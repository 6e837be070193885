"""Remote sources: objects scanned where they are stored, read by byte ranges and never downloaded whole.

``interface.py`` is what every remote source gives the scanner (an object with a size and a way to read a
range of it) and the stream the analyzers read it through; each kind of store is one module declaring the
URL prefixes it reads in ``SCHEMES`` and opening them with ``open_object(uri, timeout)`` (``http.py``), and
expanding a target that names many objects with ``expand(uri, timeout)`` into ``Listed`` objects. A module
whose URIs are relative to a configured store names the variables that configure it in ``STORE_VARIABLES``.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from types import ModuleType

from .interface import Listed, RemoteError, RemoteObject

# ``https://...``, ``models:/...``: a scheme of two letters at least (``C:/`` is a Windows drive).
_REMOTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")


def is_remote(target: str) -> bool:
    """Whether a scan target names a remote object rather than a local path (decided without importing the
    sources: every scan asks)."""
    return _REMOTE.match(target) is not None


def known_schemes() -> list[str]:
    return [scheme for module in _sources() for scheme in module.SCHEMES]


def expand_remote(uri: str, timeout: float) -> list[Listed]:
    """The objects a target names: itself, or every file of a model version, run, registry or prefix."""
    expand = getattr(_source_of(uri), "expand", None)
    return [Listed(uri)] if expand is None else list(expand(uri, timeout))


def store_identity(uri: str) -> str:
    """The object ``uri`` names, wherever its source's variables point (``models:/m/1/f`` on two tracking
    servers is two objects): what a cached result is kept under, besides the object's version."""
    module = _source_of(uri)
    settings = [f"{name}={os.environ.get(name, '')}" for name in getattr(module, "STORE_VARIABLES", ())]
    return "\0".join([uri, *settings])


def open_remote(uri: str, timeout: float) -> RemoteObject:
    """The object ``uri`` names, from the source module that declares its scheme."""
    found: RemoteObject = _source_of(uri).open_object(uri, timeout)
    return found


def _source_of(uri: str) -> ModuleType:
    for module in _sources():
        if uri.lower().startswith(module.SCHEMES):
            return module
    raise RemoteError(f"{uri}: no remote source reads this scheme (mloops reads {', '.join(known_schemes())})")


@functools.cache
def _sources() -> list[ModuleType]:
    from ... import registry

    return registry.package_modules(sys.modules[__name__], b"\nSCHEMES = ")
