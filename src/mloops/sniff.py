"""Identify formats by their bytes; a file name is only a hint.

``sniff`` may return several formats for one stream: a file that is both a pickle
and a ZIP (data prepended to an archive) is analyzed both ways, because different
loaders read it differently.
"""

from __future__ import annotations

from . import registry
from .sources.compressed import without_compression

HEAD_BYTES = 64 * 1024


def has_model_extension(name: str) -> bool:
    """Whether a file of this name is expected to be a model (its content is then reported when no format
    claims it); the extensions are the formats' own, from the registry."""
    return without_compression(name).lower().endswith(registry.model_extensions())


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


def sniff(head: bytes, name: str = "") -> list[str]:
    """Formats the first bytes match, most specific first; empty when none.

    ``head`` is the start of the stream, at most HEAD_BYTES long; shorter means complete.
    ``name`` is the file or member name, a hint only where a format has no magic bytes.
    Magic prefixes are tried first, then each format's detector in the registry's order.
    """
    for magic, label in registry.magic():
        if head.startswith(magic):
            return [label]
    for fmt in registry.detectors():
        assert fmt.detect is not None
        if fmt.detect(head, name):
            return [fmt.label]
    return []
