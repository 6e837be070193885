"""tar archives, including the oldest PyTorch checkpoint layout (storages, tensors, pickle).

Members are windows on the archive; nothing is extracted. Names with ``..`` or an
absolute path are reported, since extracting them writes outside the target folder, and so
are symbolic and hard links whose target lies outside it, and members written through such a
link (``link -> ../../etc``, then ``link/cron.d/job``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from .. import registry, rules
from ..context import Item, ScanContext
from ..limits import LimitExceeded
from ..models import torch_legacy_tar
from ..registry import Format
from ..streams import Stream, Window, random_access
from . import escapes_extraction

if TYPE_CHECKING:
    import tarfile

MAX_LINK_HOPS = 40  # Linux gives up (ELOOP) after 40 symbolic links in one path
MAX_PATH_PARTS = 4096  # components looked at while resolving one path; a longer walk cannot be extracted
MAX_RESOLVE_STEPS = 2_000_000  # components looked at for a whole archive, whatever its links do


def scan(ctx: ScanContext, item: Item) -> None:
    # Read in order, a tar of unknown size (the content of a .tar.gz) needs no copy: one step back
    # to the first member, and short ones inside each member, which the stream serves itself.
    with random_access(item.stream, item.size, ctx.budget, try_unknown=False) as stream:
        _scan_archive(ctx, item, stream)


def _scan_archive(ctx: ScanContext, item: Item, stream: Stream) -> None:
    import tarfile  # imported on the first tar: most scans never meet one

    members = []
    stream.seek(0)  # TarFile starts reading where the stream stands
    try:
        with tarfile.TarFile(fileobj=stream, mode="r") as archive:  # type: ignore[arg-type]
            for member in archive:
                members.append(member)
                if len(members) > ctx.limits.max_members:
                    raise LimitExceeded(f"more than {ctx.limits.max_members} archive members")
                ctx.budget.check_time()
    except tarfile.TarError as exc:
        ctx.report(
            rules.MALFORMED_CONTAINER.finding(item.location, f"tar archive damaged after {len(members)} members: {exc}")
        )
    names = [member.name for member in members if member.isfile()]
    label = (registry.matching_layouts("tar", names) or ("tar",))[0]
    torch_layout = label == torch_legacy_tar.LABEL
    ctx.record(item, label)
    _check_extraction_paths(ctx, item, members)
    for member in members:
        ctx.budget.check_time()
        if not member.isfile():
            continue
        child = item.child(Window(stream, member.offset_data, member.size), member.name, member.size, None, (label,))
        if torch_layout and member.name in ("storages", "tensors"):
            torch_legacy_tar.analyze_member(ctx, child, member.name)
        else:
            ctx.scan(child)


# --------------------------------------------------------------------------- where extraction writes


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


class Resolved(NamedTuple):
    escapes: bool
    through: tuple[str, ...]  # the archive's symbolic links followed on the way
    steps: int = 0  # path components looked at


def resolve(path: str, symlinks: dict[str, str], follow_last: bool) -> Resolved:
    """Where ``path`` (relative to the target folder) lands once the symbolic links extracted so far
    (normalized name -> link target) are followed, as the file system would; ``escapes`` when it
    leaves the target folder. A path that loops or grows without end cannot be extracted at all."""
    if path.startswith("/"):
        return Resolved(True, ())
    pending = _parts(path)[::-1]  # a stack: the next component last
    resolved: list[str] = []
    through: list[str] = []
    steps = 0
    while pending:
        steps += 1
        if steps > MAX_PATH_PARTS or len(through) > MAX_LINK_HOPS:
            return Resolved(False, tuple(through), steps)
        part = pending.pop()
        if part == "..":
            if not resolved:
                return Resolved(True, tuple(through), steps)
            resolved.pop()
            continue
        name = "/".join((*resolved, part))
        target = symlinks.get(name)
        if target is None or (not pending and not follow_last):
            resolved.append(part)
            continue
        through.append(name)
        if target.startswith("/"):
            return Resolved(True, tuple(through), steps)
        pending.extend(_parts(target)[::-1])  # relative to the link's folder: `resolved` as it stands
    return Resolved(False, tuple(through), steps)


def _check_extraction_paths(ctx: ScanContext, item: Item, members: list[tarfile.TarInfo]) -> None:
    """Replay extraction in archive order: each member's path is resolved through the symbolic links
    of the members before it, as extracting them one by one would."""
    symlinks: dict[str, str] = {}
    steps = 0
    for index, member in enumerate(members):
        if not index & 0xFF:
            ctx.budget.check_time()
        problem, spent = _escape(member, symlinks)
        steps += spent
        if steps > MAX_RESOLVE_STEPS:
            raise LimitExceeded(f"symbolic links that take more than {MAX_RESOLVE_STEPS} steps to follow")
        if problem is not None:
            ctx.report(rules.PATH_TRAVERSAL.finding(item.location.child(member.name), problem))
        name = "/".join(_parts(member.name))
        if member.issym():
            symlinks[name] = member.linkname  # relative to the link's own folder, as the file system reads it
        else:
            symlinks.pop(name, None)


def _escape(member: tarfile.TarInfo, symlinks: dict[str, str]) -> tuple[str | None, int]:
    """Why extracting ``member`` reaches outside the target folder (or None), and the resolution steps spent."""
    if escapes_extraction(member.name):
        return f"member {member.name!r} is written outside the target folder", 0
    # A regular file is opened for writing, which follows a link already at its own name.
    placed = resolve(member.name, symlinks, follow_last=member.isfile())
    if placed.escapes:
        via = ", ".join(f"{name!r} -> {symlinks[name]!r}" for name in placed.through)
        message = f"member {member.name!r} is written outside the target folder through the symbolic link(s) {via}"
        return message, placed.steps
    if member.issym():
        folder = "/".join(_parts(member.name)[:-1])
        target = f"{folder}/{member.linkname}" if folder and not member.linkname.startswith("/") else member.linkname
        pointed = resolve(target, symlinks, follow_last=True)
        if pointed.escapes:
            message = f"symbolic link {member.name!r} points to {member.linkname!r}, outside the target folder"
            return message, placed.steps + pointed.steps
        return None, placed.steps + pointed.steps
    if member.islnk():
        pointed = resolve(member.linkname, symlinks, follow_last=True)
        if pointed.escapes:
            message = f"hard link {member.name!r} points to {member.linkname!r}, outside the target folder"
            return message, placed.steps + pointed.steps
        return None, placed.steps + pointed.steps
    return None, placed.steps


def _is_tar(head: bytes) -> bool:
    if len(head) < 512:
        return False
    if head[257:262] == b"ustar":
        return True
    # Old V7 archives have no magic: trust a valid header checksum over a printable name.
    try:
        stored = int(head[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    computed = sum(head[:148]) + 8 * 32 + sum(head[156:512])
    name = head[:100].split(b"\x00", 1)[0]
    return stored == computed and bool(name) and all(32 <= c < 127 for c in name)


FORMATS = (Format("tar", "archive", "tar archive", handler=scan, detect=lambda head, name: _is_tar(head), order=230),)
