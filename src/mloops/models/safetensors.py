"""safetensors: an 8-byte header length, a JSON header, then raw tensor bytes.

The format runs no code, so the risk is in the header: lengths, offsets and shapes that disagree
let a file carry bytes no tensor accounts for (a smuggled payload) or make readers disagree on what
a tensor holds. The rules mirror the reference Rust reader (safetensors 0.8): header at most
100,000,000 bytes of UTF-8 JSON, known dtypes, ranges that tile the data section exactly.
Only the header is read; tensor data never is.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from .. import rules
from ..context import Item, ScanContext
from ..core import Rule
from ..registry import Format

# The reference reader refuses longer headers (MAX_HEADER_SIZE in the Rust crate).
MAX_HEADER_BYTES = 100_000_000
# Detection only: a length whose top three bytes are set is text or another format, not a header.
_DETECT_MAX_LENGTH = 1 << 40
_USIZE_MAX = (1 << 64) - 1  # the reader computes sizes in a 64-bit usize and refuses overflow
_JSON_SPACE = b" \t\n\r"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # \ud800-\udfff: half of a UTF-16 pair
METADATA_KEY = "__metadata__"
# Bits per element of every dtype the reference reader knows; sub-byte types pack several per byte.
DTYPE_BITS = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
_TENSOR_FIELDS = ("dtype", "shape", "data_offsets")
_SHOWN_DIMS = 8


class Tensor(NamedTuple):
    name: str
    dtype: str
    shape: list[int]
    begin: int
    end: int
    nbytes: int


class _Reporter:
    """Reports a header problem of this file, named as a safetensors one (the context caps floods)."""

    def __init__(self, ctx: ScanContext, item: Item) -> None:
        self.ctx = ctx
        self.item = item

    def __call__(
        self, message: str, evidence: dict[str, str], offset: int | None = None, rule: Rule = rules.MALFORMED
    ) -> None:
        location = self.item.location if offset is None else self.item.location.at(offset)
        self.ctx.report(rule.finding(location, f"safetensors: {message}", evidence))


def detect(head: bytes, name: str) -> bool:
    """A little-endian length, then JSON that opens an object with a key (or closes it empty)."""
    if len(head) < 10:
        return False
    length = int.from_bytes(head[:8], "little")
    if not 2 <= length < _DETECT_MAX_LENGTH:
        return False
    # The reference reader accepts JSON whitespace before the opening brace.
    body = head[8 : 8 + length].lstrip(_JSON_SPACE)
    if not body.startswith(b"{"):
        return False
    return body[1:].lstrip(_JSON_SPACE)[:1] in (b'"', b"}")


def analyze(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "safetensors")
    problem = _Reporter(ctx, item)
    header = _read_header(item, problem)
    if header is not None:
        raw, size = header
        parsed = _parse(raw, problem)
        if parsed is not None:
            tensors = _tensors(ctx, parsed, problem)
            if tensors is not None:
                _check_layout(tensors, size - 8 - len(raw), 8 + len(raw), problem)


def _read_header(item: Item, problem: _Reporter) -> tuple[bytes, int] | None:
    """The header bytes and the stream size, when the length field is sane."""
    stream = item.stream
    size = item.size if item.size is not None else stream.seek(0, 2)
    stream.seek(0)
    prefix = stream.read(8)
    if len(prefix) < 8:
        problem("file ends inside the 8-byte header length", {"size": str(size)})
        return None
    length = int.from_bytes(prefix, "little")
    evidence = {"header_length": str(length), "file_size": str(size)}
    if length > MAX_HEADER_BYTES:
        problem(f"header length {length} exceeds the {MAX_HEADER_BYTES} bytes the safetensors reader accepts", evidence)
        return None
    if length + 8 > size:
        problem(f"header length {length} runs past the end of the file ({size} bytes)", evidence)
        return None
    raw = stream.read(length)
    if len(raw) < length:
        problem("file ends inside the header", evidence, 8 + len(raw))
        return None
    return raw, size


def _parse(raw: bytes, problem: _Reporter) -> dict[str, Any] | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem("header is not valid UTF-8", {"byte": f"0x{raw[exc.start]:02x}"}, 8 + exc.start)
        return None
    duplicates: list[str] = []

    def build_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    duplicates.append(key)
                seen.add(key)
        return obj

    try:
        parsed = json.loads(text, object_pairs_hook=build_object, parse_constant=_reject_constant)
    except ValueError as exc:
        position = getattr(exc, "pos", None)
        offset = None if position is None else 8 + len(text[:position].encode("utf-8"))
        problem(f"header is not valid JSON: {exc}", {"error": _short(str(exc))}, offset)
        return None
    except RecursionError:
        problem("header JSON is nested too deeply to parse", {"header_length": str(len(raw))}, 8)
        return None
    if not isinstance(parsed, dict):
        problem(f"header is a JSON {_json_type(parsed)}, not an object", {"type": _json_type(parsed)}, 8)
        return None
    for key in dict.fromkeys(duplicates):
        # The Rust reader keeps the last copy of a tensor or metadata key; other readers keep the first.
        problem(
            f"header repeats the key {_quoted(key)}: readers disagree on which copy counts", {"key": _short(key)}, 8
        )
    lone = _lone_surrogate(parsed) if _SURROGATE_ESCAPE.search(text) else None
    if lone is not None:
        problem(
            "header holds a lone UTF-16 surrogate, which the safetensors reader refuses", {"string": _short(lone)}, 8
        )
    _check_metadata(parsed.get(METADATA_KEY), problem)
    return parsed


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _lone_surrogate(value: Any) -> str | None:
    """The first string that is no valid Unicode: JSON can escape half a surrogate pair, Rust refuses it."""
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            pending.extend(current.keys())
            pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)
        elif isinstance(current, str):
            try:
                current.encode("utf-8")
            except UnicodeEncodeError:
                return current
    return None


def _check_metadata(metadata: Any, problem: _Reporter) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        problem(f"{METADATA_KEY} is a JSON {_json_type(metadata)}, not a string map", {"type": _json_type(metadata)}, 8)
        return
    for key, value in metadata.items():
        if not isinstance(value, str):
            problem(
                f"{METADATA_KEY}[{_quoted(key)}] is a JSON {_json_type(value)}; metadata values must be strings",
                {"key": _short(key), "type": _json_type(value)},
                8,
            )


def _tensors(ctx: ScanContext, header: dict[str, Any], problem: _Reporter) -> list[Tensor] | None:
    """Every tensor entry, or None when one is unusable: the layout cannot be judged without it."""
    tensors: list[Tensor] | None = []
    for index, (name, entry) in enumerate(header.items()):
        if index % 4096 == 0:
            ctx.budget.check_time()
        if name == METADATA_KEY:
            continue
        try:
            tensor = _tensor(name, entry)
        except _BadEntry as exc:
            problem(f"tensor {_quoted(name)} {exc.args[0]}", {"tensor": _short(name), **exc.args[1]}, 8)
            tensors = None
            continue
        if tensors is not None:
            tensors.append(tensor)
    return tensors


class _BadEntry(Exception):
    """A tensor entry the reader refuses: (message after the tensor's name, evidence)."""


def _tensor(name: str, entry: Any) -> Tensor:
    if not isinstance(entry, dict):
        raise _BadEntry(f"is described by a JSON {_json_type(entry)}, not an object", {})
    missing = [field for field in _TENSOR_FIELDS if field not in entry]
    if missing:
        raise _BadEntry(f"lacks {', '.join(missing)}", {"missing": ", ".join(missing)})
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        shown = _quoted(dtype) if isinstance(dtype, str) else _preview(dtype)
        raise _BadEntry(f"has unknown dtype {shown}", {"dtype": shown})
    if not _is_usize_list(shape):
        raise _BadEntry("has a shape that is not a list of non-negative 64-bit integers", {"shape": _preview(shape)})
    if not _is_usize_list(offsets) or len(offsets) != 2:
        raise _BadEntry(
            "has data_offsets that are not two non-negative 64-bit integers", {"data_offsets": _preview(offsets)}
        )
    nbytes = _byte_size(dtype, shape)
    if nbytes is None or nbytes < 0:
        why = "overflows a 64-bit byte count" if nbytes is None else "does not fill whole bytes"
        raise _BadEntry(f"{dtype} x {_shape_text(shape)} {why}", {"dtype": dtype, "shape": _shape_text(shape)})
    return Tensor(name, dtype, shape, offsets[0], offsets[1], nbytes)


def _is_usize_list(value: Any) -> bool:
    """A JSON array of integers that fit the reader's 64-bit usize (booleans and floats do not)."""
    if type(value) is not list:
        return False
    for item in value:
        if type(item) is not int or not 0 <= item <= _USIZE_MAX:
            return False
    return True


def _byte_size(dtype: str, shape: list[int]) -> int | None:
    """Bytes the tensor needs; None on 64-bit overflow, -1 when sub-byte elements end mid-byte."""
    elements = 1
    for dim in shape:
        elements *= dim  # checked at every step, as the reader does, so the number stays small
        if elements > _USIZE_MAX:
            return None
    bits = elements * DTYPE_BITS[dtype]
    if bits > _USIZE_MAX:
        return None
    return bits // 8 if bits % 8 == 0 else -1


def _check_layout(tensors: list[Tensor], data_size: int, data_start: int, problem: _Reporter) -> None:
    """Ranges sorted by offset must tile [0, data_size) exactly, each as long as its dtype and shape say."""
    cursor = 0
    previous: Tensor | None = None
    for tensor in sorted(tensors, key=lambda t: (t.begin, t.end)):
        at = data_start + min(tensor.begin, data_size)
        if tensor.end < tensor.begin:
            problem(f"tensor {_quoted(tensor.name)} ends before it begins", _about(tensor), at)
            continue
        if tensor.begin > cursor:
            problem(
                f"{_bytes(tensor.begin - cursor)} before tensor {_quoted(tensor.name)} belong to no tensor",
                _about(tensor, gap=f"[{cursor}, {tensor.begin}]"),
                data_start + min(cursor, data_size),
            )
        elif tensor.begin < cursor and previous is not None:
            problem(
                f"tensor {_quoted(tensor.name)} overlaps tensor {_quoted(previous.name)}",
                _about(tensor, overlaps=_short(previous.name), its_offsets=f"[{previous.begin}, {previous.end}]"),
                at,
            )
        if tensor.end - tensor.begin != tensor.nbytes:
            problem(
                f"tensor {_quoted(tensor.name)} spans {tensor.end - tensor.begin} bytes, but {tensor.dtype} x "
                f"{_shape_text(tensor.shape)} needs {tensor.nbytes}",
                _about(tensor, dtype=tensor.dtype, shape=_shape_text(tensor.shape), expected=str(tensor.nbytes)),
                at,
            )
        if tensor.end > data_size:
            problem(
                f"tensor {_quoted(tensor.name)} ends at byte {tensor.end} of a data section of {data_size} bytes",
                _about(tensor, data_size=str(data_size)),
                at,
            )
        if tensor.end >= cursor:
            cursor, previous = tensor.end, tensor
    if cursor < data_size:
        problem(
            f"{_bytes(data_size - cursor)} after the last tensor belong to no tensor",
            {"trailing_bytes": str(data_size - cursor), "data_size": str(data_size)},
            data_start + cursor,
            rules.TRAILING_DATA,
        )


def _about(tensor: Tensor, **extra: str) -> dict[str, str]:
    return {"tensor": _short(tensor.name), "data_offsets": f"[{tensor.begin}, {tensor.end}]", **extra}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _shape_text(shape: list[int]) -> str:
    shown = ", ".join(str(dim) for dim in shape[:_SHOWN_DIMS])
    return f"[{shown}{', ...' if len(shape) > _SHOWN_DIMS else ''}]"


def _preview(value: Any) -> str:
    """A bounded JSON rendering of a value an attacker may have made huge."""
    if isinstance(value, list) and len(value) > _SHOWN_DIMS:
        return _short(json.dumps(value[:_SHOWN_DIMS])[:-1] + ", ...]")
    return _short(json.dumps(value)) if not isinstance(value, dict) else f"object of {len(value)} keys"


def _bytes(count: int) -> str:
    return "1 byte" if count == 1 else f"{count} bytes"


def _quoted(text: str) -> str:
    return _short(repr(text[:120])) + ("..." if len(text) > 120 else "")


def _short(text: str, limit: int = 120) -> str:
    """Bounded and printable: lone surrogates would break UTF-8 reports."""
    text = text if len(text) <= limit else text[:limit] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


FORMATS = (
    Format(
        "safetensors", "safe", "safetensors", handler=analyze, detect=detect, order=40, extensions=(".safetensors",)
    ),
)
