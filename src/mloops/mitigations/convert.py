"""Converting a PyTorch checkpoint (ZIP or legacy), a NumPy ``.npy``/``.npz`` or a joblib file (any of its
compressions) to safetensors without running its pickle: the file is scanned and refused at or above the
threshold, and the pickle is then read by an unpickler whose every global is one of mloops' own inert
stand-ins, never an imported name. Tensors come back as references (storage, offset, shape, strides, dtype);
their bytes are copied straight from the storage members to the output, a chunk at a time, so memory stays
bounded whatever the checkpoint's size. Entries that are not tensors are listed and left out.
"""

from __future__ import annotations

import ast
import json
import math
import os
import pickle
import struct
import zipfile
from collections.abc import Callable, Iterator
from typing import IO, Any, NamedTuple

from ..core import ParseError, Severity
from ..picklevm.joblib_arrays import STRING_DTYPE, STRING_LAYOUT, WRAPPER_CLASSES, typestr_layout
from ..streams import Window, atomic_file
from .safe_load import compressions, opened_for_scan, scan_or_refuse

CHUNK = 1 << 20
MAX_ENTRIES = 1_000_000  # entries of the loaded object walked for tensors
MAX_DEPTH = 64

# torch's storage classes, numpy's type strings -> (safetensors dtype, bytes per element)
STORAGES = {
    "DoubleStorage": ("F64", 8), "FloatStorage": ("F32", 4), "HalfStorage": ("F16", 2),
    "BFloat16Storage": ("BF16", 2), "LongStorage": ("I64", 8), "IntStorage": ("I32", 4),
    "ShortStorage": ("I16", 2), "CharStorage": ("I8", 1), "ByteStorage": ("U8", 1), "BoolStorage": ("BOOL", 1),
    "Float8_e4m3fnStorage": ("F8_E4M3", 1), "Float8_e5m2Storage": ("F8_E5M2", 1),
    "UInt16Storage": ("U16", 2), "UInt32Storage": ("U32", 4), "UInt64Storage": ("U64", 8),
}  # fmt: skip
NUMPY = {
    "f8": ("F64", 8), "f4": ("F32", 4), "f2": ("F16", 2), "i8": ("I64", 8), "i4": ("I32", 4), "i2": ("I16", 2),
    "i1": ("I8", 1), "u8": ("U64", 8), "u4": ("U32", 4), "u2": ("U16", 2), "u1": ("U8", 1), "b1": ("BOOL", 1),
}  # fmt: skip


class ConvertError(ParseError):
    """The file cannot be converted (a format or dtype safetensors has no place for, or a malformed file)."""


class Storage(NamedTuple):
    key: str
    dtype: str
    itemsize: int
    numel: int
    offset: int = 0  # elements into a legacy root storage (a view)


class TensorRef(NamedTuple):
    storage: Storage
    offset: int  # elements into the storage
    shape: tuple[int, ...]
    strides: tuple[int, ...]


class Converted(NamedTuple):
    tensors: int
    size: int  # bytes of tensor data written
    left_out: list[str]  # "key: what it is" of every entry that is not a tensor


def convert(source: str, output: str, fail_on: Severity = Severity.HIGH) -> Converted:
    """Write ``source``'s tensors to ``output`` as safetensors; UnsafeModelError when the scan refuses it."""
    with opened_for_scan(source) as (handle, path):
        formats = scan_or_refuse(path, fail_on)
        if "pytorch-zip" in formats:
            tensors, left_out, read = _torch_zip(handle)
        elif "pytorch-legacy" in formats:
            tensors, left_out, read = _torch_legacy(handle)
        elif formats & {"npy", "numpy-object"}:
            tensors, left_out, read = _numpy(handle)
        elif "joblib" in formats:
            tensors, left_out, read = _joblib(handle, formats)
        else:
            kinds = ", ".join(sorted(formats)) or "unknown"
            raise ConvertError(f"mloops converts PyTorch checkpoints, NumPy arrays and joblib files, not {kinds}")
        if not tensors:
            held = "; ".join(left_out[:3]) + ("; ..." if len(left_out) > 3 else "")
            raise ConvertError(f"no tensor or array to convert (it holds {held or 'nothing'})")
        size = _write(output, tensors, read)
    return Converted(len(tensors), size, left_out)


# ------------------------------------------------------------------ the pickle, read with stand-ins only


