"""The pipeline: files -> format sniffing -> sources and analyzers -> findings -> report."""

from __future__ import annotations

import os
import stat
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from . import executors, formats, registry, rules
from .context import Item, ScanContext
from .core import FileResult, Location, RemoteResult, Report, Severity, UsageError
from .datasets import dataset_folder
from .deployments import deployment_tree
from .executors.interface import Unit
from .limits import Limits
from .models.pickle_sniff import has_pickle_extension
from .picklevm.policy import default_policy
from .sniff import HEAD_BYTES, has_model_extension, non_model_content, sniff
from .sources import hf_cache
from .sources import zip as zip_archive
from .sources.remote import expand_remote, is_remote, known_schemes, open_remote
from .sources.remote.interface import Listed, RangeStream, RemoteError, RemoteObject

if TYPE_CHECKING:
    from .cache import ResultCache

GIT_LFS_POINTER = b"version https://git-lfs.github.com/spec/"
REMOTE_TIMEOUT = 30.0  # seconds per request to a remote store


def dispatch(ctx: ScanContext, item: Item) -> None:
    for layout in item.layouts:
        handler = registry.member_handler(layout, item.name)
        if handler is not None:
            handler(ctx, item)
            return
    item.stream.seek(0)
    head = item.stream.read(4)
    if head == zip_archive.LOCAL_SIG:
        labels = ["zip"]  # read nothing more here: members are reached through the central directory
    else:
        head += item.stream.read(HEAD_BYTES - len(head))
        labels = sniff(head, item.name)
        if "pickle" in labels or not labels:
            labels += _appended_zip(item)
    if not labels:
        _unidentified(ctx, item, head)
        return
    for label in labels:
        registry.handler(label)(ctx, item)


def _appended_zip(item: Item) -> list[str]:
    """A ZIP whose data does not start the file (prepended data, pickle/ZIP polyglots)."""
    if item.size is None or item.size < 22:
        return []
    return ["zip"] if zip_archive.has_archive_at_end(item.stream, item.size) else []


def _unidentified(ctx: ScanContext, item: Item, head: bytes) -> None:
    if head.startswith(GIT_LFS_POINTER) and has_model_extension(item.name):
        ctx.record(item, "git-lfs-pointer")
        message = "a Git LFS pointer, not the model: the model itself was not scanned (run git lfs pull)"
        ctx.report(rules.UNRECOGNIZED.finding(item.location, message, {"first_bytes": head[:16].hex()}))
        return
    evidence = {"first_bytes": head[:16].hex()}
    if item.name == "nested":
        message = "a payload handed to a deserializer, in no supported format"
    elif has_model_extension(item.name) or has_pickle_extension(item.name):
        kind = non_model_content(head)
        if kind is not None:  # an error page or an image saved under a model's name: no loader runs it
            ctx.record(item, "not-a-model")
            message = f"named like a model, but the content is {kind}: no model loader reads it"
            ctx.report(
                rules.UNRECOGNIZED.finding(item.location, message, {**evidence, "content": kind}, severity=Severity.LOW)
            )
            return
        if not has_model_extension(item.name):  # .bin, .model, .sav: names many other binaries use too
            ctx.record(item, "other")
            return
        message = "named like a model, but the content is no supported format"
    else:
        ctx.record(item, "other")
        return
    ctx.record(item, "unrecognized")
    ctx.report(rules.UNRECOGNIZED.finding(item.location, message, evidence))


def scan_file(path: str, limits: Limits, layouts: tuple[str, ...] = ()) -> FileResult:
    """Scan one file completely; never raises for problems with the file itself.

    ``layouts`` gives the file a role from its folder (a dataset root), as archive layouts do for members.
    """
    ctx = ScanContext(path, limits, default_policy(), dispatch)

    def scan() -> None:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            ctx.scan(Item(handle, Location(path), size, os.path.basename(path), 0, layouts))

    _guarded(ctx, scan)
    return ctx.result


def scan_remote(
    listed: Listed, limits: Limits, timeout: float = REMOTE_TIMEOUT, cache: ResultCache | None = None
) -> RemoteResult:
    """Scan one remote object where it is stored, reading only the byte ranges the analyzers ask for.

    With a cache, an object whose first request tells a version scanned before is not read further; a result
    is kept under the version the object had when it was read. (``scan_path`` looks up the version a listing
    gave before opening anything: the two meet when the object did not change in between.)"""
    ctx = ScanContext(listed.uri, limits, default_policy(), dispatch)
    opened: RemoteObject | None = None
    earlier: FileResult | None = None

    def scan() -> None:
        nonlocal opened, earlier
        opened = remote = open_remote(listed.uri, timeout)
        earlier = cache.get(cache.remote_key(listed.uri, remote.version)) if cache else None
        if earlier is None:
            ctx.scan(Item(RangeStream(remote), Location(listed.uri), remote.size, _object_name(listed.uri), 0))

    _guarded(ctx, scan)
    result = _remote_result(listed.uri, earlier or ctx.result, opened)
    if cache and earlier is None and opened is not None:  # no version, nothing kept
        cache.put_remote(listed.uri, result)
    return result


