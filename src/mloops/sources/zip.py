"""ZIP archives (PyTorch checkpoints, .npz, TorchScript, plain zips), read as leniently as PyTorch.

PyTorch's reader ignores CRCs and the local header's file name and flags, and finds
members through the central directory. Python's zipfile refuses all of those, which is
how several published scanner bypasses work. This reader parses the structures itself,
scans every member whatever its headers claim, and reports the contradictions.

Tensor storages (``<archive>/data/<n>``) are never read: only the central directory and
the other members are, so scanning time does not depend on the size of the weights.
"""

from __future__ import annotations

import lzma
import re
import struct
import zlib
from typing import NamedTuple

from .. import registry, rules
from ..context import Item, ScanContext
from ..core import Location
from ..limits import LimitExceeded, MiB
from ..registry import Format
from ..streams import Decompressed, Stream, Window, random_access
from . import escapes_extraction

EOCD_SIG = b"PK\x05\x06"
CD_SIG = b"PK\x01\x02"
LOCAL_SIG = b"PK\x03\x04"
ZIP64_LOCATOR_SIG = b"PK\x06\x07"
ZIP64_EOCD_SIG = b"PK\x06\x06"
TAIL_BYTES = 65535 + 22  # the end record plus the longest possible comment
CRC_CHECK_MAX = 16 * MiB  # members up to this size are re-read to verify their CRC
MAX_DIRECTORY_BYTES = 128 * MiB  # 200,000 members with 600-byte names and extras; read into memory
# Encryption, patched data, strong encryption: Python's zipfile refuses members with these.
REFUSED_FLAGS = 0x01 | 0x20 | 0x40

_STORAGE = re.compile(r"^(data|constants)/\d+$")


class EndRecord(NamedTuple):
    offset: int  # absolute offset of the end-of-central-directory record
    entries: int
    cd_size: int
    cd_offset: int
    zip64_locator: int | None  # absolute offset of the ZIP64 locator, when the record defers to it


class Entry:
    """One archive member, from the central directory and, once read, its local header."""

    def __init__(
        self,
        name: str,
        flags: int,
        method: int,
        crc: int,
        csize: int | None,
        usize: int,
        header_offset: int,
        data_offset: int = -1,
        local_name: str | None = None,
    ) -> None:
        self.name = name
        self.flags = flags
        self.method = method
        self.crc = crc
        self.csize = csize  # None: unknown (local header walk with a data descriptor)
        self.usize = usize
        self.header_offset = header_offset
        self.data_offset = data_offset
        self.local_name = local_name


def find_end_record(tail: bytes, size: int) -> EndRecord | None:
    """The last plausible end-of-central-directory record in the file's tail."""
    tail_start = size - len(tail)
    index = tail.rfind(EOCD_SIG)
    while index >= 0:
        if index + 22 <= len(tail):
            _, _, _, _, entries, cd_size, cd_offset, _ = struct.unpack("<4sHHHHIIH", tail[index : index + 22])
            absolute = tail_start + index
            locator = absolute - 20
            sizes_deferred = 0xFFFFFFFF in (cd_size, cd_offset)
            has_locator = (
                locator >= tail_start and tail[locator - tail_start : locator - tail_start + 4] == ZIP64_LOCATOR_SIG
            )
            # 65535 entries defers to ZIP64 when a locator is there; without one it is a plain count.
            if (sizes_deferred or entries == 0xFFFF) and has_locator:
                return EndRecord(absolute, entries, cd_size, cd_offset, locator)
            if not sizes_deferred and cd_size <= absolute:
                return EndRecord(absolute, entries, cd_size, cd_offset, None)
        index = tail.rfind(EOCD_SIG, 0, index)
    return None


def read_end_record(stream: Stream, size: int) -> EndRecord | None:
    """The end record, reading only its 22 bytes when the archive has no comment (as torch writes)."""
    for length in (22, TAIL_BYTES):
        stream.seek(max(0, size - length))
        end = find_end_record(stream.read(length), size)
        if end is not None:
            return end
    return None


