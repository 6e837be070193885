"""joblib writes NumPy array bytes straight into the pickle stream, after each array wrapper.

joblib's unpickler, after BUILD of a NumpyArrayWrapper, reads the array from the
stream itself: an optional padding-length byte and padding, then the raw data; or,
for object arrays, a complete nested pickle. The emulator has to step over the same
bytes, or every joblib file would look malformed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..limits import LimitExceeded
from .values import Call, Global, Opaque, Seq
from .vm import Machine, Malformed

WRAPPER_CLASSES = (
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
)

_ITEMSIZE = re.compile(r"^[<>=|]?[a-zA-Z]+(\d+)")
# NumPy 2's StringDType pickles as the result of this helper, not as numpy.dtype(typestr).
STRING_DTYPE = tuple(f"{module}._internal._convert_to_stringdtype_kwargs" for module in ("numpy._core", "numpy.core"))
STRING_LAYOUT = (16, True)  # variable-width strings: joblib pickles such an array whole, as it does object arrays


def step_over_array(machine: Machine, target: Any, state: Any) -> Any:
    if not isinstance(state, Seq) or state.kind != "dict":
        raise Malformed("joblib array wrapper without a state dictionary", machine.offset)
    layout = dtype_layout(state.get("dtype"))
    count = _element_count(state.get("shape"))
    if layout is None or count is None:
        raise Malformed("cannot tell the size of the joblib array data that follows", machine.offset)
    itemsize, has_object = layout
    machine.read_outside_frames()
    if has_object:
        if machine.depth + 1 > machine.limits.max_depth:
            raise LimitExceeded("joblib object arrays nested too deeply")
        inner = Machine(
            machine.reader,
            machine.policy,
            machine.observer,
            machine.limits,
            machine.budget,
            machine.build_hooks,
            machine.depth + 1,
        )
        inner.run()
        return Opaque("object array")
    if state.get("numpy_array_alignment_bytes") is not None:
        machine.reader.skip(machine.reader.byte())
    machine.reader.skip(count * itemsize)
    return Opaque("array")


def dtype_layout(value: Any) -> tuple[int, bool] | None:
    """(itemsize, holds Python objects) of a pickled numpy.dtype(...) with its BUILD state."""
    if not isinstance(value, Call) or not isinstance(value.args, Seq) or not value.args.items:
        return None
    if isinstance(value.func, Global) and value.func.dotted in STRING_DTYPE:
        return STRING_LAYOUT
    return typestr_layout(value.args.items[0], value.state.items if isinstance(value.state, Seq) else [])


def typestr_layout(typestr: Any, state: Sequence[Any]) -> tuple[int, bool] | None:
    """(itemsize, holds Python objects) of numpy.dtype(typestr) given the state BUILD sets on it."""
    flags = state[7] if len(state) > 7 and isinstance(state[7], int) else 0
    elsize = state[5] if len(state) > 5 and isinstance(state[5], int) else -1
    if not isinstance(typestr, str):
        # numpy.dtype(<a registered scalar type>) (ml_dtypes' bfloat16, float8 ...): the state has the size
        return (elsize, bool(flags & 1)) if elsize > 0 else None
    if typestr.lstrip("<>=|").startswith("O") or flags & 1:  # NPY_ITEM_REFCOUNT: holds objects
        return 8, True
    if elsize > 0:
        return elsize, False
    match = _ITEMSIZE.match(typestr)
    return (int(match.group(1)), False) if match else None


def _element_count(shape: Any) -> int | None:
    if not isinstance(shape, Seq) or shape.dropped:
        return None
    count = 1
    for dim in shape.items:
        if not isinstance(dim, int) or dim < 0:
            return None
        count *= dim
    return count


def check_object_array_state(machine: Machine, target: Any, state: Any) -> Any:
    """ndarray.__setstate__ of an object array trusts its list to hold one item per element: a
    shorter list makes NumPy read past it (a crash of the loader, memory corruption)."""
    if not isinstance(state, Seq) or state.kind != "tuple" or len(state.items) != 5:
        return target
    _, shape, dtype, _, data = state.items
    layout = dtype_layout(dtype)
    count = _element_count(shape)
    if layout is None or not layout[1] or count is None or not isinstance(data, Seq) or data.kind != "list":
        return target
    if data.count != count:
        message = f"object array state holds {data.count} items for {count} elements: NumPy reads past the list"
        machine.observer.anomaly(machine.offset, message, "array-state")
    return target
