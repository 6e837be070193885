"""GGUF (llama.cpp, Ollama, llama-cpp-python): weights plus key-value metadata, data only except one key.

``tokenizer.chat_template`` (and the named ``tokenizer.chat_template.<name>``) is a Jinja2 program that
runtimes render for every request; rendered outside Jinja2's sandbox it runs code (CVE-2024-34359).
Each template is analysed without rendering. The header is checked as strictly as ggml loads it:
counts and lengths that exceed the file, unknown types, tensors outside the data or out of order.
"""

from __future__ import annotations

from types import ModuleType
from typing import NamedTuple

from .. import rules
from ..context import Item, ScanContext
from ..core import Severity
from ..mlcode import template_files
from ..parsers import gguf as parser
from ..registry import Format

DEFAULT_ALIGNMENT = 32
GGML_MAX_DIMS = 4
GGML_MAX_NAME = 64  # ggml refuses tensor names of 64 bytes or more
MAX_TOKEN_BYTES = 256
_INT64_MAX = (1 << 63) - 1


class _Layout(NamedTuple):
    block: int  # elements per block
    size: int  # bytes per block


# ggml_type id -> (name, elements per block, bytes per block), from ggml's type_traits.
GGML_TYPES: dict[int, tuple[str, _Layout]] = {
    0: ("F32", _Layout(1, 4)),
    1: ("F16", _Layout(1, 2)),
    2: ("Q4_0", _Layout(32, 18)),
    3: ("Q4_1", _Layout(32, 20)),
    6: ("Q5_0", _Layout(32, 22)),
    7: ("Q5_1", _Layout(32, 24)),
    8: ("Q8_0", _Layout(32, 34)),
    9: ("Q8_1", _Layout(32, 40)),
    10: ("Q2_K", _Layout(256, 84)),
    11: ("Q3_K", _Layout(256, 110)),
    12: ("Q4_K", _Layout(256, 144)),
    13: ("Q5_K", _Layout(256, 176)),
    14: ("Q6_K", _Layout(256, 210)),
    15: ("Q8_K", _Layout(256, 292)),
    16: ("IQ2_XXS", _Layout(256, 66)),
    17: ("IQ2_XS", _Layout(256, 74)),
    18: ("IQ3_XXS", _Layout(256, 98)),
    19: ("IQ1_S", _Layout(256, 50)),
    20: ("IQ4_NL", _Layout(32, 18)),
    21: ("IQ3_S", _Layout(256, 110)),
    22: ("IQ2_S", _Layout(256, 82)),
    23: ("IQ4_XS", _Layout(256, 136)),
    24: ("I8", _Layout(1, 1)),
    25: ("I16", _Layout(1, 2)),
    26: ("I32", _Layout(1, 4)),
    27: ("I64", _Layout(1, 8)),
    28: ("F64", _Layout(1, 8)),
    29: ("IQ1_M", _Layout(256, 56)),
    30: ("BF16", _Layout(1, 2)),
    34: ("TQ1_0", _Layout(256, 54)),
    35: ("TQ2_0", _Layout(256, 66)),
    39: ("MXFP4", _Layout(32, 17)),
    40: ("NVFP4", _Layout(64, 36)),
    41: ("Q1_0", _Layout(128, 18)),
}


def detect(head: bytes, name: str) -> bool:
    # The version follows the magic; text that starts with "GGUF" has no zero bytes there.
    if not head.startswith(parser.MAGIC):
        return False
    version = head[4:8]
    return len(version) < 4 or version[2:] == b"\0\0" or version[:2] == b"\0\0"


def is_chat_template(key: str) -> bool:
    return key.endswith("chat_template") or key.startswith("tokenizer.chat_template.")


def _chat_template() -> ModuleType:
    from ..mlcode import chat_template  # imports Jinja2: paid on the first GGUF only, most scans never meet one

    return chat_template


