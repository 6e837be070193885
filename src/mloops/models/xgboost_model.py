"""XGBoost models saved by ``save_model``: JSON (``model.json``) or Universal Binary JSON (``model.ubj``).

Both are data only: trees, parameters and the version, read by XGBoost's own C++ parser; nothing
in them names code. What is checked is that the document is complete and well formed and has the
``learner`` and ``version`` entries every saved model has. Multi-gigabyte models are read as a
stream, never held in memory.
"""

from __future__ import annotations

import re

from .. import rules
from ..context import Item, ScanContext
from ..parsers import json_scan, ubjson_walk
from ..parsers.forward_reader import DecodeError, ForwardReader
from ..registry import Format

REQUIRED_KEYS = ("learner", "version")
# Keys of XGBoost's learner object; JSON output sorts them, so one of these comes first.
LEARNER_KEYS = (
    b"attributes",
    b"feature_names",
    b"feature_types",
    b"gradient_booster",
    b"learner_model_param",
    b"learner_train_param",
    b"objective",
)

_JSON_START = re.compile(rb'\s*\{\s*"learner"\s*:\s*\{\s*"(' + b"|".join(LEARNER_KEYS) + rb')"')
# UBJSON: '{', the key length as any integer type (XGBoost writes int64), "learner", then an object.
_UBJ_START = re.compile(rb"\{(?:[iU]\x07|I\x00\x07|l\x00{3}\x07|L\x00{7}\x07)learner\{")


def detect(head: bytes, name: str) -> bool:
    return _format(head) is not None


def _format(head: bytes) -> str | None:
    if _UBJ_START.match(head):
        return "xgboost-ubj"
    if _JSON_START.match(head):
        return "xgboost-json"
    return None


def analyze(ctx: ScanContext, item: Item) -> None:
    item.stream.seek(0)
    label = _format(item.stream.read(4096)) or "xgboost-json"
    ctx.record(item, label)
    kind = "UBJSON" if label == "xgboost-ubj" else "JSON"
    try:
        keys, end, trailing_at = _check_ubj(ctx, item) if label == "xgboost-ubj" else _check_json(ctx, item)
    except DecodeError as exc:
        problem = "truncated" if exc.truncated else "malformed"
        ctx.report(rules.MALFORMED.finding(item.location.at(exc.offset), f"XGBoost {kind} {problem}: {exc.message}"))
        return
    missing = [key for key in REQUIRED_KEYS if key not in keys]
    if missing:
        ctx.report(
            rules.MALFORMED.finding(
                item.location.at(end - 1),
                f"XGBoost {kind} model lacks {', '.join(missing)}",
                {"top_level_keys": ", ".join(keys[:20])},
            )
        )
    if trailing_at is not None:
        ctx.report(
            rules.TRAILING_DATA.finding(item.location.at(trailing_at), f"bytes follow the XGBoost {kind} document")
        )


def _check_json(ctx: ScanContext, item: Item) -> tuple[list[str], int, int | None]:
    """Top-level keys, where the document ends, and where bytes after it start."""
    summary = json_scan.scan_object(item.stream, ctx.budget.check_time)
    return summary.keys, summary.end, summary.trailing_at


def _check_ubj(ctx: ScanContext, item: Item) -> tuple[list[str], int, int | None]:
    reader = ForwardReader(item.stream, item.size)
    keys = ubjson_walk.walk_object(reader, ctx.budget.check_time)
    end = reader.pos
    return keys, end, None if reader.at_end() else end


FORMATS = (
    Format("xgboost", "safe", "XGBoost model", handler=analyze, detect=detect, order=80),
    Format("xgboost-json", "safe", "XGBoost JSON"),
    Format("xgboost-ubj", "safe", "XGBoost UBJSON"),
)
