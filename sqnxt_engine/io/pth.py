"""Read PyTorch `.pth` state dicts without torch and without running pickled code.

A `.pth` file is a pickle whose tensors point at raw storages kept beside it: in a zip
archive (`<dir>/data.pkl` plus `<dir>/data/<key>`, torch >= 1.6) or, in the legacy format,
appended to the file after the pickle. Pickles can call any importable function, so the
unpickler here admits only the globals that `torch.load(weights_only=True)` admits for
plain tensors, each replaced by a NumPy stand-in. Any other global is refused in
`find_class`, which runs when the pickle names the global, before anything can call it.

Tensors are first built as `_TensorRef`s (storage, offset, shape, strides): the legacy
format stores the raw bytes only after the pickle, so arrays are made once all storages
are read, with bounds checked so a corrupt file cannot make NumPy read past a storage.

Sizes are bounded before anything is inflated or allocated (limits.py): the zip members'
declared sizes (a zip bomb is refused unread), a legacy storage's element count against the
bytes left in the file, every tensor's element count (a tensor with zero strides and a huge
shape would otherwise be materialised), and the nesting of the pickled containers. Floating
tensors must be finite.
"""
from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from math import prod
from pathlib import Path

import numpy as np

from .. import limits
from ..errors import UserError
from .files import read_regular
from .npz import check_zip_members, read_member

# torch dtype name -> NumPy dtype. bfloat16 has no NumPy dtype: read as its raw 16 bits
# and widened to float32 (exact: bfloat16 is the top half of a float32).
_DTYPES = {
    "float64": "<f8", "float32": "<f4", "float16": "<f2", "bfloat16": "<u2",
    "int64": "<i8", "int32": "<i4", "int16": "<i2", "int8": "i1", "uint8": "u1",
    "uint16": "<u2", "uint32": "<u4", "uint64": "<u8", "bool": "?",
}
# Legacy typed storage classes (`torch.FloatStorage`...) name their element type.
_STORAGES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool",
}
# Keys under which training checkpoints nest the state dict, tried in this order.
_NESTED = ("state_dict", "model_state_dict", "model", "net", "module")

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


@dataclass(frozen=True)
class _DType:
    """Stand-in for a torch dtype or a typed storage class: just the element type's name."""
    name: str


@dataclass
class _Storage:
    key: str
    dtype: str
    offset: int = 0  # legacy storage views only: where the view starts in its root and
    size: int | None = None  # how many elements it spans
    data: np.ndarray | None = None  # filled in once the raw bytes are read


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple
    stride: tuple
    dtype: str  # may differ from the storage's (v3 tensors view untyped byte storages)


def _rebuild_tensor(storage, offset, size, stride, *_):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("tensor without a storage")
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride), storage.dtype)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, *_):
    ref = _rebuild_tensor(storage, offset, size, stride)
    if not isinstance(dtype, _DType):
        raise pickle.UnpicklingError("tensor without a dtype")
    ref.dtype = dtype.name
    return ref


def _rebuild_parameter(data, *_):
    return data  # a Parameter is its tensor plus requires_grad, which inference ignores


def _rebuild_from_type(func, new_type, args, state):
    return func(*args)  # tensor subclasses and attributes: keep the plain tensor


def _latin1_bytes(text, encoding="latin1"):
    # protocol-2 pickles spell bytes as _codecs.encode(str, "latin1"); no other codec
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError("_codecs.encode only for latin1 strings")
    return text.encode("latin1")


_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch", "Tensor"): _DType("tensor"),
    ("torch._tensor", "Tensor"): _DType("tensor"),
    ("torch.nn.parameter", "Parameter"): _DType("tensor"),
    ("torch", "Size"): tuple,
    ("torch.storage", "UntypedStorage"): _DType("uint8"),
    ("torch", "UntypedStorage"): _DType("uint8"),
    ("_codecs", "encode"): _latin1_bytes,
    **{("torch", name): _DType(dt) for name, dt in _STORAGES.items()},
    **{("torch", dt): _DType(dt) for dt in _DTYPES},
}


def _key(k):
    """A dict key from the file: a string or an integer. Anything else (a tuple, say) would be
    hashed inside the unpickler, and a small pickle of shared tuples takes 10^40 steps to hash."""
    if type(k) not in (str, int):
        raise pickle.UnpicklingError(f"a dict key of type {type(k).__name__}, not a string or an integer")
    return k