def has_archive_at_end(stream: Stream, size: int) -> bool:
    """True when the file ends with a ZIP whose central directory really is where it claims."""
    end = read_end_record(stream, size)
    return end is not None and end.entries > 0 and _directory_is_there(stream, end)


def _resolve_zip64(stream: Stream, end: EndRecord) -> EndRecord:
    """The ZIP64 end record's figures; its offset is where the central directory ends.

    The locator's offset counts from the start of the archive: with data before the archive
    (archives written back to back), the record sits just before the locator instead."""
    if end.zip64_locator is None:
        return end
    stream.seek(end.zip64_locator)
    locator = stream.read(20)
    record_offset = struct.unpack("<4sIQI", locator)[2]
    for start in (record_offset, end.zip64_locator - 56):
        stream.seek(start)
        record = stream.read(56)
        if record[:4] == ZIP64_EOCD_SIG:
            entries, cd_size, cd_offset = struct.unpack("<QQQ", record[32:56])
            return EndRecord(start, entries, cd_size, cd_offset, None)
    raise ValueError("ZIP64 end record not found where its locator points")


def _directory_end(stream: Stream, end: EndRecord) -> int:
    """Where the central directory ends: at the end record, or at the ZIP64 end record that PyTorch
    writes before it even when the plain record's figures fit (a locator then sits between them)."""
    if end.offset >= 76:
        stream.seek(end.offset - 20)
        if stream.read(4) == ZIP64_LOCATOR_SIG:
            stream.seek(end.offset - 76)
            if stream.read(4) == ZIP64_EOCD_SIG:
                return end.offset - 76
    return end.offset


def read_central_directory(stream: Stream, end: EndRecord, max_members: int) -> tuple[list[Entry], list[str]]:
    """The members the directory lists, with absolute offsets, and what contradicts itself.

    Offsets in a ZIP count from where the archive starts; an archive after other data (a
    prefix, or other archives written before it) is found by where its directory really is."""
    problems: list[str] = []
    end = _resolve_zip64(stream, end)
    if end.cd_size > MAX_DIRECTORY_BYTES:
        raise LimitExceeded(f"central directory of {end.cd_size} bytes, more than {MAX_DIRECTORY_BYTES} read")
    shift = archive_start(stream, end)
    stream.seek(end.cd_offset + shift)
    directory = stream.read(end.cd_size)
    if not directory.startswith(CD_SIG) and end.entries:
        raise ValueError("central directory not found")
    entries = []
    pos = 0
    while pos + 46 <= len(directory) and directory[pos : pos + 4] == CD_SIG:
        fields = struct.unpack("<4sHHHHHHIIIHHHHHII", directory[pos : pos + 46])
        flags, method, crc, csize, usize = fields[3], fields[4], fields[7], fields[8], fields[9]
        name_len, extra_len, comment_len, header_offset = fields[10], fields[11], fields[12], fields[16]
        raw_name = directory[pos + 46 : pos + 46 + name_len]
        extra = directory[pos + 46 + name_len : pos + 46 + name_len + extra_len]
        usize, csize, header_offset = _zip64_sizes(extra, usize, csize, header_offset)
        entries.append(Entry(_decode_name(raw_name, flags), flags, method, crc, csize, usize, header_offset + shift))
        if len(entries) > max_members:
            raise LimitExceeded(f"more than {max_members} archive members")
        pos += 46 + name_len + extra_len + comment_len
    if end.entries not in (len(entries), 0xFFFF):
        problems.append(f"end record announces {end.entries} members, central directory holds {len(entries)}")
    return entries, problems