def _remote_result(uri: str, judged: FileResult, opened: RemoteObject | None) -> RemoteResult:
    result = RemoteResult(uri, judged.findings, judged.assets)
    if isinstance(judged, RemoteResult):
        result.size, result.version = judged.size, judged.version
    if opened is not None:
        result.size, result.version = opened.size, opened.version
        result.bytes_read, result.requests = opened.bytes_fetched, opened.requests
    return result


def _object_name(uri: str) -> str:
    """The last part of an object's path: what sniffing reads as its file name."""
    return uri.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def expand_targets(targets: list[str], timeout: float = REMOTE_TIMEOUT) -> tuple[list[Listed], list[FileResult]]:
    """The objects the remote targets name, and a result for each target that could not be listed."""
    objects: list[Listed] = []
    failed: list[FileResult] = []
    for target in targets:
        try:
            objects += expand_remote(target, timeout)
        except RemoteError as exc:
            failed.append(FileResult(target, [rules.UNREADABLE.finding(Location(target), str(exc))]))
    return objects, failed


def _guarded(ctx: ScanContext, scan: Callable[[], None]) -> None:
    """Run a whole-file scan; what goes wrong becomes a finding, never a pass, then the format note."""
    path = ctx.result.path
    try:
        scan()
    except RemoteError as exc:
        ctx.report(rules.UNREADABLE.finding(Location(path), str(exc)))
    except OSError as exc:
        ctx.report(rules.UNREADABLE.finding(Location(path), f"cannot read: {exc.strerror or exc}"))
    except RecursionError:
        ctx.report(rules.SCAN_LIMIT.finding(Location(path), "structure nested too deeply to analyze"))
    except Exception as exc:  # noqa: BLE001 - a crash must become a finding, never a pass
        where = traceback.extract_tb(exc.__traceback__)[-1]
        ctx.report(
            rules.INTERNAL_ERROR.finding(
                Location(path),
                f"{type(exc).__name__}: {exc}",
                {"at": f"{os.path.basename(where.filename)}:{where.lineno}"},
            )
        )
    _add_format_note(ctx.result)


def _add_format_note(result: FileResult) -> None:
    """One INFO note per file saying what its format can do, when nothing worse was found about that."""
    pickled = [asset for asset in result.assets if formats.info(asset.format).pickled]
    location = Location(result.path)
    if pickled:
        kinds = ", ".join(sorted({asset.format for asset in pickled}))
        message = f"contains {len(pickled)} pickle stream(s) ({kinds}); loading it executes code by design"
        result.findings.append(rules.PICKLE_FORMAT.finding(location, message))
        return
    by_kind: dict[str, set[str]] = {}
    for asset in result.assets:
        by_kind.setdefault(formats.info(asset.format).kind, set()).add(asset.format)
    if "code" in by_kind:
        names = ", ".join(sorted(by_kind["code"]))
        message = f"{names}: a format that can carry code or name callables by design"
        result.findings.append(rules.CODE_CAPABLE_FORMAT.finding(location, message))
    elif "safe" in by_kind and not result.findings:
        names = ", ".join(sorted(by_kind["safe"]))
        result.findings.append(rules.SAFE_FORMAT.finding(location, f"{names}: data-only format, structure valid"))


def collect_files(paths: Iterable[str], limits: Limits | None = None) -> tuple[list[str], list[FileResult]]:
    """Regular files under the given paths in a stable order, and results for folders that
    could not be listed or lie deeper than ``max_folder_depth``. Symlinked folders are not followed."""
    max_depth = (limits or Limits()).max_folder_depth
    files: list[str] = []
    unreadable: list[FileResult] = []
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            raise UsageError(f"{path}: {exc.strerror}") from None
        if stat.S_ISDIR(mode):
            files.extend(_walk(path, unreadable, max_depth))
        elif stat.S_ISREG(mode):
            files.append(path)
        else:
            raise UsageError(f"{path}: not a regular file or folder")
    return files, unreadable


