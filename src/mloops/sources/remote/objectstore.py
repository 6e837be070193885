"""Object stores through fsspec: ``s3://BUCKET/PREFIX``, ``gs://BUCKET/PREFIX`` and ``az://CONTAINER/PREFIX``.

Each store's fsspec backend (s3fs, gcsfs, adlfs) is an optional install (``pip install 'mloops[s3]'``) and
brings its store's usual credential chain: for S3, botocore's (``AWS_*`` variables, ``~/.aws``, instance
roles; ``AWS_ENDPOINT_URL_S3`` names an S3-compatible server). Only listings, object metadata and ranged
GETs are sent. A listing gives every object's version (its ETag and the time of its last write), so that an
unchanged object is judged from the listing alone when its result is cached.
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from ...core import UsageError
from .interface import Listed, RemoteError

SCHEMES = ("s3://", "gs://", "az://")
# What decides which store a bucket name means (an S3-compatible server, an emulator, an Azure account).
STORE_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "STORAGE_EMULATOR_HOST", "AZURE_STORAGE_ACCOUNT_NAME")
BACKENDS = {"s3": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "az": ("adlfs", "azure")}  # scheme: module, extra
_SETTINGS = ("AWS_", "GOOGLE_", "AZURE_")  # the variables the backends read their credentials and endpoints from
MAX_OBJECTS = 100_000  # objects one prefix may expand to, like a registry walk
_MAKING = threading.Lock()


class StoreObject:
    """One object, read by ranged GETs; the version it had when opened is the one its result is kept under."""

    def __init__(self, uri: str, store: Any, info: dict[str, Any]) -> None:
        self.uri = uri
        self.store = store
        self.size = int(info.get("size") or 0)
        self.version = _version(info)
        self.head = b""
        self.bytes_fetched = 0
        self.requests = 1  # the metadata request that opened it

    def read_range(self, start: int, length: int, /) -> bytes:
        if length <= 0:
            return b""
        with _asking(self.uri):
            data: bytes = self.store.cat_file(self.uri, start=start, end=start + length)
        self.requests += 1
        self.bytes_fetched += len(data)
        if len(data) != length:
            raise RemoteError(f"{self.uri}: the store sent {len(data)} bytes for a range of {length}")
        return data


def expand(uri: str, timeout: float, endpoint: str | None = None) -> list[Listed]:
    """Every object under the prefix (the object itself when it names one), with its listed version; ``endpoint``
    names the S3-compatible server when another tool's setting chose it (MLflow's)."""
    store = _store(uri, timeout, endpoint)
    with _asking(uri):
        found = store.find(uri, detail=True, maxdepth=None)
        if not found and store.isfile(uri):
            found = {uri: store.info(uri)}
    if not found:
        raise RemoteError(f"{uri}: no object under this prefix")
    if len(found) > MAX_OBJECTS:
        raise RemoteError(f"{uri}: more than {MAX_OBJECTS} objects; scan a narrower prefix")
    scheme = uri.split("://", 1)[0]
    return [
        Listed(f"{scheme}://{path.removeprefix(f'{scheme}://')}", _version(info))
        for path, info in sorted(found.items())
        if info.get("type") != "directory"
    ]


def open_object(uri: str, timeout: float, endpoint: str | None = None) -> StoreObject:
    store = _store(uri, timeout, endpoint)
    with _asking(uri):
        info = store.info(uri)
    if info.get("type") == "directory":
        raise RemoteError(f"{uri}: a prefix, not an object")
    return StoreObject(uri, store, info)


def _store(uri: str, timeout: float, endpoint: str | None) -> Any:
    scheme = uri.split("://", 1)[0].lower()
    module, extra = BACKENDS[scheme]
    try:
        importlib.import_module(module)
        fsspec = importlib.import_module("fsspec")
    except ImportError:
        raise UsageError(f"{uri}: reading {scheme}:// needs {module}: pip install 'mloops[{extra}]'") from None
    settings = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(_SETTINGS)))
    with _MAKING:  # threads listing or reading at once would each make a client (half a second each)
        return _filesystem(fsspec, scheme, timeout, settings, endpoint)


@functools.cache
def _filesystem(
    fsspec: Any, scheme: str, timeout: float, settings: tuple[tuple[str, str], ...], endpoint: str | None
) -> Any:
    """One client per store and credential settings (``settings``: the environment it was made with)."""
    # No listing cache: a listing seen earlier would vouch for objects rewritten since.
    options: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False}
    if scheme == "s3":  # botocore's own timeouts; its retries honour S3's SlowDown answers
        options["config_kwargs"] = {"connect_timeout": timeout, "read_timeout": timeout, "retries": {"max_attempts": 4}}
        if endpoint:
            options["endpoint_url"] = endpoint
    return fsspec.filesystem(scheme, **options)


def _version(info: dict[str, Any]) -> str | None:
    """What fixes an object's content, as its listing and its metadata both tell it: GCS's generation, else the
    ETag with the second of the last write. An S3 ETag is often the content's MD5, which whoever can write the
    bucket can collide; a rewrite moves the time, so a colliding object put in place later is read again."""
    if info.get("generation"):
        return f"generation {info['generation']}"
    tag, written = info.get("ETag") or info.get("etag"), info.get("LastModified") or info.get("last_modified")
    if not tag or not written:
        return None
    second = int(written.timestamp()) if isinstance(written, datetime) else str(written)
    return f"{str(tag).strip(chr(34))} {second}"


@contextmanager
def _asking(uri: str) -> Iterator[None]:
    """Whatever a backend raises while asking the store about ``uri`` becomes one line (see _explain)."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - backends raise their HTTP libraries' own error types
        raise RemoteError(f"{uri}: {_explain(error)}") from None


def _explain(error: Exception) -> str:
    """One line for any failure of a backend: they raise OSErrors for the store's answers, and their HTTP
    libraries' own error types (botocore's, aiohttp's, google-auth's) for the rest."""
    if isinstance(error, FileNotFoundError):
        return "not found"
    if isinstance(error, PermissionError):
        return f"access denied; check the store's credentials ({error})"
    return " ".join(str(error).split())[:300] or type(error).__name__