def _zip64_sizes(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack("<HH", extra[pos : pos + 4])
        if tag == 0x0001:
            values = extra[pos + 4 : pos + 4 + length]
            cursor = 0
            if usize == 0xFFFFFFFF and cursor + 8 <= len(values):
                usize = struct.unpack("<Q", values[cursor : cursor + 8])[0]
                cursor += 8
            if csize == 0xFFFFFFFF and cursor + 8 <= len(values):
                csize = struct.unpack("<Q", values[cursor : cursor + 8])[0]
                cursor += 8
            if offset == 0xFFFFFFFF and cursor + 8 <= len(values):
                offset = struct.unpack("<Q", values[cursor : cursor + 8])[0]
            break
        pos += 4 + length
    return usize, csize, offset


def _decode_name(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8", "replace") if flags & 0x800 else raw.decode("cp437")


def _read_local_header(stream: Stream, entry: Entry) -> None:
    stream.seek(entry.header_offset)
    header = stream.read(30)
    if len(header) < 30 or header[:4] != LOCAL_SIG:
        raise ValueError(f"no local header at byte {entry.header_offset}")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    entry.local_name = _decode_name(stream.read(name_len), struct.unpack("<H", header[6:8])[0])
    entry.data_offset = entry.header_offset + 30 + name_len + extra_len


def walk_local_headers(stream: Stream, size: int, max_members: int) -> list[Entry]:
    """Members found by walking local headers from the start, for archives without a usable directory."""
    entries: list[Entry] = []
    pos = 0
    while pos + 30 <= size:
        stream.seek(pos)
        header = stream.read(30)
        if header[:4] != LOCAL_SIG:
            break
        _, _, flags, method, _, _, crc, csize, usize, name_len, extra_len = struct.unpack("<4sHHHHHIIIHH", header)
        name = _decode_name(stream.read(name_len), flags)
        entry = Entry(name, flags, method, crc, csize, usize, pos, pos + 30 + name_len + extra_len, name)
        if flags & 0x08 and csize == 0:
            entry.csize = None  # sizes follow the data; only a self-terminating stream can be read
            entries.append(entry)
            break
        entries.append(entry)
        if len(entries) > max_members:
            raise LimitExceeded(f"more than {max_members} archive members")
        pos = entry.data_offset + csize
    return entries


def open_member(stream: Stream, entry: Entry, archive_size: int, ctx: ScanContext) -> Stream:
    length = entry.csize if entry.csize is not None else archive_size - entry.data_offset
    raw = Window(stream, entry.data_offset, length)
    if entry.method == 0:
        return raw
    if entry.method == 8:
        return Decompressed(raw, "deflate", ctx.budget)
    if entry.method == 12:
        return Decompressed(raw, "bz2", ctx.budget)
    if entry.method == 14:
        return _lzma_member(raw, length, ctx)
    raise ValueError(f"compression method {entry.method} is not supported")


def _lzma_member(raw: Window, length: int, ctx: ScanContext) -> Stream:
    header = raw.read(4)
    props_size = struct.unpack("<H", header[2:4])[0]
    props = raw.read(props_size)
    body = Window(raw, 4 + props_size, length - 4 - props_size)
    filters = [lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)]  # type: ignore[attr-defined]
    return Decompressed(body, "lzma", ctx.budget, lambda: lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=filters))


def _storage_prefixes(entries: list[Entry]) -> set[str]:
    """Archive folders laid out like torch.save/TorchScript: tensor bytes there are never unpickled."""
    prefixes = set()
    for entry in entries:
        for marker in ("data.pkl", "constants.pkl"):
            if entry.name == marker or entry.name.endswith("/" + marker):
                prefixes.add(entry.name[: -len(marker)])
    return prefixes


def _is_storage(name: str | None, prefixes: set[str]) -> bool:
    if name is None:
        return False
    return any(name.startswith(prefix) and _STORAGE.match(name[len(prefix) :]) for prefix in prefixes)


def scan(ctx: ScanContext, item: Item) -> None:
    with random_access(item.stream, item.size, ctx.budget) as stream:
        _scan_archive(ctx, item, stream)


def _scan_archive(ctx: ScanContext, item: Item, stream: Stream) -> None:
    size = item.size if item.size is not None else stream.seek(0, 2)
    start = _scan_archive_ending_at(ctx, item, stream, size)
    _scan_earlier_archives(ctx, item, stream, start)