def analyze(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "gguf")
    parsed = parser.parse(
        item.stream, item.size, is_chat_template, _chat_template().MAX_SOURCE_CHARS, ctx.budget.check_time
    )
    if parsed.error is not None:
        error = parsed.error
        kind = "truncated" if error.truncated else "malformed"
        ctx.report(
            rules.MALFORMED.finding(
                item.location.at(error.offset), f"GGUF header {kind}: {error.message}", _header(parsed)
            )
        )
    if parsed.limit is not None:
        ctx.report(rules.SCAN_LIMIT.finding(item.location, f"GGUF {parsed.limit}; the rest of the header was not read"))
    _check_keys(ctx, item, parsed)
    _check_templates(ctx, item, parsed)
    if parsed.infos_end is not None:
        _check_tensors(ctx, item, parsed, parsed.infos_end, _alignment(ctx, item, parsed))


def _header(parsed: parser.Parsed) -> dict[str, str]:
    return {
        "version": str(parsed.version),
        "tensors": str(parsed.tensor_count),
        "metadata": str(parsed.kv_count),
        **({"byte_order": "big-endian"} if parsed.big_endian else {}),
    }


def _check_keys(ctx: ScanContext, item: Item, parsed: parser.Parsed) -> None:
    seen: set[str] = set()
    for kv in parsed.kvs:
        if kv.key in seen:  # ggml refuses the file; other readers keep the first or the last value
            message = f"GGUF key {kv.key!r} appears twice; loaders disagree on which value counts"
            ctx.report(rules.MALFORMED.finding(item.location.at(kv.at), message, {"key": kv.key}))
        seen.add(kv.key)


def _alignment(ctx: ScanContext, item: Item, parsed: parser.Parsed) -> int:
    for kv in parsed.kvs:
        if kv.key != "general.alignment":
            continue
        value = kv.value
        if kv.type != 4 or not isinstance(value, int) or value <= 0 or value & (value - 1):
            shown = parser.TYPE_NAMES.get(kv.type, str(kv.type))
            message = f"general.alignment must be a uint32 power of two, found {shown} {value!r}"
            ctx.report(rules.MALFORMED.finding(item.location.at(kv.value_at), message, {"key": kv.key}))
            return DEFAULT_ALIGNMENT
        return value
    return DEFAULT_ALIGNMENT


def _check_templates(ctx: ScanContext, item: Item, parsed: parser.Parsed) -> None:
    templates = [kv for kv in parsed.kvs if is_chat_template(kv.key)]
    for kv in templates:
        ctx.budget.check_time()  # parsing a template takes a while; a file may hold many
        where = {"key": kv.key}
        if kv.type != parser.STRING:
            if kv.key == "tokenizer.chat_template" or kv.key.startswith("tokenizer.chat_template."):
                shown = parser.TYPE_NAMES.get(kv.type, str(kv.type))
                message = f"chat template {kv.key!r} is a {shown}, not a string; llama.cpp aborts on it"
                ctx.report(rules.MALFORMED.finding(item.location.at(kv.at), message, where))
            continue
        if not isinstance(kv.value, str):
            message = f"chat template {kv.key!r} of {kv.length} bytes is too long to analyse"
            ctx.report(rules.SCAN_LIMIT.finding(item.location.at(kv.value_at), message, where))
            continue
        _chat_template().report(ctx, item.location, kv.value, where, kv.value_at)
    if templates:
        _check_special_tokens(ctx, item, parsed)


def _check_special_tokens(ctx: ScanContext, item: Item, parsed: parser.Parsed) -> None:
    """Templates receive bos_token/eos_token as strings from the vocabulary: a dunder there is a hidden name."""
    tokens = next((kv.value for kv in parsed.kvs if kv.key == "tokenizer.ggml.tokens"), None)
    if not isinstance(tokens, parser.Array) or tokens.element_type != parser.STRING:
        return
    special = {
        kv.key: kv.value
        for kv in parsed.kvs
        if kv.key.startswith("tokenizer.ggml.") and kv.key.endswith("_token_id") and isinstance(kv.value, int)
    }
    wanted = {value for value in special.values() if 0 <= value < tokens.length}
    texts = parser.read_strings(item.stream, item.size, parsed, tokens, wanted, MAX_TOKEN_BYTES, ctx.budget.check_time)
    for key, token_id in special.items():
        text = texts.get(token_id, "")
        if _chat_template().names_internal(text):
            message = f"special token {key} is {text!r}, an attribute name that chat templates receive as a variable"
            evidence = {"key": key, "token_id": str(token_id), "token": text}
            ctx.report(
                template_files.TEMPLATE_INJECTION.finding(item.location, message, evidence, severity=Severity.HIGH)
            )