class _Stranger:
    """Any global the stand-ins do not cover: callable, buildable and fillable, and inert."""

    name = "object"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Stranger:
        return self

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


def _stranger(name: str) -> type[_Stranger]:
    return type("Stranger", (_Stranger,), {"name": name})


def _rebuild_tensor(storage: Any, offset: Any, shape: Any, strides: Any, *_: Any) -> Any:
    if not isinstance(storage, Storage):
        return _stranger("tensor of an unknown storage")()
    if not (isinstance(offset, int) and _ints(shape) and _ints(strides) and len(shape) == len(strides)):
        raise ConvertError("a tensor's offset, shape or strides are not integers")
    return TensorRef(storage, offset, tuple(shape), tuple(strides))


def _ints(values: Any) -> bool:
    return isinstance(values, tuple | list) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _storage_type(name: str) -> Any:
    return ("storage-type", name)


class _Dict(dict):  # type: ignore[type-arg]
    """An OrderedDict stand-in that takes BUILD's attributes (a state dict's _metadata)."""


STAND_INS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _Dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): lambda data, *_: data,
    ("torch._utils", "_rebuild_parameter_with_state"): lambda data, *_: data,
    ("torch._utils", "_rebuild_from_type_v2"): lambda func, _type, args, _state: func(*args),
    ("torch", "Size"): tuple,
    **{("torch", name): _storage_type(name) for name in STORAGES},
}


class _StandIns(pickle.Unpickler):
    def __init__(self, stream: IO[bytes], storage: Callable[[tuple[Any, ...]], Storage]) -> None:
        super().__init__(stream)
        self._storage = storage

    def find_class(self, module: str, name: str) -> Any:
        return STAND_INS.get((module, name)) or _stranger(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise ConvertError(f"an unknown persistent id {str(pid)[:80]}")
        return self._storage(pid)


def _dtype(storage_type: Any) -> tuple[str, int]:
    name = storage_type[1] if isinstance(storage_type, tuple) and storage_type[:1] == ("storage-type",) else None
    if name not in STORAGES:
        raise ConvertError(f"a storage of a type safetensors has no dtype for ({storage_type})")
    return STORAGES[name]


def _read_pickle(unpickler: _StandIns | _JoblibStandIns) -> Any:
    try:
        return unpickler.load()
    except ConvertError:
        raise
    # a malformed pickle, or stand-ins called with arguments no real checkpoint passes
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, LookupError, RecursionError,
            OverflowError) as exc:  # fmt: skip
        raise ConvertError(f"the pickle could not be read ({type(exc).__name__}: {exc})") from None


# ------------------------------------------------------------------ the containers

Read = Callable[[TensorRef, IO[bytes]], None]


def _torch_zip(handle: IO[bytes]) -> tuple[dict[str, TensorRef], list[str], Read]:
    archive = zipfile.ZipFile(handle)
    names = archive.namelist()
    pickles = [name for name in names if name.endswith("/data.pkl") or name == "data.pkl"]
    if len(pickles) != 1:
        raise ConvertError("not one data.pkl in the checkpoint")
    prefix = pickles[0][: -len("data.pkl")]
    if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder").strip() != b"little":
        raise ConvertError("a big-endian checkpoint (safetensors is little-endian)")

    def storage(pid: tuple[Any, ...]) -> Storage:
        dtype, itemsize = _dtype(pid[1])
        return Storage(str(pid[2]), dtype, itemsize, int(pid[4]))

    with archive.open(pickles[0]) as stream:
        loaded = _read_pickle(_StandIns(stream, storage))
    tensors, left_out = _tensors(loaded)

    def read(tensor: TensorRef, out: IO[bytes]) -> None:
        member = f"{prefix}data/{tensor.storage.key}"
        if member not in names:
            raise ConvertError(f"the storage member {member} is missing")
        with archive.open(member) as stream:
            _copy(tensor, stream, archive.getinfo(member).file_size, out)

    return tensors, left_out, read