def _scan_earlier_archives(ctx: ScanContext, item: Item, stream: Stream, start: int) -> None:
    """Whatever precedes the archive: further archives written back to back (PyTorch's distributed
    checkpoints write one torch.save archive per item into one .distcp file), or other content.
    Every archive is scanned: a loader given offsets reads any of them."""
    while start > 0:
        ctx.budget.check_time()
        earlier = Window(stream, 0, start)
        end = read_end_record(earlier, start)
        if end is None or not _directory_is_there(earlier, end):
            message = f"ZIP structure: {start} bytes precede the archive"
            ctx.report(rules.CONTAINER_ANOMALY.finding(item.location, message, {"prepended_bytes": str(start)}))
            earlier.seek(0)
            if earlier.read(4) == LOCAL_SIG:  # an archive without its directory: walked by its headers
                ctx.scan(item.child(earlier, f"<bytes 0-{start} before the archive>", start, "prepended"))
            return  # other content at the start was sniffed with the item itself (pickle/ZIP polyglots)
        try:
            first = archive_start(earlier, end)
        except (ValueError, struct.error):
            first = 0
        window = Window(stream, first, start - first)
        ctx.scan(item.child(window, f"<archive at byte {first}>", start - first, item.name))
        start = first


def _directory_is_there(stream: Stream, end: EndRecord) -> bool:
    try:
        end = _resolve_zip64(stream, end)
    except (ValueError, struct.error):
        return False
    for start in (end.cd_offset, _directory_end(stream, end) - end.cd_size):
        stream.seek(start)
        if stream.read(4) == CD_SIG:
            return True
    return not end.entries


def archive_start(stream: Stream, end: EndRecord) -> int:
    """Where an archive ending at ``end`` starts: offset 0 of its own offsets.

    The directory right before the end record is the archive's (as Python's zipfile finds it):
    with archives written back to back, the recorded offset alone points into an earlier one."""
    end = _resolve_zip64(stream, end)
    located = _directory_end(stream, end) - end.cd_size
    stream.seek(located)
    if located >= end.cd_offset and stream.read(4) == CD_SIG:
        return located - end.cd_offset
    return 0


def _scan_archive_ending_at(ctx: ScanContext, item: Item, stream: Stream, size: int) -> int:
    """Scan the archive whose end record ends the stream; return where that archive starts."""
    end = read_end_record(stream, size)
    start = 0
    try:
        if end is None:
            raise ValueError("no end-of-central-directory record")
        entries, problems = read_central_directory(stream, end, ctx.limits.max_members)
        start = archive_start(stream, end) if entries else 0
    except (ValueError, struct.error) as exc:
        ctx.report(
            rules.MALFORMED_CONTAINER.finding(
                item.location, f"ZIP central directory unreadable ({exc}); members found by walking local headers"
            )
        )
        entries, problems = walk_local_headers(stream, size, ctx.limits.max_members), []
    layouts = registry.matching_layouts("zip", [entry.name for entry in entries]) or ("zip",)
    ctx.record(item, layouts[0])
    for problem in problems:
        ctx.report(rules.CONTAINER_ANOMALY.finding(item.location, f"ZIP structure: {problem}"))
    prefixes = _storage_prefixes(entries)
    overlapping = _overlapping(ctx, stream, entries, size)
    if overlapping:
        _report_overlaps(ctx, item, entries, overlapping)
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        ctx.budget.check_time()
        if (entry.name.endswith("/") and not entry.usize) or index in overlapping:
            continue
        _scan_member(ctx, item, stream, entry, size, prefixes, seen, layouts)
    return start


def _overlapping(ctx: ScanContext, stream: Stream, entries: list[Entry], size: int) -> dict[int, int]:
    """Members whose header or data lies inside another member's (index -> index of the member it
    overlaps). No writer does this; ZIP bombs do, to expand the same compressed bytes once per member."""
    spans = []
    for index, entry in enumerate(entries):
        if not index & 0xFF:
            ctx.budget.check_time()
        if entry.data_offset < 0:
            try:
                _read_local_header(stream, entry)
            except (ValueError, struct.error):
                continue  # reported when the member is scanned
        length = entry.csize if entry.csize is not None else size - entry.data_offset
        spans.append((entry.header_offset, entry.data_offset + max(length, 0), index))
    spans.sort()
    overlapping: dict[int, int] = {}
    reach, owner = -1, -1
    for start, end, index in spans:
        if start < reach:
            overlapping[index] = owner
        if end > reach:
            reach, owner = end, index
    return overlapping