def _check_tensors(ctx: ScanContext, item: Item, parsed: parser.Parsed, infos_end: int, alignment: int) -> None:
    data_start = -(-infos_end // alignment) * alignment
    problems: list[tuple[int, str]] = []
    names: set[str] = set()
    expected: int | None = 0  # where ggml expects the next tensor: packed in order, each padded
    for tensor in parsed.tensors:
        problem = _tensor_problem(tensor, names, alignment)
        names.add(tensor.name)
        if problem is not None:
            problems.append((tensor.at, problem))
            expected = None
            continue
        layout = GGML_TYPES.get(tensor.type)
        if layout is None:
            message = f"tensor {tensor.name!r} has ggml type {tensor.type}, unknown to mloops; its size was not checked"
            ctx.report(rules.MALFORMED.finding(item.location.at(tensor.at), message, severity=Severity.INFO))
            expected = None
            continue
        nbytes = _nbytes(tensor.dims, layout[1])
        if expected is not None and tensor.offset != expected:
            problems.append(
                (tensor.at, f"tensor {tensor.name!r} at data offset {tensor.offset}, ggml expects {expected}")
            )
        end = data_start + tensor.offset + nbytes
        if item.size is not None and end > item.size:
            problems.append((tensor.at, f"tensor {tensor.name!r} needs bytes up to {end}, the file has {item.size}"))
        expected = tensor.offset + -(-nbytes // alignment) * alignment
    for at, message in problems:
        ctx.report(rules.MALFORMED.finding(item.location.at(at), f"GGUF {message}"))
    if expected is not None and item.size is not None and not problems:
        data_end = data_start + expected
        if item.size > data_end:
            message = f"{item.size - data_end} bytes follow the last GGUF tensor"
            ctx.report(rules.TRAILING_DATA.finding(item.location.at(data_end), message))


def _tensor_problem(tensor: parser.TensorInfo, names: set[str], alignment: int) -> str | None:
    """What ggml's loader refuses in one tensor info, before its size is known."""
    if len(tensor.name.encode("utf-8", "replace")) >= GGML_MAX_NAME:
        return f"tensor name {tensor.name[:80]!r}… is {GGML_MAX_NAME} bytes or longer"
    if tensor.name in names:
        return f"tensor name {tensor.name!r} appears twice"
    if len(tensor.dims) > GGML_MAX_DIMS:
        return f"tensor {tensor.name!r} has {len(tensor.dims)} dimensions, ggml allows {GGML_MAX_DIMS}"
    count = 1
    for dim in tensor.dims:
        count *= dim
        if dim > _INT64_MAX or count > _INT64_MAX:
            return f"tensor {tensor.name!r} shape {list(tensor.dims)} overflows 64 bits"
    layout = GGML_TYPES.get(tensor.type)
    row = tensor.dims[0] if tensor.dims else 1
    if layout is not None and row % layout[1].block:
        name, block = layout[0], layout[1].block
        return f"tensor {tensor.name!r} rows of {row} elements do not fill {name} blocks of {block}"
    if tensor.offset % alignment:
        return f"tensor {tensor.name!r} data offset {tensor.offset} is not a multiple of the alignment {alignment}"
    return None


def _nbytes(dims: tuple[int, ...], layout: _Layout) -> int:
    rows = 1
    for dim in dims[1:]:
        rows *= dim
    row = dims[0] if dims else 1
    return row // layout.block * layout.size * rows


FORMATS = (Format("gguf", "safe", "GGUF", handler=analyze, detect=detect, order=20, extensions=(".gguf",)),)
