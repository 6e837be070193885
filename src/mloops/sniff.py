"""Identify formats by their bytes; a file name is only a hint.

``sniff`` may return several formats for one stream: a file that is both a pickle
and a ZIP (data prepended to an archive) is analyzed both ways, because different
loaders read it differently.
"""

from __future__ import annotations

import io
import lzma
import zlib
from collections.abc import Callable
from typing import Any

from .datasets import arrow_data
from .deployments import compose_file, dockerfile, k8s_manifest
from .limits import Budget, LimitExceeded, Limits
from .mlcode import python_code, template_files
from .models import (
    flax_msgpack,
    gguf,
    keras_h5,
    lightgbm_text,
    model_package,
    onnx,
    pmml,
    safetensors,
    tensorflow,
    tflite,
    xgboost_model,
)
from .notebooks import notebook
from .picklevm.policy import default_policy
from .picklevm.reader import Reader
from .picklevm.vm import Machine, Malformed, Name, Observer

HEAD_BYTES = 64 * 1024

# Extensions under which a file is expected to be a model. Content that matches none of the
# supported layouts is then reported, not skipped. Generic data formats (.json, .msgpack, .ubj)
# are left out: most such files are no model, and a damaged model of those formats is still
# recognised by its structure.
MODEL_EXTENSIONS = (
    ".pkl",
    ".pickle",
    ".pck",
    ".pcl",
    ".joblib",
    ".jbl",
    ".dill",
    ".cloudpickle",
    ".pt",
    ".pth",
    ".ckpt",
    ".npy",
    ".npz",
    ".mar",
    ".pth.tar",
    ".pt.tar",
    ".pt2",
    ".nemo",
    ".h5",
    ".hdf5",
    ".keras",
    ".pb",
    ".onnx",
    ".gguf",
    ".safetensors",
    ".skops",
    ".tflite",
)
COMPRESSION_EXTENSIONS = (".gz", ".bz2", ".xz", ".lzma", ".z", ".zlib")
# Names a pickle loader is pointed at: a stream there that imports anything before it breaks is
# judged as a pickle, because the loader runs those imports before it fails.
PICKLE_EXTENSIONS = (
    *(".pkl", ".pickle", ".pck", ".pcl", ".joblib", ".jbl", ".dill", ".cloudpickle", ".pt", ".pth"),
    *(".ckpt", ".bin", ".pth.tar", ".pt.tar", ".model", ".sav"),
)

_SIMPLE_MAGIC = (
    (b"\x93NUMPY", "npy"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x1f\x8b\x08", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"ZF0x", "joblib-zfile"),  # joblib < 0.10: "ZF", the length in hex padded to 19 bytes, then zlib
)


def has_model_extension(name: str) -> bool:
    return _without_compression(name).endswith(MODEL_EXTENSIONS)


def has_pickle_extension(name: str) -> bool:
    return _without_compression(name).endswith(PICKLE_EXTENSIONS)


def _without_compression(name: str) -> str:
    lower = name.lower()
    for ext in COMPRESSION_EXTENSIONS:
        if lower.endswith(ext):
            return lower[: -len(ext)]
    return lower


# What a file named like a model may really be: a download that returned an error page, an image
# or a document saved under the wrong name. None of these runs in a model loader: the first byte
# is no pickle opcode that does anything, and no loader of other formats accepts them.
_NON_MODEL_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"RIFF", "a RIFF file (WebP, WAV or AVI)"),
)


def non_model_content(head: bytes) -> str | None:
    """What non-model content the bytes are, when they are clearly one (images, documents, pages, text)."""
    for magic, kind in _NON_MODEL_MAGIC:
        if head.startswith(magic):
            return kind
    text = _as_text(head)
    if text is None:
        return None
    start = text.lstrip("\ufeff \t\r\n")[:256].lower()
    if start.startswith(("<!doctype html", "<html", "<head", "<body")):
        return "an HTML page"
    if start.startswith("<?xml") or start.startswith("<"):
        return "XML or markup"
    if start.startswith(("{", "[")):
        return "JSON or other structured text"
    return "plain text"


def _as_text(head: bytes) -> str | None:
    if not head or b"\x00" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return head[: exc.start].decode("utf-8") if exc.start > len(head) - 4 else None  # a character cut at the end


# Model formats recognised by their own analyzer: ``detect(head, name)`` checks magic bytes and
# structure; formats without magic (protobuf) also take the name as a hint. Most specific first.
DETECTORS: tuple[tuple[str, Callable[[bytes, str], bool]], ...] = (
    ("arrow-data", arrow_data.detect),
    ("gguf", gguf.detect),
    ("hdf5", keras_h5.detect),
    ("safetensors", safetensors.detect),
    ("tflite", tflite.detect),
    ("pmml", pmml.detect),
    ("lightgbm-text", lightgbm_text.detect),
    ("xgboost", xgboost_model.detect),
    ("flax-msgpack", flax_msgpack.detect),
    ("onnx", onnx.detect),
    ("tensorflow", tensorflow.detect),
)


