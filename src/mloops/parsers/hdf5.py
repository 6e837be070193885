"""A bounded, read-only HDF5 reader: the attributes of groups, and the links that lead to them.

Keras keeps its model config in the root group's attributes, so that is all a scanner needs from
an HDF5 file; dataset contents are never read. Every address and length is checked against the
file before it is followed, every walk has a bound, and a structure the reader does not implement
raises ``Unsupported`` rather than being skipped, so the caller can say what it could not verify.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator
from typing import NamedTuple

from ..core import ParseError
from ..limits import LimitExceeded
from ..streams import Stream

SIGNATURE = b"\x89HDF\r\n\x1a\n"
FIRST_USER_BLOCK = 512  # a superblock sits at 0 or at 512, 1024, 2048, ... after a user block
SEARCH_BYTES = 64 << 10  # where superblocks are looked for: the bytes content sniffing sees

MAX_READ = 64 << 20  # one heap, collection or block
MAX_TOTAL_READ = 256 << 20  # everything one File reads
MAX_CHECKSUMMED = 8 << 20  # metadata bytes whose checksum is verified (pure-Python hashing is slow)
MAX_MESSAGES = 1 << 16  # messages in one object header
MAX_CHUNKS = 1 << 12  # continuation chunks of one object header
MAX_ENTRIES = 1 << 17  # attributes or links of one object, B-tree records
MAX_NODES = 1 << 16  # B-tree nodes visited in one walk
MAX_ELEMENTS = 1 << 20  # strings in one attribute
MAX_HEAP_DEPTH = 64  # indirect blocks between a fractal heap's root and an object

# Header message types this reader interprets.
MSG_LINK_INFO = 0x0002
MSG_LINK = 0x0006
MSG_ATTRIBUTE = 0x000C
MSG_CONTINUATION = 0x0010
MSG_SYMBOL_TABLE = 0x0011
MSG_ATTRIBUTE_INFO = 0x0015
MSG_FLAG_SHARED = 0x02

CLASS_STRING = 3
CLASS_VLEN = 9
BTREE_LINK_NAMES = 5
BTREE_ATTRIBUTE_NAMES = 8
BTREE_HUGE_OBJECTS = 1


class HDF5Error(ParseError):
    """The bytes break the HDF5 format. (A reader bound raises ``LimitExceeded`` instead.)"""


class Unsupported(HDF5Error):
    """A valid HDF5 structure this reader does not implement: the content cannot be verified."""


class Attribute(NamedTuple):
    name: str
    shape: tuple[int, ...] | None  # () for a scalar, None for a null dataspace
    strings: tuple[bytes, ...] | None  # the values when the datatype is a string, else None
    type_class: int


class Superblock(NamedTuple):
    offset: int  # absolute position of the signature; addresses count from here
    version: int
    offset_size: int
    length_size: int
    end_of_file: int  # absolute end of the HDF5 data, as the superblock records it
    root: int  # address of the root group's object header
    root_btree: int | None  # old-style root group: symbol table cached in the superblock
    root_heap: int | None


class Message(NamedTuple):
    type: int
    flags: int
    data: bytes


class _DataType(NamedTuple):
    type_class: int
    size: int
    string: str | None  # "fixed" or "vlen" when the type is a string
    padding: int


def find_superblock(head: bytes) -> int | None:
    """Offset of the HDF5 signature in ``head``: 0, or a user-block size (a power of two from 512)."""
    offset = 0
    while offset + len(SIGNATURE) <= len(head):
        if head[offset : offset + len(SIGNATURE)] == SIGNATURE:
            return offset
        offset = FIRST_USER_BLOCK if offset == 0 else offset * 2
    return None


def lookup3(data: bytes) -> int:
    """Bob Jenkins' lookup3 hashlittle with seed 0: the checksum of HDF5's newer metadata."""
    m = 0xFFFFFFFF
    a = b = c = (0xDEADBEEF + len(data)) & m
    if not data:
        return c
    blocks = (len(data) - 1) // 12  # the last 1..12 bytes get the final mix
    words = struct.unpack_from(f"<{3 * blocks}I", data)
    for i in range(0, 3 * blocks, 3):
        a, b, c = (a + words[i]) & m, (b + words[i + 1]) & m, (c + words[i + 2]) & m
        a = ((a - c) & m) ^ (((c << 4) | (c >> 28)) & m)
        c = (c + b) & m
        b = ((b - a) & m) ^ (((a << 6) | (a >> 26)) & m)
        a = (a + c) & m
        c = ((c - b) & m) ^ (((b << 8) | (b >> 24)) & m)
        b = (b + a) & m
        a = ((a - c) & m) ^ (((c << 16) | (c >> 16)) & m)
        c = (c + b) & m
        b = ((b - a) & m) ^ (((a << 19) | (a >> 13)) & m)
        a = (a + c) & m
        c = ((c - b) & m) ^ (((b << 4) | (b >> 28)) & m)
        b = (b + a) & m
    x, y, z = struct.unpack("<3I", data[12 * blocks :].ljust(12, b"\x00"))
    a, b, c = (a + x) & m, (b + y) & m, (c + z) & m
    c = ((c ^ b) - (((b << 14) | (b >> 18)) & m)) & m
    a = ((a ^ c) - (((c << 11) | (c >> 21)) & m)) & m
    b = ((b ^ a) - (((a << 25) | (a >> 7)) & m)) & m
    c = ((c ^ b) - (((b << 16) | (b >> 16)) & m)) & m
    a = ((a ^ c) - (((c << 4) | (c >> 28)) & m)) & m
    b = ((b ^ a) - (((a << 14) | (a >> 18)) & m)) & m
    return ((c ^ b) - (((b << 24) | (b >> 8)) & m)) & m


class _Cursor:
    """Sequential little-endian reads from one block; running past its end is an HDF5Error."""

    __slots__ = ("data", "length_size", "offset_size", "pos", "what")

    def __init__(self, data: bytes, what: str, offset_size: int, length_size: int, pos: int = 0) -> None:
        self.data = data
        self.what = what
        self.offset_size = offset_size
        self.length_size = length_size
        self.pos = pos

    def take(self, count: int) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise HDF5Error(f"{self.what}: field runs past the end of its {len(self.data)}-byte block")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "little")

    def address(self) -> int | None:
        """An address, or None for the undefined address (all bits set)."""
        raw = self.take(self.offset_size)
        return None if raw == b"\xff" * self.offset_size else int.from_bytes(raw, "little")

    def length(self) -> int:
        return self.uint(self.length_size)

    def skip(self, count: int) -> None:
        self.take(count)

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos


def _signature(cursor: _Cursor, expected: bytes) -> None:
    found = cursor.take(len(expected))
    if found != expected:
        raise HDF5Error(f"{cursor.what}: expected signature {expected!r}, found {found!r}")


def _enc_size(value: int) -> int:
    """Bytes HDF5 uses to encode numbers up to ``value`` (H5VM_limit_enc_size)."""
    return (max(value, 1).bit_length() - 1) // 8 + 1


class File:
    """One HDF5 file on a seekable stream. Construction reads and checks the superblock."""

    def __init__(
        self, stream: Stream, size: int, check_time: Callable[[], None] = lambda: None, start: int = 0
    ) -> None:
        self.stream = stream
        self.size = size
        self.check_time = check_time
        self.total_read = 0
        self.checksummed = 0
        self._collections: dict[int, dict[int, tuple[int, int]]] = {}
        self.superblock = self._read_superblock(start)

    # ------------------------------------------------------------------ raw access

    def _read_absolute(self, position: int, count: int, what: str) -> bytes:
        if position < 0 or count < 0 or position + count > self.size:
            raise HDF5Error(f"{what}: bytes {position}..{position + count} lie outside the {self.size}-byte file")
        if count > MAX_READ:
            raise LimitExceeded(f"{what}: {count} bytes is beyond the reader's bound")
        self.total_read += count
        if self.total_read > MAX_TOTAL_READ:
            raise LimitExceeded(f"more than {MAX_TOTAL_READ} bytes of metadata read")
        self.check_time()
        self.stream.seek(position)
        data = self.stream.read(count)
        if len(data) != count:
            raise HDF5Error(f"{what}: file ends inside the structure")
        return data

    def read(self, address: int | None, count: int, what: str) -> bytes:
        """``count`` bytes at a file address (relative to the superblock)."""
        if address is None:
            raise HDF5Error(f"{what}: undefined address")
        return self._read_absolute(self.superblock.offset + address, count, what)

    def read_upto(self, address: int | None, count: int, what: str) -> bytes:
        """Up to ``count`` bytes at an address, fewer when the file ends first (blocks of unknown size)."""
        if address is None:
            raise HDF5Error(f"{what}: undefined address")
        available = self.size - self.superblock.offset - address
        if available <= 0:
            raise HDF5Error(f"{what}: address {address} lies outside the file")
        return self.read(address, min(count, available), what)

    def verify_checksum(self, block: bytes, end: int, what: str, zeroed: bool = False) -> None:
        """The 4 bytes at ``end`` must be the lookup3 checksum of the block before them, or, for
        ``zeroed`` (direct blocks), of the whole block with those 4 bytes set to zero."""
        if end + 4 > len(block):
            raise HDF5Error(f"{what}: checksum runs past the end of the block")
        self.checksummed += len(block)
        if self.checksummed > MAX_CHECKSUMMED:
            raise LimitExceeded(f"more than {MAX_CHECKSUMMED} bytes of HDF5 metadata to verify")
        stored = int.from_bytes(block[end : end + 4], "little")
        covered = block[:end] + bytes(4) + block[end + 4 :] if zeroed else block[:end]
        if lookup3(covered) != stored:
            raise HDF5Error(f"{what}: checksum mismatch")

    def cursor(self, data: bytes, what: str, pos: int = 0) -> _Cursor:
        return _Cursor(data, what, self.superblock.offset_size, self.superblock.length_size, pos)

    # ------------------------------------------------------------------ superblock

    def _read_superblock(self, start: int) -> Superblock:
        head = self._read_absolute(start, min(256, self.size - start), "superblock")
        cursor = _Cursor(head, "superblock", 8, 8)
        _signature(cursor, SIGNATURE)
        version = cursor.uint(1)
        if version in (0, 1):
            cursor.skip(4)  # free-space, root group and shared-header versions, reserved
            offset_size, length_size = cursor.uint(1), cursor.uint(1)
            _check_sizes(offset_size, length_size)
            cursor.offset_size, cursor.length_size = offset_size, length_size
            cursor.skip(1 + 2 + 2 + 4 + (4 if version == 1 else 0))
            cursor.address()  # base address: the library uses where the signature is found
            cursor.address()  # free-space info
            end_of_file = cursor.address()
            cursor.address()  # driver info block
            cursor.address()  # root group link name offset
            root = cursor.address()
            cache_type = cursor.uint(4)
            cursor.skip(4)
            scratch = _Cursor(cursor.take(16), "superblock scratch pad", offset_size, length_size)
            btree = heap = None
            if cache_type == 1:
                btree, heap = scratch.address(), scratch.address()
        elif version in (2, 3):
            offset_size, length_size = cursor.uint(1), cursor.uint(1)
            _check_sizes(offset_size, length_size)
            cursor.offset_size, cursor.length_size = offset_size, length_size
            cursor.skip(1)  # consistency flags
            cursor.address()  # base address
            cursor.address()  # superblock extension: shared message tables, file space info
            end_of_file = cursor.address()
            root = cursor.address()
            self.verify_checksum(head, cursor.pos, "superblock")
            btree = heap = None
        else:
            raise Unsupported(f"superblock version {version}")
        if root is None or end_of_file is None:
            raise HDF5Error("superblock: root group or end-of-file address undefined")
        return Superblock(start, version, offset_size, length_size, end_of_file, root, btree, heap)

    # ------------------------------------------------------------------ object headers

    def messages(self, address: int) -> list[Message]:
        """Every message of the object header at ``address``, continuation chunks included."""
        head = self.read_upto(address, 16, "object header")
        if head[:4] == b"OHDR":
            return self._messages_v2(address)
        if head[:1] == b"\x01":
            return self._messages_v1(address, head)
        raise HDF5Error(f"object header at {address}: unknown version byte {head[0]}")

    def _messages_v1(self, address: int, head: bytes) -> list[Message]:
        cursor = self.cursor(head, "object header v1")
        cursor.skip(2)
        cursor.uint(2)  # message count: the chunks decide, as for the library
        cursor.uint(4)  # reference count
        size = cursor.uint(4)
        chunks = [(address + 16, size)]
        messages: list[Message] = []
        seen: set[int] = set()
        while chunks:
            chunk_address, chunk_size = chunks.pop(0)
            _note_chunk(seen, chunk_address)
            data = self.read(chunk_address, chunk_size, "object header chunk")
            cursor = self.cursor(data, "object header v1 message")
            while cursor.remaining >= 8:
                kind, length, flags = cursor.uint(2), cursor.uint(2), cursor.uint(1)
                cursor.skip(3)
                body = cursor.take(length)
                self._collect(messages, chunks, Message(kind, flags, body))
        return messages

    def _messages_v2(self, address: int) -> list[Message]:
        prefix = self.read_upto(address, 40, "object header v2")
        cursor = self.cursor(prefix, "object header v2")
        cursor.skip(4)
        version, flags = cursor.uint(1), cursor.uint(1)
        if version != 2:
            raise HDF5Error(f"object header v2: version {version}")
        if flags & 0x20:
            cursor.skip(16)  # access, modification, change and birth times
        if flags & 0x10:
            cursor.skip(4)  # attribute storage phase-change thresholds
        chunk0 = cursor.uint(1 << (flags & 0x03))
        with_order = bool(flags & 0x04)
        block = self.read(address, cursor.pos + chunk0 + 4, "object header v2")
        self.verify_checksum(block, cursor.pos + chunk0, "object header v2")
        messages: list[Message] = []
        chunks: list[tuple[int, int]] = []
        seen = {address}
        self._parse_v2_messages(block, cursor.pos, cursor.pos + chunk0, with_order, messages, chunks)
        while chunks:
            chunk_address, chunk_size = chunks.pop(0)
            _note_chunk(seen, chunk_address)
            block = self.read(chunk_address, chunk_size, "object header continuation")
            if block[:4] != b"OCHK" or chunk_size < 8:
                raise HDF5Error(f"object header continuation at {chunk_address}: no OCHK signature")
            self.verify_checksum(block, chunk_size - 4, "object header continuation")
            self._parse_v2_messages(block, 4, chunk_size - 4, with_order, messages, chunks)
        return messages

    def _parse_v2_messages(
        self,
        block: bytes,
        start: int,
        end: int,
        with_order: bool,
        messages: list[Message],
        chunks: list[tuple[int, int]],
    ) -> None:
        cursor = self.cursor(block[:end], "object header v2 message", start)
        header_size = 6 if with_order else 4
        while cursor.remaining >= header_size:  # a shorter remainder is a gap
            kind, length, flags = cursor.uint(1), cursor.uint(2), cursor.uint(1)
            if with_order:
                cursor.skip(2)
            self._collect(messages, chunks, Message(kind, flags, cursor.take(length)))

    def _collect(self, messages: list[Message], chunks: list[tuple[int, int]], message: Message) -> None:
        self.check_time()
        if len(messages) >= MAX_MESSAGES:
            raise LimitExceeded(f"object header holds more than {MAX_MESSAGES} messages")
        messages.append(message)
        if message.type == MSG_CONTINUATION:
            cursor = self.cursor(message.data, "continuation message")
            chunk_address, chunk_size = cursor.address(), cursor.length()
            if chunk_address is None:
                raise HDF5Error("continuation message: undefined address")
            chunks.append((chunk_address, chunk_size))

    # ------------------------------------------------------------------ attributes

    def attributes(self, path: str = "/") -> list[Attribute]:
        """The attributes of the group (or dataset) at ``path``, in storage order, duplicates kept."""
        return self.object_attributes(self.resolve(path))

    def object_attributes(self, address: int) -> list[Attribute]:
        attributes: list[Attribute] = []
        for message in self.messages(address):
            if message.type == MSG_ATTRIBUTE:
                if message.flags & MSG_FLAG_SHARED:
                    raise Unsupported("attribute stored as a shared message")
                attributes.append(self.parse_attribute(message.data))
            elif message.type == MSG_ATTRIBUTE_INFO:
                attributes.extend(self._dense_attributes(message.data))
            if len(attributes) > MAX_ENTRIES:
                raise LimitExceeded(f"more than {MAX_ENTRIES} attributes")
        return attributes

    def _dense_attributes(self, data: bytes) -> Iterator[Attribute]:
        cursor = self.cursor(data, "attribute info message")
        if cursor.uint(1) != 0:
            raise Unsupported("attribute info message version")
        flags = cursor.uint(1)
        if flags & 0x01:
            cursor.skip(2)  # maximum creation index
        heap_address, names_btree = cursor.address(), cursor.address()
        if heap_address is None or names_btree is None:
            return  # no attribute was ever stored densely
        heap = FractalHeap(self, heap_address)
        for record in self.btree2_records(names_btree, BTREE_ATTRIBUTE_NAMES):
            if len(record) > heap.id_length and record[heap.id_length] & MSG_FLAG_SHARED:
                raise Unsupported("attribute stored as a shared message")
            yield self.parse_attribute(heap.object(record[: heap.id_length]))

    def parse_attribute(self, data: bytes) -> Attribute:
        cursor = self.cursor(data, "attribute message")
        version = cursor.uint(1)
        if version not in (1, 2, 3):
            raise Unsupported(f"attribute message version {version}")
        flags = cursor.uint(1)
        name_size, type_size, space_size = cursor.uint(2), cursor.uint(2), cursor.uint(2)
        if version == 3:
            cursor.skip(1)  # name character set
        if version >= 2 and flags & 0x03:
            raise Unsupported("attribute with a shared (committed) datatype or dataspace")

        def field(size: int) -> bytes:
            raw = cursor.take(size)
            if version == 1:
                cursor.take(-size % 8)  # version 1 pads each field to 8 bytes
            return raw

        name = field(name_size).split(b"\x00", 1)[0].decode("utf-8", "replace")
        datatype = self._datatype(field(type_size))
        shape = self._dataspace(field(space_size))
        return Attribute(name, shape, self._strings(datatype, shape, cursor), datatype.type_class)

    def _datatype(self, data: bytes) -> _DataType:
        cursor = self.cursor(data, "datatype message")
        head = cursor.uint(1)
        type_class, bits, size = head & 0x0F, cursor.uint(3), cursor.uint(4)
        if type_class == CLASS_STRING:
            return _DataType(type_class, size, "fixed", bits & 0x0F)
        if type_class == CLASS_VLEN and bits & 0x0F == 1:
            return _DataType(type_class, 4 + self.superblock.offset_size + 4, "vlen", (bits >> 4) & 0x0F)
        return _DataType(type_class, size, None, 0)

    def _dataspace(self, data: bytes) -> tuple[int, ...] | None:
        cursor = self.cursor(data, "dataspace message")
        version, rank = cursor.uint(1), cursor.uint(1)
        cursor.skip(1)  # flags: maximum dimensions and permutations do not change what is stored
        if version == 1:
            cursor.skip(5)
            kind = 1 if rank else 0
        elif version == 2:
            kind = cursor.uint(1)
        else:
            raise Unsupported(f"dataspace message version {version}")
        if kind == 2:
            return None
        if rank > 32:
            raise HDF5Error(f"dataspace of rank {rank}; HDF5 allows 32")
        return tuple(cursor.length() for _ in range(rank))

    def _strings(self, datatype: _DataType, shape: tuple[int, ...] | None, cursor: _Cursor) -> tuple[bytes, ...] | None:
        count = 0 if shape is None else math.prod(shape)
        if datatype.size <= 0 and count:
            raise HDF5Error("attribute datatype has no size")
        if count * datatype.size > cursor.remaining:
            raise HDF5Error(f"attribute claims {count} elements of {datatype.size} bytes; the message holds fewer")
        if datatype.string is None:
            return None
        if count > MAX_ELEMENTS:
            raise LimitExceeded(f"attribute holds more than {MAX_ELEMENTS} strings")
        values = []
        for _ in range(count):
            element = cursor.take(datatype.size)
            if datatype.string == "fixed":
                values.append(_unpad(element, datatype.padding))
            else:
                values.append(self._vlen_string(element))
        return tuple(values)

    def _vlen_string(self, element: bytes) -> bytes:
        cursor = self.cursor(element, "variable-length string")
        length, collection, index = cursor.uint(4), cursor.address(), cursor.uint(4)
        if collection is None or collection == 0:
            if length:
                raise HDF5Error("variable-length string of nonzero length has no heap address")
            return b""
        return self.global_heap_object(collection, index, length)

    # ------------------------------------------------------------------ global heap

    def global_heap_object(self, collection: int, index: int, length: int) -> bytes:
        objects = self._collections.get(collection)
        if objects is None:
            objects = self._collections[collection] = self._read_collection(collection)
        if index not in objects:
            raise HDF5Error(f"global heap collection at {collection} has no object {index}")
        position, size = objects[index]
        if length > size:
            raise HDF5Error(f"global heap object {index} holds {size} bytes; the reference claims {length}")
        return self.read(position, length, "global heap object")

    def _read_collection(self, address: int) -> dict[int, tuple[int, int]]:
        length_size = self.superblock.length_size
        header = self.read(address, 8 + length_size, "global heap collection")
        cursor = self.cursor(header, "global heap collection")
        _signature(cursor, b"GCOL")
        if cursor.uint(1) != 1:
            raise Unsupported("global heap collection version")
        cursor.skip(3)
        size = cursor.length()
        if size < len(header):
            raise HDF5Error(f"global heap collection at {address} claims {size} bytes")
        data = self.read(address, size, "global heap collection")
        cursor = self.cursor(data, "global heap object", len(header))
        objects: dict[int, tuple[int, int]] = {}
        while cursor.remaining >= 8 + length_size:
            index = cursor.uint(2)
            if index == 0:
                break  # free space runs to the end of the collection
            cursor.skip(6)  # reference count, reserved
            object_size = cursor.length()
            start = cursor.pos
            cursor.skip(object_size)
            cursor.skip(min(-object_size % 8, cursor.remaining))
            if index in objects:
                raise HDF5Error(f"global heap collection at {address} holds object {index} twice")
            if len(objects) >= MAX_ENTRIES:
                raise LimitExceeded(f"global heap collection holds more than {MAX_ENTRIES} objects")
            objects[index] = (address + start, object_size)
        return objects

    # ------------------------------------------------------------------ groups

    def resolve(self, path: str) -> int:
        """Object header address of the object at an absolute path, following hard links."""
        address = self.superblock.root
        for part in (p for p in path.split("/") if p):
            links = self.links(address, at_root=address == self.superblock.root)
            if part not in links:
                raise KeyError(path)
            address = links[part]
        return address

    def links(self, address: int, at_root: bool = False) -> dict[str, int]:
        """Hard links of the group at ``address``: name -> object header address."""
        links: dict[str, int] = {}
        symbol_table = None
        for message in self.messages(address):
            if message.type == MSG_LINK:
                _add_link(links, self._parse_link(message.data))
            elif message.type == MSG_LINK_INFO:
                for link in self._dense_links(message.data):
                    _add_link(links, link)
            elif message.type == MSG_SYMBOL_TABLE:
                cursor = self.cursor(message.data, "symbol table message")
                symbol_table = (cursor.address(), cursor.address())
        if symbol_table is None and at_root and self.superblock.root_btree is not None:
            symbol_table = (self.superblock.root_btree, self.superblock.root_heap)
        if symbol_table is not None:
            for name, target in self._symbol_table(*symbol_table):
                _add_link(links, (name, target))
        return links

    def _parse_link(self, data: bytes) -> tuple[str, int | None]:
        cursor = self.cursor(data, "link message")
        if cursor.uint(1) != 1:
            raise Unsupported("link message version")
        flags = cursor.uint(1)
        link_type = cursor.uint(1) if flags & 0x08 else 0
        if flags & 0x04:
            cursor.skip(8)  # creation order
        if flags & 0x10:
            cursor.skip(1)  # name character set
        name = cursor.take(cursor.uint(1 << (flags & 0x03))).decode("utf-8", "replace")
        return name, cursor.address() if link_type == 0 else None

    def _dense_links(self, data: bytes) -> Iterator[tuple[str, int | None]]:
        cursor = self.cursor(data, "link info message")
        if cursor.uint(1) != 0:
            raise Unsupported("link info message version")
        if cursor.uint(1) & 0x01:
            cursor.skip(8)  # maximum creation index
        heap_address, names_btree = cursor.address(), cursor.address()
        if heap_address is None or names_btree is None:
            return
        heap = FractalHeap(self, heap_address)
        for record in self.btree2_records(names_btree, BTREE_LINK_NAMES):
            yield self._parse_link(heap.object(record[4 : 4 + heap.id_length]))

    def _symbol_table(self, btree: int | None, heap: int | None) -> Iterator[tuple[str, int | None]]:
        names = self._local_heap(heap)
        offset_size = self.superblock.offset_size
        entry_size = 2 * offset_size + 24
        for node in self._btree1_leaves(btree):
            head = self.read(node, 8, "symbol table node")
            cursor = self.cursor(head, "symbol table node")
            _signature(cursor, b"SNOD")
            cursor.skip(2)
            count = cursor.uint(2)
            body = self.cursor(self.read(node + 8, count * entry_size, "symbol table node"), "symbol table entry")
            for _ in range(count):
                name_offset, target = body.uint(offset_size), body.address()
                body.skip(24)  # cache type, reserved, scratch pad
                yield _heap_string(names, name_offset), target

    def _local_heap(self, address: int | None) -> bytes:
        length_size = self.superblock.length_size
        header = self.read(address, 8 + 2 * length_size + self.superblock.offset_size, "local heap")
        cursor = self.cursor(header, "local heap")
        _signature(cursor, b"HEAP")
        cursor.skip(4)
        size = cursor.length()
        cursor.length()  # free list head
        return self.read(cursor.address(), size, "local heap data")

    def _btree1_leaves(self, address: int | None) -> Iterator[int]:
        """Addresses of the symbol table nodes under a version 1 group B-tree."""
        offset_size, length_size = self.superblock.offset_size, self.superblock.length_size
        pending, seen = [address], set()
        while pending:
            node = pending.pop()
            if node is None or node in seen:
                raise HDF5Error("group B-tree: undefined or repeated node address")
            seen.add(node)
            if len(seen) > MAX_NODES:
                raise LimitExceeded(f"group B-tree has more than {MAX_NODES} nodes")
            head = self.cursor(self.read(node, 8 + 2 * offset_size, "group B-tree node"), "group B-tree node")
            _signature(head, b"TREE")
            if head.uint(1) != 0:
                raise HDF5Error("group B-tree node of a non-group type")
            level, entries = head.uint(1), head.uint(2)
            size = (entries + 1) * length_size + entries * offset_size
            body = self.cursor(self.read(node + head.pos + 2 * offset_size, size, "group B-tree node"), "keys")
            for _ in range(entries):
                body.length()
                child = body.address()
                if level == 0:
                    if child is None:
                        raise HDF5Error("group B-tree: undefined symbol table node address")
                    yield child
                else:
                    pending.append(child)

    # ------------------------------------------------------------------ version 2 B-trees

    def btree2_records(self, address: int, record_type: int) -> list[bytes]:
        """Every record of a version 2 B-tree, in no particular order."""
        header = self.read(address, 22 + self.superblock.offset_size + self.superblock.length_size, "B-tree")
        cursor = self.cursor(header, "B-tree header")
        _signature(cursor, b"BTHD")
        if cursor.uint(1) != 0:
            raise Unsupported("v2 B-tree header version")
        found_type, node_size, record_size, depth = cursor.uint(1), cursor.uint(4), cursor.uint(2), cursor.uint(2)
        cursor.skip(2)  # split and merge percentages
        root, root_records, total = cursor.address(), cursor.uint(2), cursor.length()
        self.verify_checksum(header, cursor.pos, "B-tree header")
        if found_type != record_type:
            raise HDF5Error(f"B-tree holds records of type {found_type}, expected {record_type}")
        if record_size == 0 or node_size < 16 or node_size > MAX_READ or depth > 32:
            raise HDF5Error(f"B-tree with implausible node size {node_size}, record size {record_size}, depth {depth}")
        if total > MAX_ENTRIES:
            raise LimitExceeded(f"B-tree claims {total} records, more than {MAX_ENTRIES}")
        pointer_sizes = _btree2_pointer_sizes(node_size, record_size, depth, self.superblock.offset_size)
        records: list[bytes] = []
        if root is None or total == 0:
            return records
        pending: list[tuple[int | None, int, int]] = [(root, root_records, depth)]  # None is checked when popped
        seen: set[int] = set()
        while pending:
            node, count, level = pending.pop()
            if node is None or node in seen:
                raise HDF5Error("B-tree: undefined or repeated node address")
            seen.add(node)
            if len(seen) > MAX_NODES:
                raise LimitExceeded(f"B-tree has more than {MAX_NODES} nodes")
            block = self.read_upto(node, node_size, "B-tree node")
            body = self.cursor(block, "B-tree node")
            _signature(body, b"BTIN" if level else b"BTLF")
            body.skip(2)  # version, type
            records.extend(body.take(record_size) for _ in range(count))
            if len(records) > total:
                raise HDF5Error("B-tree nodes hold more records than its header counts")
            if level:
                nrec_size, total_size = pointer_sizes[level]
                for _ in range(count + 1):
                    child = body.address()
                    child_count = body.uint(nrec_size)
                    body.skip(total_size)
                    pending.append((child, child_count, level - 1))
            self.verify_checksum(block, body.pos, "B-tree node")
        return records


class FractalHeap:
    """The objects of a fractal heap (dense attribute and link storage), found by heap ID."""

    def __init__(self, file: File, address: int) -> None:
        self.file = file
        sb = file.superblock
        size = 4 + 1 + 2 + 2 + 1 + 4 + 12 * sb.length_size + 3 * sb.offset_size + 2 + 2 + 2 + 2 + 4 + 64
        block = file.read_upto(address, size, "fractal heap header")
        cursor = file.cursor(block, "fractal heap header")
        _signature(cursor, b"FRHP")
        if cursor.uint(1) != 0:
            raise Unsupported("fractal heap version")
        self.id_length, filters = cursor.uint(2), cursor.uint(2)
        flags = cursor.uint(1)
        self.max_managed = cursor.uint(4)
        cursor.length()  # next huge object ID
        self.huge_btree = cursor.address()
        cursor.length()  # free space in managed blocks
        cursor.address()  # free-space manager
        for _ in range(8):
            cursor.length()  # managed space, allocated space, iterator, object counts and sizes
        self.width = cursor.uint(2)
        self.start_block = cursor.length()
        self.max_direct = cursor.length()
        self.max_heap_bits = cursor.uint(2)
        cursor.uint(2)  # starting rows of the root indirect block
        self.root = cursor.address()
        self.root_rows = cursor.uint(2)
        if filters:
            raise Unsupported("fractal heap with I/O filters (compressed attribute or link storage)")
        file.verify_checksum(block, cursor.pos, "fractal heap header")
        self.checksummed_blocks = bool(flags & 0x02)
        for value, what in ((self.width, "table width"), (self.start_block, "starting block size")):
            if value <= 0 or value & (value - 1):
                raise HDF5Error(f"fractal heap {what} {value} is not a power of two")
        if self.max_direct < self.start_block or self.max_direct & (self.max_direct - 1) or self.max_direct > MAX_READ:
            raise HDF5Error(f"fractal heap maximum direct block size {self.max_direct} is invalid")
        if not 0 < self.max_heap_bits <= 64 or self.id_length < 1:
            raise HDF5Error("fractal heap address space or ID length is invalid")
        self.offset_size = (self.max_heap_bits + 7) // 8
        self.length_size = min((self.max_direct.bit_length() - 1 + 7) // 8, _enc_size(self.max_managed))
        self.direct_rows = (self.max_direct.bit_length() - self.start_block.bit_length()) + 2
        self._huge: dict[int, tuple[int, int]] | None = None
        self._verified: set[int] = set()
        self._indirect: dict[tuple[int, int, int], tuple[list[int | None], list[int | None]]] = {}

    def row_block_size(self, row: int) -> int:
        return self.start_block if row == 0 else self.start_block << (row - 1)

    def object(self, heap_id: bytes) -> bytes:
        if len(heap_id) < 1:
            raise HDF5Error("empty fractal heap ID")
        kind = (heap_id[0] >> 4) & 0x03
        if heap_id[0] >> 6:
            raise Unsupported("fractal heap ID version")
        if kind == 0:
            cursor = self.file.cursor(heap_id, "managed heap ID", 1)
            return self._managed(cursor.uint(self.offset_size), cursor.uint(self.length_size))
        if kind == 2:
            if self.id_length <= 18:
                length, start = (heap_id[0] & 0x0F) + 1, 1
            else:
                length, start = (((heap_id[0] & 0x0F) << 8) | heap_id[1]) + 1, 2
            if start + length > len(heap_id):
                raise HDF5Error("tiny heap object longer than its ID")
            return heap_id[start : start + length]
        if kind == 1:
            return self._huge_object(heap_id)
        raise HDF5Error("fractal heap ID of reserved type")

    def _managed(self, offset: int, length: int) -> bytes:
        if length == 0 or length > self.max_managed:
            raise HDF5Error(f"managed heap object of {length} bytes")
        block_address, block_size, block_offset = self._locate(offset)
        position = offset - block_offset
        header = 5 + self.file.superblock.offset_size + self.offset_size + (4 if self.checksummed_blocks else 0)
        if position < header or position + length > block_size:
            raise HDF5Error(f"heap object at offset {offset} (+{length}) falls outside its direct block")
        head = self.file.read(block_address, header - (4 if self.checksummed_blocks else 0), "direct block")
        cursor = self.file.cursor(head, "direct block")
        _signature(cursor, b"FHDB")
        cursor.skip(1 + self.file.superblock.offset_size)
        if cursor.uint(self.offset_size) != block_offset:
            raise HDF5Error(f"direct block at {block_address} does not cover heap offset {block_offset}")
        if self.checksummed_blocks and block_address not in self._verified:
            block = self.file.read(block_address, block_size, "direct block")
            self.file.verify_checksum(block, header - 4, "direct block", zeroed=True)
            self._verified.add(block_address)
        return self.file.read(block_address + position, length, "heap object")

    def _locate(self, offset: int) -> tuple[int, int, int]:
        """(address, size, heap offset) of the direct block holding heap offset ``offset``."""
        if self.root is None:
            raise HDF5Error("fractal heap has no root block")
        if self.root_rows == 0:
            return self.root, self.start_block, 0
        address, rows, base = self.root, self.root_rows, 0
        for _ in range(MAX_HEAP_DEPTH):
            direct, indirect = self._indirect_block(address, rows, base)
            relative, row = offset - base, 0
            while row < rows and relative >= self.width * self.row_block_size(row):
                relative -= self.width * self.row_block_size(row)
                row += 1
            if row >= rows:
                raise HDF5Error(f"heap offset {offset} lies beyond the indirect block at {address}")
            block_size = self.row_block_size(row)
            column = relative // block_size
            child_base = offset - (relative - column * block_size)
            entry = row * self.width + column
            if row < self.direct_rows:
                child = direct[entry]
                if child is None:
                    raise HDF5Error(f"heap offset {offset} lies in an unallocated block")
                return child, block_size, child_base
            child = indirect[entry - len(direct)]
            if child is None:
                raise HDF5Error(f"heap offset {offset} lies in an unallocated block")
            rows = block_size.bit_length() - self.start_block.bit_length() - (self.width.bit_length() - 1) + 1
            address, base = child, child_base
        raise HDF5Error("fractal heap indirect blocks nest too deeply")

    def _indirect_block(self, address: int, rows: int, base: int) -> tuple[list[int | None], list[int | None]]:
        key = (address, rows, base)
        if key not in self._indirect:
            self._indirect[key] = self._read_indirect_block(address, rows, base)
        return self._indirect[key]

    def _read_indirect_block(self, address: int, rows: int, base: int) -> tuple[list[int | None], list[int | None]]:
        if rows > 64:
            raise HDF5Error(f"fractal heap indirect block with {rows} rows")
        sb = self.file.superblock
        direct_count = min(rows, self.direct_rows) * self.width
        indirect_count = max(0, rows - self.direct_rows) * self.width
        prefix = 5 + sb.offset_size + self.offset_size
        size = prefix + (direct_count + indirect_count) * sb.offset_size
        block = self.file.read(address, size + 4, "indirect block")
        cursor = self.file.cursor(block, "indirect block")
        _signature(cursor, b"FHIB")
        cursor.skip(1 + sb.offset_size)
        if cursor.uint(self.offset_size) != base:
            raise HDF5Error(f"indirect block at {address} does not cover heap offset {base}")
        direct = [cursor.address() for _ in range(direct_count)]
        indirect = [cursor.address() for _ in range(indirect_count)]
        self.file.verify_checksum(block, cursor.pos, "indirect block")
        return direct, indirect

    def _huge_object(self, heap_id: bytes) -> bytes:
        sb = self.file.superblock
        cursor = self.file.cursor(heap_id, "huge heap ID", 1)
        if self.id_length >= 1 + sb.offset_size + sb.length_size:
            address, length = cursor.address(), cursor.length()
        else:
            key = cursor.uint(min(sb.length_size, len(heap_id) - 1))
            if self._huge is None:
                self._huge = self._huge_index()
            if key not in self._huge:
                raise HDF5Error(f"huge heap object {key} is not in the heap's index")
            address, length = self._huge[key]
        return self.file.read(address, length, "huge heap object")

    def _huge_index(self) -> dict[int, tuple[int, int]]:
        if self.huge_btree is None:
            return {}
        index = {}
        for record in self.file.btree2_records(self.huge_btree, BTREE_HUGE_OBJECTS):
            cursor = self.file.cursor(record, "huge object record")
            address, length, key = cursor.address(), cursor.length(), cursor.length()
            if address is not None:
                index[key] = (address, length)
        return index


def _btree2_pointer_sizes(node_size: int, record_size: int, depth: int, offset_size: int) -> dict[int, tuple[int, int]]:
    """Per internal level: bytes of a child's record count and of its subtree's record count."""
    leaf_max = (node_size - 10) // record_size
    if leaf_max <= 0:
        raise HDF5Error(f"B-tree node of {node_size} bytes holds no {record_size}-byte record")
    nrec_size = _enc_size(leaf_max)
    cumulative, cumulative_size = leaf_max, 0
    sizes = {}
    for level in range(1, depth + 1):
        pointer = offset_size + nrec_size + cumulative_size
        level_max = (node_size - (10 + pointer)) // (record_size + pointer)
        if level_max <= 0:
            raise HDF5Error("B-tree internal node holds no record")
        sizes[level] = (nrec_size, cumulative_size)
        cumulative = (level_max + 1) * cumulative + level_max
        cumulative_size = _enc_size(cumulative)
    return sizes


def _check_sizes(offset_size: int, length_size: int) -> None:
    if offset_size not in (2, 4, 8) or length_size not in (2, 4, 8):
        raise HDF5Error(f"superblock: offset size {offset_size} and length size {length_size} are invalid")


def _note_chunk(seen: set[int], address: int) -> None:
    if address in seen:
        raise HDF5Error(f"object header continuation loops back to {address}")
    seen.add(address)
    if len(seen) > MAX_CHUNKS:
        raise LimitExceeded(f"object header has more than {MAX_CHUNKS} continuation chunks")


def _add_link(links: dict[str, int], link: tuple[str, int | None]) -> None:
    name, target = link
    if target is not None:
        links.setdefault(name, target)
    if len(links) > MAX_ENTRIES:
        raise LimitExceeded(f"group has more than {MAX_ENTRIES} links")


def _heap_string(heap: bytes, offset: int) -> str:
    if offset >= len(heap):
        raise HDF5Error(f"link name offset {offset} lies outside the {len(heap)}-byte local heap")
    end = heap.find(b"\x00", offset)
    return heap[offset : end if end >= 0 else len(heap)].decode("utf-8", "replace")


def _unpad(raw: bytes, padding: int) -> bytes:
    if padding == 0:  # null-terminated
        return raw.split(b"\x00", 1)[0]
    if padding == 2:  # space-padded
        return raw.rstrip(b" ")
    return raw.rstrip(b"\x00")
