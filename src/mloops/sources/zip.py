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

from .. import rules
from ..context import Item, ScanContext
from ..core import Location
from ..limits import LimitExceeded, MiB
from ..streams import Decompressed, Stream, Window
from . import escapes_extraction

EOCD_SIG = b"PK\x05\x06"
CD_SIG = b"PK\x01\x02"
LOCAL_SIG = b"PK\x03\x04"
ZIP64_LOCATOR_SIG = b"PK\x06\x07"
ZIP64_EOCD_SIG = b"PK\x06\x06"
TAIL_BYTES = 65535 + 22  # the end record plus the longest possible comment
CRC_CHECK_MAX = 16 * MiB  # members up to this size are re-read to verify their CRC
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
            uses_zip64 = 0xFFFFFFFF in (cd_size, cd_offset) or entries == 0xFFFF
            if (
                uses_zip64
                and locator >= tail_start
                and tail[locator - tail_start : locator - tail_start + 4] == ZIP64_LOCATOR_SIG
            ):
                return EndRecord(absolute, entries, cd_size, cd_offset, locator)
            if not uses_zip64 and cd_size <= absolute:
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
    if end is None or not end.entries:
        return False
    try:
        end = _resolve_zip64(stream, end)
    except (ValueError, struct.error):
        return False
    for start in (end.cd_offset, end.offset - end.cd_size):
        stream.seek(start)
        if stream.read(4) == CD_SIG:
            return True
    return False


def _resolve_zip64(stream: Stream, end: EndRecord) -> EndRecord:
    if end.zip64_locator is None:
        return end
    stream.seek(end.zip64_locator)
    locator = stream.read(20)
    record_offset = struct.unpack("<4sIQI", locator)[2]
    stream.seek(record_offset)
    record = stream.read(56)
    if record[:4] != ZIP64_EOCD_SIG:
        raise ValueError("ZIP64 end record not found where its locator points")
    entries, cd_size, cd_offset = struct.unpack("<QQQ", record[32:56])
    return EndRecord(end.offset, entries, cd_size, cd_offset, None)


def read_central_directory(stream: Stream, end: EndRecord, max_members: int) -> tuple[list[Entry], list[str]]:
    problems: list[str] = []
    end = _resolve_zip64(stream, end)
    stream.seek(end.cd_offset)
    directory = stream.read(end.cd_size)
    shift = 0
    if not directory.startswith(CD_SIG):
        # Data prepended to the archive: offsets are relative to where the archive starts.
        start = end.offset - end.cd_size
        stream.seek(start)
        directory = stream.read(end.cd_size)
        shift = start - end.cd_offset
        if not directory.startswith(CD_SIG) and end.entries:
            raise ValueError("central directory not found")
        problems.append(f"{shift} bytes precede the archive")
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
    size = item.size if item.size is not None else item.stream.seek(0, 2)
    end = read_end_record(item.stream, size)
    try:
        if end is None:
            raise ValueError("no end-of-central-directory record")
        entries, problems = read_central_directory(item.stream, end, ctx.limits.max_members)
    except (ValueError, struct.error) as exc:
        ctx.report(
            rules.MALFORMED_CONTAINER.finding(
                item.location, f"ZIP central directory unreadable ({exc}); members found by walking local headers"
            )
        )
        entries, problems = walk_local_headers(item.stream, size, ctx.limits.max_members), []
    layouts = _layouts(entries)
    ctx.record(item, layouts[0])
    for problem in problems:
        ctx.report(rules.CONTAINER_ANOMALY.finding(item.location, f"ZIP structure: {problem}"))
    prefixes = _storage_prefixes(entries)
    seen: dict[str, int] = {}
    for entry in entries:
        ctx.budget.check_time()
        if entry.name.endswith("/") and not entry.usize:
            continue
        _scan_member(ctx, item, entry, size, prefixes, seen, layouts)


def _scan_member(
    ctx: ScanContext,
    item: Item,
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
            _read_local_header(item.stream, entry)
        if _is_storage(entry.name, prefixes) and _is_storage(entry.local_name, prefixes):
            return
        stream = open_member(item.stream, entry, size, ctx)
    except (ValueError, struct.error, lzma.LZMAError) as exc:
        ctx.report(rules.MALFORMED_CONTAINER.finding(location, f"member not scanned: {exc}"))
        return
    _report_header_anomalies(ctx, location, entry)
    child = item.child(stream, member, entry.usize if entry.method else entry.csize, entry.name, layouts)
    ctx.scan(child)
    if isinstance(stream, Decompressed) and (stream.corrupt or stream.truncated):
        ctx.report(
            rules.MALFORMED_CONTAINER.finding(location, f"compressed member damaged: {stream.corrupt or 'truncated'}")
        )
    _check_crc(ctx, location, entry, stream)


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


def _layouts(entries: list[Entry]) -> tuple[str, ...]:
    """Every loader layout the member names match, most specific first.

    An archive may match several (a .keras that is also a torch checkpoint): each loader reads
    its own members, so each member is judged the way every matching loader would read it.
    """
    names = {entry.name for entry in entries}
    layouts = []
    if _routes_to_torchscript(entries):
        layouts.append("torchscript-zip")
    if any(name == "archive_format" or name.endswith("/archive_format") for name in names):
        layouts.append("pytorch-pt2")
    if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names) and not layouts:
        layouts.append("pytorch-zip")
    if {"config.json", "metadata.json"} <= names:
        layouts.append("keras")
    if "schema.json" in names:
        layouts.append("skops")  # skops.load reads schema.json from any ZIP
    if not layouts and names and all(name.endswith(".npy") for name in names):
        layouts.append("npz")
    return tuple(layouts) or ("zip",)


def _routes_to_torchscript(entries: list[Entry]) -> bool:
    """torch.load hands an archive to torch.jit.load when its records include constants.pkl;
    records are the member names below the folder of the first member (PyTorchStreamReader)."""
    if not entries or "/" not in entries[0].name:
        return False
    folder = entries[0].name.split("/", 1)[0]
    return any(entry.name == f"{folder}/constants.pkl" for entry in entries)