class _Unpickler(pickle._Unpickler):
    """The pure-Python unpickler, so that dict keys are checked before they are hashed (the C one
    hashes them where nothing can intervene) and sets, which hash their elements, are refused.
    Checkpoint pickles are small (the tensors' bytes are kept beside them), so speed is no issue."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, storages: dict[str, _Storage]):
        super().__init__(file)
        self.storages = storages

    def _load_setitem(self):
        value, key = self.stack.pop(), self.stack.pop()
        self.stack[-1][_key(key)] = value

    def _load_setitems(self):
        items = self.pop_mark()
        d = self.stack[-1]
        for i in range(0, len(items) - 1, 2):
            d[_key(items[i])] = items[i + 1]

    def _load_dict(self):
        items = self.pop_mark()
        self.append({_key(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)})

    def _no_sets(self):
        raise pickle.UnpicklingError("sets are not part of a state dict")

    dispatch[pickle.SETITEM[0]] = _load_setitem
    dispatch[pickle.SETITEMS[0]] = _load_setitems
    dispatch[pickle.DICT[0]] = _load_dict
    for _op in (pickle.EMPTY_SET, pickle.ADDITEMS, pickle.FROZENSET):
        dispatch[_op[0]] = _no_sets

    def find_class(self, module, name):
        try:
            target = _GLOBALS[(module, name)]
        except KeyError:
            raise UserError(f"refuses to load global {module}.{name} "
                            "(only plain tensors are read; no pickled code is run)") from None
        # A fresh object per use: pickle's BUILD opcode can set attributes on what a global
        # resolves to, and must not change the stand-ins that later loads share.
        if isinstance(target, _DType):
            return _DType(target.name)
        if isinstance(target, type):
            return target  # OrderedDict, tuple: built-in types refuse new attributes
        return lambda *args: target(*args)

    def persistent_load(self, pid):
        # ("storage", storage type or dtype, key, location, numel[, legacy view info])
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _DType) and pid[1].name in _DTYPES):
            raise pickle.UnpicklingError(f"unsupported persistent id of type {type(pid).__name__}")
        if not isinstance(pid[2], str):  # str() of shared nested lists can take forever
            raise pickle.UnpicklingError("a storage key that is not a string")
        key, dtype = pid[2], pid[1].name
        view = pid[5] if len(pid) > 5 else None
        if view is not None:  # pre-1.0 legacy files: a storage that views another one
            view_key, offset, size = view
            self.storages.setdefault(key, _Storage(key, dtype))
            return self.storages.setdefault(view_key, _Storage(key, dtype, int(offset), int(size)))
        return self.storages.setdefault(key, _Storage(key, dtype))


def read_pth(path) -> dict[str, np.ndarray]:
    """The tensors of a `.pth` state dict as NumPy arrays (copies), keyed by their names.

    bfloat16 becomes float32; every other dtype is kept. A checkpoint that nests the state
    dict (under "state_dict", "model", ...) is unwrapped. Raises UserError naming the file
    for a missing, corrupt or unsafe file."""
    path = Path(path)
    try:
        # From memory (the file is within max_file_bytes): a length field in a pickle opcode or a
        # zip directory then costs no more than the bytes that are there, whereas a file's
        # read(n) allocates n bytes up front.
        with io.BytesIO(read_regular(path)) as f:
            head = f.read(4)
            f.seek(0)
            if head.startswith(b"PK\x03\x04"):
                obj, storages = _read_zip(f)
            else:
                obj, storages = _read_legacy(f)
            out = _state_dict(_resolve(obj, storages))
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    except Exception as e:  # anything else means the file is not what it claims to be
        raise UserError(f"{path}: not a readable PyTorch file ({type(e).__name__}: {e})") from None
    return out


def _read_zip(f):
    with zipfile.ZipFile(f) as z:
        members = check_zip_members(z.infolist())  # before anything is inflated
        pkls = [n for n in members if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pkls:
            raise UserError("zip file without data.pkl: not a torch.save file")
        prefix = pkls[0][: -len("data.pkl")]

        def member(name):
            if name not in members:
                raise UserError(f"zip member {name!r:.80} is missing")
            return read_member(z, members[name])
        order = "<"
        if prefix + "byteorder" in members:
            order = "<" if member(prefix + "byteorder").strip() == b"little" else ">"
        storages: dict[str, _Storage] = {}
        obj = _Unpickler(io.BytesIO(member(pkls[0])), storages).load()
        for key, s in storages.items():
            s.data = _storage_array(member(f"{prefix}data/{key}"), s.dtype, order)
    return obj, storages


def _read_legacy(f):
    # Three small pickles (magic number, protocol version, sys info), the main one,
    # the list of storage keys, then per key: int64 element count and the raw elements.
    safe = lambda: _Unpickler(f, {}).load()  # noqa: E731 - the header pickles hold no tensors
    try:
        magic = safe()
    except UserError:
        raise
    except Exception:  # not a pickle at all
        magic = None
    if magic != _LEGACY_MAGIC:
        raise UserError("not a PyTorch file (neither a zip archive nor the legacy format)")
    safe()
    sys_info = safe()
    order = "<" if not isinstance(sys_info, dict) or sys_info.get("little_endian", True) else ">"
    storages: dict[str, _Storage] = {}
    obj = _Unpickler(f, storages).load()
    keys = safe()
    for key in keys:
        if not isinstance(key, str) or key not in storages:
            raise UserError("the storage key list names a storage the pickle does not use")
        s = storages[key]
        itemsize = np.dtype(_DTYPES[s.dtype]).itemsize
        (numel,) = struct.unpack(order + "q", f.read(8))
        left = len(f.getbuffer()) - f.tell()
        if not 0 <= numel * itemsize <= left:  # before reading: f.read(n) allocates n bytes
            raise UserError(f"storage {key} declares {numel:,} elements; the file holds {left:,} bytes more")
        raw = f.read(numel * itemsize)
        if numel < 0 or len(raw) != numel * itemsize:
            raise UserError(f"storage {key} is truncated")
        s.data = _storage_array(raw, s.dtype, order)
    _share_views(storages)
    return obj, storages


def _share_views(storages):
    """Legacy storage views get their slice of their root's data."""
    for s in storages.values():
        root = storages[s.key]
        if s is not root:
            s.data = root.data[s.offset:s.offset + s.size]