def _torch_legacy(handle: IO[bytes]) -> tuple[dict[str, TensorRef], list[str], Read]:
    """torch.save without the ZIP container: magic, protocol and system pickles, the object, the storage keys,
    then each storage's element count and bytes in that order."""
    found: dict[str, Storage] = {}

    def storage(pid: tuple[Any, ...]) -> Storage:
        dtype, itemsize = _dtype(pid[1])
        root = found.setdefault(str(pid[2]), Storage(str(pid[2]), dtype, itemsize, int(pid[4])))
        view = pid[5] if len(pid) > 5 else None
        if view:
            return root._replace(offset=int(view[1]), numel=int(view[2]))
        return root

    for _ in range(3):
        _read_pickle(_StandIns(handle, storage))
    loaded = _read_pickle(_StandIns(handle, storage))
    keys = _read_pickle(_StandIns(handle, storage))
    if not isinstance(keys, list):
        raise ConvertError("the storage key list is missing")
    starts: dict[str, tuple[int, int]] = {}
    for key in keys:
        head = handle.read(8)
        if len(head) != 8 or str(key) not in found:
            raise ConvertError(f"storage {key} is missing or truncated")
        numel = struct.unpack("<q", head)[0]
        starts[str(key)] = (handle.tell(), numel * found[str(key)].itemsize)
        handle.seek(numel * found[str(key)].itemsize, os.SEEK_CUR)
    tensors, left_out = _tensors(loaded)

    def read(tensor: TensorRef, out: IO[bytes]) -> None:
        start, size = starts[tensor.storage.key]
        _copy(tensor, Window(handle, start, size), size, out)

    return tensors, left_out, read


def _numpy(handle: IO[bytes]) -> tuple[dict[str, TensorRef], list[str], Read]:
    if handle.read(6) == b"\x93NUMPY":
        handle.seek(0)
        tensor = _npy_header(handle, "array")
        start = handle.tell()
        size = os.fstat(handle.fileno()).st_size - start
        return {"array": tensor}, [], lambda ref, out: _copy(ref, Window(handle, start, size), size, out)
    handle.seek(0)
    archive = zipfile.ZipFile(handle)
    tensors: dict[str, TensorRef] = {}
    starts: dict[str, int] = {}
    left_out: list[str] = []
    for name in archive.namelist():
        if not name.endswith(".npy"):
            left_out.append(f"{name}: not an array")
            continue
        with archive.open(name) as stream:
            try:
                tensors[name[:-4]] = _npy_header(stream, name)
                starts[name[:-4]] = stream.tell()
            except ConvertError as exc:
                left_out.append(f"{name}: {exc}")

    def read(tensor: TensorRef, out: IO[bytes]) -> None:
        name = tensor.storage.key
        size = archive.getinfo(name + ".npy").file_size - starts[name]
        with archive.open(name + ".npy") as stream:
            _copy(tensor, Window(stream, starts[name], size), size, out)

    return tensors, left_out, read


def _npy_header(stream: IO[bytes], key: str) -> TensorRef:
    """An array's header, read as a Python literal (never evaluated)."""
    magic = stream.read(8)
    if magic[:6] != b"\x93NUMPY" or len(magic) != 8:
        raise ConvertError("not a NumPy array file")
    width = 2 if magic[6] == 1 else 4
    length = int.from_bytes(stream.read(width), "little")
    try:
        header = ast.literal_eval(stream.read(length).decode("latin-1"))
        descr, fortran, shape = header["descr"], header["fortran_order"], tuple(header["shape"])
    except (ValueError, SyntaxError, KeyError, TypeError):
        raise ConvertError("a malformed array header") from None
    if not isinstance(descr, str) or descr[:1] not in "<|" or descr[1:] not in NUMPY or not _ints(shape):
        raise ConvertError(f"dtype {descr!r} has no safetensors equivalent (objects, big-endian, records)")
    dtype, itemsize = NUMPY[descr[1:]]
    numel = math.prod(shape)
    strides = _row_major(shape[::-1])[::-1] if fortran else _row_major(shape)
    return TensorRef(Storage(key.removesuffix(".npy"), dtype, itemsize, numel), 0, shape, strides)


class _ArrayWrapper:
    """joblib's NumpyArrayWrapper: BUILD gives it the array's shape, order and dtype; the bytes follow."""


class _Dtype:
    """numpy.dtype(typestr, align, copy) and the state BUILD gives it (its byte order, size and flags)."""

    def __init__(self, typestr: Any = "", *_: Any) -> None:
        self.typestr = typestr
        self.state: tuple[Any, ...] = ()

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, tuple) else ()

    @property
    def name(self) -> str:
        order = self.state[1] if len(self.state) > 1 and self.state[1] in ("<", ">", "|", "=") else "|"
        scalar = isinstance(self.typestr, type) and issubclass(self.typestr, _Stranger)  # ml_dtypes' bfloat16
        return f"{order}{self.typestr.name if scalar else self.typestr}"

    def layout(self) -> tuple[int, bool] | None:
        return typestr_layout(self.typestr, self.state)