def _walk(root: str, unreadable: list[FileResult], max_depth: int) -> Iterator[str]:
    """Files of a folder tree, top-down (a folder's files, then its subfolders, each in name order).

    Iterative, with an explicit stack: a tree deeper than the interpreter's recursion limit is
    hostile input like any other, and is reported once where it passes ``max_depth``."""
    pending = [(root, 0)]
    too_deep: list[str] = []
    while pending:
        folder, depth = pending.pop()
        listed = _list_folder(folder, unreadable)
        if listed is None:
            continue
        files, folders = listed
        yield from files
        if folders and depth >= max_depth:
            too_deep.append(folder)
            continue
        pending.extend((sub, depth + 1) for sub in reversed(folders))
    if too_deep:
        message = (
            f"folders nested deeper than {max_depth} levels below {root}; what lies below "
            f"{len(too_deep)} folder(s) at that depth was not scanned"
        )
        finding = rules.SCAN_LIMIT.finding(Location(too_deep[0]), message, {"first": too_deep[0]})
        unreadable.append(FileResult(too_deep[0], [finding]))


def _list_folder(folder: str, unreadable: list[FileResult]) -> tuple[list[str], list[str]] | None:
    """The regular files (symlinks to files included) and real subfolders of ``folder``, sorted."""
    files: list[str] = []
    folders: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                is_dir = _is_dir(entry)
                if is_dir and not entry.is_symlink():
                    folders.append(entry.path)
                elif not is_dir and _is_regular(entry.path):
                    files.append(entry.path)
    except OSError as error:
        finding = rules.UNREADABLE.finding(Location(folder), f"cannot list folder: {error.strerror}")
        unreadable.append(FileResult(folder, [finding]))
        return None
    return sorted(files), sorted(folders)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows symlinks: a link to a folder is neither walked nor scanned
    except OSError:
        return False


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True  # scan_file reports why it cannot be read


def scan_path(
    *paths: str,
    jobs: int | None = 1,
    limits: Limits | None = None,
    cache: ResultCache | None = None,
    executor: str = "process",
    exclude: Callable[[str], bool] | None = None,
) -> Report:
    """Scan files, folders and remote objects (``https://...``, ``s3://...``, ``models:/...``); the Python API
    behind ``mloops scan``.

    ``jobs=None`` uses every CPU when there are enough files to repay the worker start-up; ``executor`` names
    where the scanning runs (``process``, ``ray``, ``ray://HOST:PORT``). With ``cache``, what was scanned
    before and has not changed is not read again. Local files ``exclude`` matches are left out and counted.
    """
    limits = limits or Limits()
    started = time.monotonic()
    remote = [path for path in paths if is_remote(path)]
    for uri in remote:
        if not uri.lower().startswith(tuple(known_schemes())):
            raise UsageError(
                f"{uri}: mloops reads no remote store of this kind (it reads {', '.join(known_schemes())})"
            )
    runner = executors.executor(executor, jobs)
    files, unreadable = collect_files([path for path in paths if not is_remote(path)], limits)
    kept = [path for path in files if not exclude(path)] if exclude else files
    excluded, files = len(files) - len(kept), kept
    origins = hf_cache.hub_origins(files)
    skipped = hf_cache.scanned_as_snapshots(files, origins)
    files = [path for path in files if path not in skipped]
    datasets = dataset_folder.dataset_folders(files)
    layouts = _folder_layouts(files, datasets)
    if deployment_tree.auth_layer_files(files):  # the tree's manifests are judged together
        layouts = [(*layout, deployment_tree.LAYOUT) for layout in layouts]
    objects, unlisted = expand_targets(remote)
    units: list[Unit] = [*zip(files, layouts, strict=True), *objects]
    keys = [_cache_key(cache, unit) for unit in units] if cache else [None] * len(units)
    results: list[FileResult | None] = [cache.get(key) if cache else None for key in keys]
    todo = [index for index, result in enumerate(results) if result is None]
    for index, result in zip(todo, runner.run([units[i] for i in todo], limits, cache), strict=True):
        results[index] = result
        if cache and not isinstance(units[index], Listed):  # a remote object is kept under the version read
            cache.put(keys[index], result)
    scanned = [result for result in results if result is not None]
    for result in scanned[: len(files)]:
        result.origin = origins.get(result.path)
    report = Report(unreadable + scanned[: len(files)] + unlisted + scanned[len(files) :],
                    time.monotonic() - started, [folder.path for folder in datasets])  # fmt: skip
    report.excluded = excluded
    return report


def _cache_key(cache: ResultCache, unit: Unit) -> str | None:
    if isinstance(unit, Listed):
        return cache.remote_key(unit.uri, unit.version)
    return cache.local_key(*unit)


def _folder_layouts(files: list[str], datasets: list[dataset_folder.DatasetFolder]) -> list[tuple[str, ...]]:
    """Per file, the layouts its folder gives it: files directly in a dataset folder sit at its root."""
    roots = {folder.path for folder in datasets}
    return [(dataset_folder.LAYOUT,) if (os.path.dirname(path) or ".") in roots else () for path in files]