def _storage_array(raw: bytes, dtype: str, order: str) -> np.ndarray:
    dt = np.dtype(_DTYPES[dtype])
    if dt.itemsize > 1:
        dt = dt.newbyteorder(order)
    a = np.frombuffer(raw, dtype=dt, count=len(raw) // dt.itemsize)
    return a.astype(dt.newbyteorder("="), copy=False)


def _tensor(ref: _TensorRef) -> np.ndarray:
    base = ref.storage.data
    if base is None:
        raise UserError(f"storage {ref.storage.key} has no data")
    if ref.dtype != ref.storage.dtype:  # a typed view of an untyped (byte) storage
        base = base.view(np.dtype(_DTYPES[ref.dtype]))
    if ref.dtype == "bfloat16":
        base = (base.astype(np.uint32) << 16).view(np.float32)
    shape, stride = ref.shape, ref.stride
    if (not all(isinstance(v, int) for v in shape + stride + (ref.offset,))
            or len(shape) != len(stride) or min(shape + stride, default=0) < 0 or ref.offset < 0):
        raise UserError("tensor with a malformed shape or strides")
    limits.check(f"tensor of shape {shape!r:.80}: elements", prod(shape), "max_tensor_elements")
    if 0 in shape:
        return np.zeros(shape, base.dtype)
    last = ref.offset + sum((n - 1) * s for n, s in zip(shape, stride))
    if last >= base.size:
        raise UserError("tensor reaches past the end of its storage")
    view = np.lib.stride_tricks.as_strided(
        base[ref.offset:], shape, [s * base.itemsize for s in stride], writeable=False)
    return np.array(view)  # an owned, contiguous copy: nothing keeps the file's buffers alive


def _resolve(obj, storages, depth=0, done=None):
    """Tensors made from their references, through dicts, lists and tuples. Each container is
    resolved once (`done`, by identity): a pickle's memo lets a small file reference one list
    ten times at each of forty levels, which a plain walk would expand to 10^40 entries."""
    done = {} if done is None else done
    if id(obj) in done:
        return done[id(obj)][1]
    if depth > limits.current().max_nesting:
        raise limits.exceeded("nesting of the pickled containers", depth, "max_nesting")
    if isinstance(obj, _TensorRef):
        out = _tensor(obj)
        if out.dtype.kind == "f" and not np.isfinite(out).all():
            raise UserError(f"a tensor of shape {out.shape} holds NaN or infinite values")
    elif isinstance(obj, dict):
        out = {k: _resolve(v, storages, depth + 1, done) for k, v in obj.items()}
    elif isinstance(obj, (list, tuple)):
        out = type(obj)(_resolve(v, storages, depth + 1, done) for v in obj)
    else:
        return obj
    done[id(obj)] = (obj, out)  # keeps obj alive, so that its id is not reused
    return out


def _state_dict(obj) -> dict[str, np.ndarray]:
    """Unwrap a checkpoint to its state dict and keep only the tensors."""
    while isinstance(obj, dict) and not _has_tensors(obj):
        inner = next((obj[k] for k in _NESTED if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict) or not _has_tensors(obj):
        raise UserError("holds no state dict of tensors")
    return {str(k): v for k, v in obj.items() if isinstance(v, np.ndarray)}


def _has_tensors(d: dict) -> bool:
    return any(isinstance(v, np.ndarray) for v in d.values())