class _StringDtype(_Dtype):
    """NumPy 2's StringDType, pickled as a call of a numpy helper."""

    def layout(self) -> tuple[int, bool] | None:
        return STRING_LAYOUT


class _JoblibStandIns(pickle._Unpickler):  # type: ignore[name-defined]
    """The pure-Python unpickler (the one joblib extends) with the stand-ins; after BUILD gives an array
    wrapper its state, the array's bytes are stepped over and noted, as joblib would read them."""

    dispatch = pickle._Unpickler.dispatch.copy()  # type: ignore[attr-defined]
    stack: list[Any]  # the pure-Python unpickler's own

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.stream = stream

    def find_class(self, module: str, name: str) -> Any:
        dotted = f"{module}.{name}"
        if dotted in WRAPPER_CLASSES:
            return _ArrayWrapper
        if dotted == "numpy.dtype":
            return _Dtype
        if dotted in STRING_DTYPE:
            return _StringDtype
        return STAND_INS.get((module, name)) or _stranger(dotted)

    def persistent_load(self, pid: Any) -> Any:
        raise ConvertError("a persistent id in a joblib file")

    def load_build(self) -> None:
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
        wrapper = self.stack[-1]
        if isinstance(wrapper, _ArrayWrapper):
            self.stack[-1] = self._array(wrapper)

    dispatch[pickle.BUILD[0]] = load_build  # type: ignore[assignment]

    def _array(self, wrapper: _ArrayWrapper) -> Any:
        state = vars(wrapper)
        dtype = state.get("dtype")
        if not isinstance(dtype, _Dtype) or not _ints(state.get("shape")):
            raise ConvertError("a joblib array without a dtype or shape")
        shape: tuple[int, ...] = tuple(state["shape"])
        layout = dtype.layout()  # the emulator's own reading of joblib's layout: one source of truth
        if layout is None:
            raise ConvertError(f"cannot tell the size of a joblib array of dtype {dtype.name}")
        itemsize, has_objects = layout
        if has_objects:  # a nested pickle, read with the stand-ins and left out
            _read_pickle(_JoblibStandIns(self.stream))
            return _stranger("numpy.ndarray (objects)")()
        if state.get("numpy_array_alignment_bytes") is not None:
            padding = self.stream.read(1)
            self.stream.read(int.from_bytes(padding, "little"))
        start = self.stream.tell()
        self.stream.seek(start + math.prod(shape) * itemsize)
        code = dtype.name[1:] if dtype.name[0] in "<|=" else ""
        if code not in NUMPY:
            return _stranger(f"numpy.ndarray (dtype {dtype.name})")()
        name, size = NUMPY[code]
        strides = _row_major(shape[::-1])[::-1] if state.get("order") == "F" else _row_major(shape)
        return TensorRef(Storage(str(start), name, size, math.prod(shape)), 0, shape, strides)


def _joblib(handle: IO[bytes], formats: frozenset[str]) -> tuple[dict[str, TensorRef], list[str], Read]:
    from ..limits import Budget, Limits
    from ..streams import Decompressed

    kinds = compressions(formats)
    if len(kinds) > 1 or "joblib-zfile" in kinds:
        raise ConvertError("a joblib file of an old or nested compression")

    def opened() -> Any:
        handle.seek(0)
        return _Lines(Decompressed(handle, kinds[0], Budget(Limits()))) if kinds else handle

    loaded = _read_pickle(_JoblibStandIns(opened()))
    found, left_out = _tensors(loaded)
    tensors = dict(sorted(found.items(), key=lambda item: int(item[1].storage.key)))  # in stream order
    stream = opened()

    def read(tensor: TensorRef, out: IO[bytes]) -> None:  # forward only: a compressed stream is read once
        start = int(tensor.storage.key)
        size = tensor.storage.numel * tensor.storage.itemsize
        _copy(tensor, Window(stream, start, size), size, out)

    return tensors, left_out, read