def _report_overlaps(ctx: ScanContext, item: Item, entries: list[Entry], overlapping: dict[int, int]) -> None:
    message = (
        f"{len(overlapping)} members overlap the headers or data of other members, a ZIP bomb pattern (the same "
        "compressed bytes expanded once per member); each overlapping member was not scanned"
    )
    first, owner = min(overlapping.items())
    evidence = {
        "overlapping_members": str(len(overlapping)),
        "example": f"{entries[first].name!r} (header at byte {entries[first].header_offset}) lies inside "
        f"{entries[owner].name!r}",
    }
    ctx.report(rules.SCAN_LIMIT.finding(item.location, message, evidence))


def _scan_member(
    ctx: ScanContext,
    item: Item,
    stream: Stream,
    entry: Entry,
    size: int,
    prefixes: set[str],
    seen: dict[str, int],
    layouts: tuple[str, ...],
) -> None:
    seen[entry.name] = seen.get(entry.name, 0) + 1
    member = entry.name if seen[entry.name] == 1 else f"{entry.name} (copy {seen[entry.name]})"
    location = item.location.child(member)
    if seen[entry.name] == 2:
        ctx.report(rules.CONTAINER_ANOMALY.finding(location, "several members share this name; each is scanned"))
    try:
        if entry.data_offset < 0:
            _read_local_header(stream, entry)
        if _is_storage(entry.name, prefixes) and _is_storage(entry.local_name, prefixes):
            return
        content = open_member(stream, entry, size, ctx)
    except (ValueError, struct.error, lzma.LZMAError) as exc:
        ctx.report(rules.MALFORMED_CONTAINER.finding(location, f"member not scanned: {exc}"))
        return
    _report_header_anomalies(ctx, location, entry)
    child = item.child(content, member, entry.usize if entry.method else entry.csize, entry.name, layouts)
    ctx.scan(child)
    if ctx.budget.spent is not None:
        return  # reported where it ran out; the member was not read to its end
    if isinstance(content, Decompressed) and (content.corrupt or content.truncated):
        ctx.report(
            rules.MALFORMED_CONTAINER.finding(location, f"compressed member damaged: {content.corrupt or 'truncated'}")
        )
    _check_crc(ctx, location, entry, content)


def _report_header_anomalies(ctx: ScanContext, location: Location, entry: Entry) -> None:
    for name in {entry.name, entry.local_name or entry.name}:
        if escapes_extraction(name):
            ctx.report(rules.PATH_TRAVERSAL.finding(location, f"member {name!r} is written outside the target folder"))
    if entry.local_name is not None and entry.local_name != entry.name:
        ctx.report(
            rules.CONTAINER_ANOMALY.finding(
                location,
                f"local header names this member {entry.local_name!r}, the central directory {entry.name!r}",
                {"local_name": entry.local_name, "central_name": entry.name},
            )
        )
    if entry.flags & REFUSED_FLAGS:
        ctx.report(
            rules.CONTAINER_ANOMALY.finding(
                location,
                f"member claims encryption or patched data (flags 0x{entry.flags:04x}) yet is readable; "
                "readers disagree on such members",
                {"flags": f"0x{entry.flags:04x}"},
            )
        )
    if entry.method == 0 and entry.csize is not None and entry.csize != entry.usize:
        ctx.report(
            rules.CONTAINER_ANOMALY.finding(
                location, f"stored member claims {entry.usize} bytes but occupies {entry.csize}"
            )
        )


def _check_crc(ctx: ScanContext, location: Location, entry: Entry, stream: Stream) -> None:
    if entry.usize > CRC_CHECK_MAX:
        return
    stream.seek(0)
    crc = zlib.crc32(stream.read(CRC_CHECK_MAX + 1))
    if crc != entry.crc:
        ctx.report(
            rules.CONTAINER_ANOMALY.finding(
                location,
                f"CRC-32 of the data is {crc:08x}, the archive records {entry.crc:08x}",
                {"crc_actual": f"{crc:08x}", "crc_recorded": f"{entry.crc:08x}"},
            )
        )


FORMATS = (Format("zip", "archive", "ZIP archive", handler=scan, magic=(LOCAL_SIG, b"PK\x05\x06")),)
