"""Keras v3 archives (.keras): a ZIP holding config.json, metadata.json and model.weights.h5.

Loading rebuilds the model from config.json, so that member is judged as a Keras config (Lambda
bytecode, foreign modules, dangerous Keras functions). The weights file is found by its content
(HDF5) and the other members are sniffed as usual, so a pickle hidden in the archive still reaches
the pickle engine.
"""

from __future__ import annotations

from .. import rules
from ..context import Handler, Item, ScanContext
from ..registry import Format, Layout
from . import keras_config

CONFIG_MEMBER = "config.json"  # saving_lib reads exactly this name at the archive's root


def member_handler(name: str) -> Handler | None:
    return analyze_config if name == CONFIG_MEMBER else None


def analyze_config(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "keras-config")
    item.stream.seek(0)
    data = item.stream.read(keras_config.MAX_CONFIG_BYTES + 1)
    try:
        config = keras_config.parse(data)
    except keras_config.ConfigError as exc:
        ctx.report(rules.MALFORMED.finding(item.location, f"config.json is not JSON Keras can read: {exc}"))
        return
    keras_config.judge(ctx, item, config, CONFIG_MEMBER)


FORMATS = (
    Format(
        "keras",
        "code",
        "Keras v3 archive (.keras)",
        extensions=(".keras",),
        layout=Layout("zip", 40, lambda names: {"config.json", "metadata.json"} <= set(names), member_handler),
    ),
    Format("keras-config", "code", "Keras model config"),
)
