"""HDF5 files: legacy Keras H5 models, and weights or data files that only hold arrays.

A Keras H5 model keeps its architecture as JSON in the root group's ``model_config`` attribute, and
its loss, metrics and optimizer in ``training_config``; loading rebuilds both, running Lambda layer
bytecode and resolving every named class. Those configs are judged like a .keras config.json. The
bytes around the HDF5 data (a user block before it, anything after its recorded end) are scanned
too: pickle.load and torch.load read such a file from its first byte.
"""

from __future__ import annotations

from .. import rules
from ..context import Item, ScanContext
from ..limits import LimitExceeded
from ..parsers import hdf5
from ..registry import Format
from ..streams import Window
from . import keras_config, pickle_stream

CONFIG_ATTRIBUTES = ("model_config", "training_config")


def detect(head: bytes, name: str) -> bool:
    return hdf5.find_superblock(head) is not None


def analyze(ctx: ScanContext, item: Item) -> None:
    size = item.size if item.size is not None else item.stream.seek(0, 2)
    item.stream.seek(0)
    start = hdf5.find_superblock(item.stream.read(hdf5.SEARCH_BYTES))
    try:
        if start is None:
            raise hdf5.HDF5Error("no HDF5 signature")
        file = hdf5.File(item.stream, size, ctx.budget.check_time, start)
    except hdf5.HDF5Error as exc:
        ctx.record(item, "hdf5")
        _report_unreadable(ctx, item, exc)
        return
    problem = None
    try:
        attributes = file.attributes("/")
    except hdf5.HDF5Error as exc:
        attributes, problem = [], exc
    except LimitExceeded:
        ctx.record(item, "hdf5")
        raise
    is_model = any(attribute.name == "model_config" for attribute in attributes)
    ctx.record(item, "keras-h5" if is_model else "hdf5")
    if problem is not None:
        _report_unreadable(ctx, item, problem)
    _check_extent(ctx, item, file.superblock, size)
    for name in CONFIG_ATTRIBUTES:
        found = [attribute for attribute in attributes if attribute.name == name]
        if len(found) > 1:
            message = f"the root group holds {len(found)} attributes named {name!r}; readers may pick either"
            ctx.report(rules.MALFORMED.finding(item.location, message, {"attribute": name}))
        for attribute in found:
            _judge_attribute(ctx, item, attribute)


def _report_unreadable(ctx: ScanContext, item: Item, problem: hdf5.HDF5Error) -> None:
    if isinstance(problem, hdf5.Unsupported):
        message = f"HDF5 file uses a structure mloops cannot read ({problem}); its model config was not verified"
        ctx.report(rules.UNRECOGNIZED.finding(item.location, message, {"feature": str(problem)}))
    else:
        ctx.report(rules.MALFORMED.finding(item.location, f"HDF5 structure is broken: {problem}"))


def _check_extent(ctx: ScanContext, item: Item, superblock: hdf5.Superblock, size: int) -> None:
    """Bytes outside the HDF5 data: a truncated file, a user block, or data after the recorded end."""
    end = superblock.end_of_file
    if size < end:
        message = f"HDF5 file is truncated: its superblock records {end} bytes, the file has {size}"
        ctx.report(rules.MALFORMED.finding(item.location, message, {"recorded_end": str(end), "size": str(size)}))
    if superblock.offset:
        _scan_user_block(ctx, item, superblock.offset)
    if size > end:
        message = f"{size - end} bytes follow the end of the HDF5 data (byte {end}); HDF5 readers ignore them"
        evidence = {"recorded_end": str(end), "size": str(size)}
        ctx.report(rules.TRAILING_DATA.finding(item.location.at(end), message, evidence))
        ctx.scan(item.child(Window(item.stream, end, size - end), "trailing data", size - end, "trailing data"))


def _scan_user_block(ctx: ScanContext, item: Item, length: int) -> None:
    """The bytes before the superblock. A pickle there is read by pickle.load and torch.load from the
    file's first byte, on through the HDF5 data: analyze the whole file as that pickle."""
    item.stream.seek(0)
    head = item.stream.read(2)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        pickle_stream.analyze(ctx, item)
    else:
        ctx.scan(item.child(Window(item.stream, 0, length), "user block", length, "user block"))


def _judge_attribute(ctx: ScanContext, item: Item, attribute: hdf5.Attribute) -> None:
    if attribute.strings is None or attribute.shape != ():
        message = f"{attribute.name} is not a single string, as Keras writes it"
        evidence = {"attribute": attribute.name, "type_class": str(attribute.type_class), "shape": str(attribute.shape)}
        ctx.report(rules.MALFORMED.finding(item.location, message, evidence))
    for text in attribute.strings or ():
        try:
            config = keras_config.parse(text.decode("utf-8"))
        except (UnicodeDecodeError, keras_config.ConfigError) as exc:
            message = f"{attribute.name} is not JSON Keras can read: {exc}"
            ctx.report(rules.MALFORMED.finding(item.location, message, {"attribute": attribute.name}))
            continue
        keras_config.judge(ctx, item, config, attribute.name)


FORMATS = (
    Format("hdf5", "safe", "HDF5 data", handler=analyze, detect=detect, order=30, extensions=(".h5", ".hdf5")),
    Format("keras-h5", "code", "Keras H5 model"),
)