class _Lines:
    """A decompressed stream with the readline the pure-Python unpickler asks for (text opcodes only)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.read = stream.read
        self.seek = stream.seek
        self.tell = stream.tell

    def readline(self) -> bytes:
        line = bytearray()
        while not line.endswith(b"\n"):
            byte = self.stream.read(1)
            if not byte:
                break
            line += byte
        return bytes(line)


# ------------------------------------------------------------------ tensors and the output


def _tensors(loaded: Any) -> tuple[dict[str, TensorRef], list[str]]:
    """Every tensor of the loaded object by its dotted key, and what else it held."""
    tensors: dict[str, TensorRef] = {}
    left_out: list[str] = []
    pending: list[tuple[str, Any, int]] = [("", loaded, 0)]
    walked = 0
    while pending:
        key, value, depth = pending.pop()
        walked += 1
        if walked > MAX_ENTRIES or depth > MAX_DEPTH:
            raise ConvertError(f"the checkpoint nests more than {MAX_DEPTH} levels or {MAX_ENTRIES} entries")
        if isinstance(value, TensorRef):
            tensors[key or "tensor"] = value
        elif isinstance(value, dict):
            pending += [(f"{key}.{k}" if key else str(k), v, depth + 1) for k, v in reversed(value.items())]
        elif isinstance(value, list | tuple) and any(_holds_tensor(v) for v in value):
            pending += [(f"{key}.{i}" if key else str(i), v, depth + 1) for i, v in reversed(list(enumerate(value)))]
        else:
            left_out.append(f"{key or '(the whole file)'}: {_kind(value)}")
    return tensors, left_out


def _holds_tensor(value: Any) -> bool:
    return isinstance(value, TensorRef | dict | list | tuple)


def _kind(value: Any) -> str:
    if isinstance(value, _Stranger):
        return f"an object of {value.name}"
    if isinstance(value, type) and issubclass(value, _Stranger):
        return f"a reference to {value.name}"
    return type(value).__name__


def _row_major(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides = []
    step = 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _write(output: str, tensors: dict[str, TensorRef], read: Read) -> int:
    header: dict[str, Any] = {"__metadata__": {"format": "pt", "converted_by": "mloops"}}
    position = 0
    for key, tensor in tensors.items():
        size = math.prod(tensor.shape) * tensor.storage.itemsize
        header[key] = {
            "dtype": tensor.storage.dtype,
            "shape": list(tensor.shape),
            "data_offsets": [position, position + size],
        }
        position += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    with atomic_file(output) as out:
        out.write(struct.pack("<Q", len(text)) + text)
        for tensor in tensors.values():
            read(tensor, out)
    return position


def _copy(tensor: TensorRef, stream: Any, available: int, out: IO[bytes]) -> None:
    """The tensor's elements in row-major order, from its storage's bytes (strided views gathered run by run)."""
    storage, shape = tensor.storage, tensor.shape
    itemsize = storage.itemsize
    if math.prod(shape) == 0:
        return
    base = storage.offset + tensor.offset
    last = base + sum((size - 1) * stride for size, stride in zip(shape, tensor.strides, strict=True))
    if base < 0 or min(tensor.strides, default=0) < 0 or (last + 1) * itemsize > available:
        raise ConvertError(f"a tensor reaches outside its storage ({storage.key})")
    if tensor.strides == _row_major(shape):
        _copy_run(stream, base * itemsize, math.prod(shape) * itemsize, out)
        return
    inner = shape[-1] if shape and tensor.strides[-1] == 1 else 1
    outer = shape[:-1] if inner > 1 else shape
    for start in _starts(outer, tensor.strides[: len(outer)], base):
        _copy_run(stream, start * itemsize, inner * itemsize, out)


def _starts(shape: tuple[int, ...], strides: tuple[int, ...], base: int) -> Iterator[int]:
    index = [0] * len(shape)
    while True:
        yield base + sum(i * s for i, s in zip(index, strides, strict=True))
        axis = len(shape) - 1
        while axis >= 0:
            index[axis] += 1
            if index[axis] < shape[axis]:
                break
            index[axis] = 0
            axis -= 1
        if axis < 0:
            return


def _copy_run(stream: Any, start: int, size: int, out: IO[bytes]) -> None:
    stream.seek(start)
    while size:
        chunk = stream.read(min(size, CHUNK))
        if not chunk:
            raise ConvertError("a storage is shorter than its tensors")
        out.write(chunk)
        size -= len(chunk)