# Text formats, named by their file name and structure; tried once the stream is known not to be a pickle.
TEXT_DETECTORS: tuple[tuple[str, Callable[[bytes, str], bool]], ...] = (
    ("notebook", notebook.detect),
    ("python", python_code.detect),
    ("kubernetes", k8s_manifest.detect),
    ("compose", compose_file.detect),
    ("dockerfile", dockerfile.detect),
    ("chat-template", template_files.detect_template),
    ("template-config", template_files.detect_config),
    ("mlflow-model", model_package.detect_mlmodel),
    ("bento", model_package.detect_bento),
    ("remote-code-config", model_package.detect_remote_code_config),
)


def sniff(head: bytes, name: str = "") -> list[str]:
    """Formats the first bytes match, most specific first; empty when none.

    ``head`` is the start of the stream, at most HEAD_BYTES long; shorter means complete.
    ``name`` is the file or member name, a hint only where a format has no magic bytes.
    """
    for magic, fmt in _SIMPLE_MAGIC:
        if head.startswith(magic):
            return [fmt]
    for fmt, detect in DETECTORS:
        if detect(head, name):
            return [fmt]
    for fmt, test in (("bz2", _is_bz2), ("zlib", _is_zlib), ("lzma", _is_lzma_alone), ("tar", _is_tar)):
        if test(head):
            return [fmt]
    if looks_like_pickle(head, complete=len(head) < HEAD_BYTES, pickle_named=has_pickle_extension(name)):
        return ["pickle"]  # before the text formats: a protocol 0 pickle is text, whatever its name
    for fmt, detect in TEXT_DETECTORS:
        if detect(head, name):
            return [fmt]
    return []


class _Sniffer(Observer):
    """An observer that only notes whether the stream imports or calls anything.

    EXT is no call here: it fetches only what the loading process registered (standard libraries
    register nothing), so on its own it runs no code, and msgpack maps of two to four entries start
    with EXT's bytes."""

    saw_global = False
    saw_call = False

    def reference(self, name: Name, offset: int, opcode: str, spelled: str | None) -> None:
        self.saw_global = True

    def call(self, name: Name | None, callee: Any, args: Any, offset: int, opcode: str) -> None:
        self.saw_call = True

    def instantiate(self, name: Name | None, cls: Any, offset: int, opcode: str) -> None:
        self.saw_call = True

    def build(self, target: Any, name: Name | None, offset: int, opcode: str) -> None:
        self.saw_call = True

    def computed_global(self, offset: int, detail: str) -> None:
        self.saw_call = True


_SNIFF_LIMITS = Limits(max_seconds_per_file=5.0)
# A prefix that parses cleanly for this many opcodes, and is only cut off by the end of the
# sample, is a pickle; random binary data and text fail within a few opcodes.
_PLAUSIBLE_OPCODES = 64
_PLAUSIBLE_AFTER_HEADER = 2
_ENOUGH_AFTER_HEADER = 16


def looks_like_pickle(head: bytes, complete: bool, pickle_named: bool = False) -> bool:
    """Whether a pickle loader would run this stream (at least in part).

    Under a pickle-family name the loader is certain to try it: then any import or call before
    the stream breaks, or a stream that parses until its data ends, makes it a (broken) pickle.
    """
    if not head:
        return False
    observer = _Sniffer()
    # An incomplete sample has no known end, so large payloads are stepped over, not "truncated".
    reader = Reader(io.BytesIO(head), 0, len(head) if complete else None)
    machine = Machine(reader, default_policy(), observer, _SNIFF_LIMITS, Budget(_SNIFF_LIMITS))
    protocol_header = head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5
    try:
        # After a protocol header a few clean opcodes decide; without one, the whole sample must parse.
        machine.run(_ENOUGH_AFTER_HEADER if protocol_header else 0)
        return True
    except Malformed as exc:
        # Text and binaries often parse for a few opcodes. A real (possibly broken) pickle shows
        # a call, an import after a protocol header, or many valid opcodes up to where data stops.
        if observer.saw_call or (observer.saw_global and (protocol_header or pickle_named)):
            return True
        if not exc.truncated:
            return False
        if protocol_header or pickle_named:
            return machine.opcode_count >= _PLAUSIBLE_AFTER_HEADER
        return not complete and machine.opcode_count >= _PLAUSIBLE_OPCODES
    except LimitExceeded:
        return True
    except RecursionError:
        return observer.saw_call


def _is_bz2(head: bytes) -> bool:
    return (
        len(head) >= 10
        and head[:3] == b"BZh"
        and head[3:4] in b"123456789"
        and head[4:10]
        in (
            b"1AY&SY",
            b"\x17rE8P\x90",
        )
    )


def _is_zlib(head: bytes) -> bool:
    # zlib.compress (and joblib) always write CMF 0x78; the check bytes make the pair divisible by 31.
    if len(head) < 2 or head[0] != 0x78 or (head[0] << 8 | head[1]) % 31 or head[1] & 0x20:
        return False
    try:
        zlib.decompressobj().decompress(head[:4096], 64)
    except zlib.error:
        return False
    return True


def _is_lzma_alone(head: bytes) -> bool:
    # .lzma ("alone") header: properties byte, power-of-two dictionary size, uncompressed size.
    if len(head) < 13 or head[0] != 0x5D:
        return False
    dict_size = int.from_bytes(head[1:5], "little")
    if dict_size < 4096 or dict_size & (dict_size - 1):
        return False
    try:
        lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(head[:4096], 64)
    except lzma.LZMAError:
        return False
    return True


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
