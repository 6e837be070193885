"""A small pickle assembler: writes opcodes directly, so the demo and the tests can build
exactly the streams they need (including malformed and evasive ones) without pickling
real objects. It never loads anything.
"""

from __future__ import annotations

import struct
from typing import Any


class PickleBuilder:
    def __init__(self, protocol: int | None = 2) -> None:
        self.parts: list[bytes] = []
        if protocol is not None and protocol >= 2:
            self.op(b"\x80" + bytes([protocol]))

    def op(self, data: bytes) -> PickleBuilder:
        self.parts.append(data)
        return self

    def build(self) -> bytes:
        return b"".join(self.parts)

    # names and calls
    def global_(self, module: str, name: str) -> PickleBuilder:
        return self.op(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def stack_global(self, module: str, name: str) -> PickleBuilder:
        return self.push(module).push(name).op(b"\x93")

    def call(self, module: str, name: str, *args: Any) -> PickleBuilder:
        """module.name(*args) with GLOBAL and REDUCE."""
        return self.global_(module, name).push(tuple(args)).reduce()

    def reduce(self) -> PickleBuilder:
        return self.op(b"R")

    def build_state(self) -> PickleBuilder:
        return self.op(b"b")

    def newobj(self) -> PickleBuilder:
        return self.op(b"\x81")

    # stack, marks and memo
    def mark(self) -> PickleBuilder:
        return self.op(b"(")

    def tuple_from_mark(self) -> PickleBuilder:
        return self.op(b"t")

    def pop(self) -> PickleBuilder:
        return self.op(b"0")

    def put(self, index: int) -> PickleBuilder:
        return self.op(b"q" + bytes([index]) if index < 256 else b"r" + struct.pack("<I", index))

    def get(self, index: int) -> PickleBuilder:
        return self.op(b"h" + bytes([index]) if index < 256 else b"j" + struct.pack("<I", index))

    def memoize(self) -> PickleBuilder:
        return self.op(b"\x94")

    def ext(self, code: int) -> PickleBuilder:
        if code < 256:
            return self.op(b"\x82" + bytes([code]))
        if code < 65536:
            return self.op(b"\x83" + struct.pack("<H", code))
        return self.op(b"\x84" + struct.pack("<i", code))

    def persistent(self) -> PickleBuilder:
        return self.op(b"Q")

    def stop(self) -> PickleBuilder:
        return self.op(b".")

    # values
    def push(self, value: Any) -> PickleBuilder:
        if value is None:
            return self.op(b"N")
        if value is True or value is False:
            return self.op(b"\x88" if value else b"\x89")
        if isinstance(value, int):
            if 0 <= value < 256:
                return self.op(b"K" + bytes([value]))
            if -(2**31) <= value < 2**31:
                return self.op(b"J" + struct.pack("<i", value))
            data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            return self.op(b"\x8a" + bytes([len(data)]) + data)
        if isinstance(value, float):
            return self.op(b"G" + struct.pack(">d", value))
        if isinstance(value, str):
            data = value.encode("utf-8")
            return self.op(b"X" + struct.pack("<I", len(data)) + data)
        if isinstance(value, (bytes, bytearray)):
            return self.op(b"B" + struct.pack("<I", len(value)) + bytes(value))
        if isinstance(value, tuple):
            if not value:
                return self.op(b")")
            self.mark()
            for item in value:
                self.push(item)
            return self.tuple_from_mark()
        if isinstance(value, list):
            self.op(b"]")
            if value:
                self.mark()
                for item in value:
                    self.push(item)
                self.op(b"e")
            return self
        if isinstance(value, dict):
            self.op(b"}")
            if value:
                self.mark()
                for key, item in value.items():
                    self.push(key).push(item)
                self.op(b"u")
            return self
        raise TypeError(f"cannot push {type(value).__name__}")
