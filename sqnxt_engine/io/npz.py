"""Read `.npz` archives of plain numeric arrays from files that may come from someone else.

`numpy.load` trusts the archive: an `.npz` is a zip file whose members are `.npy` files, and a
member may be compressed a thousandfold (a few kilobytes that inflate to gigabytes), encrypted,
stored with an unknown method, or carry a header declaring any dtype and shape. Here the
container is checked before anything is inflated or allocated:

- the file is a regular file of at most max_file_bytes, and a zip archive;
- every member is a `.npy` name that appears once, not encrypted, stored or deflated, and the
  sizes the members declare add up to at most max_file_bytes (a member's stream is read no
  further than its declared size, and zipfile checks its CRC);
- every `.npy` header (a Python literal, parsed by numpy without evaluating code, at most
  10,000 bytes) declares a plain numeric dtype (bool, ints, floats) or, where the caller allows
  it, a unicode string; a shape with at most max_tensor_elements elements; and exactly as many
  data bytes as the member holds.

Only then is the member's data read into an array. Errors are UserErrors naming the member.
"""
from __future__ import annotations

import io
import warnings
import zipfile
import zlib
from math import prod

import numpy as np

from .. import limits
from ..errors import UserError
from .files import read_bounded, read_regular

_NUMERIC_KINDS = "biuf"
_HEADER_MAX = 10_000


def read_npz(path, text_members: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The arrays of an `.npz` file by member name (without `.npy`). Members named in
    `text_members` may instead be unicode strings. UserError (without the file name: callers add
    it) for anything that is not a well-formed archive within the limits."""
    # from memory: zipfile reads its directory with read(n), n from the file, which a file
    # object allocates up front; a BytesIO returns only what is there
    with io.BytesIO(read_regular(path)) as f:
        head = f.read(6)
        f.seek(0)
        if head.startswith(b"\x93NUMPY"):
            raise UserError("a bare .npy array, not an .npz archive")
        if head.startswith(b"\x80"):
            raise UserError("a pickle, not an .npz archive (reading it would need unpickling, "
                            "which this loader never does)")
        if not head.startswith(b"PK"):
            raise UserError("not an .npz archive (no zip signature)")
        try:
            with zipfile.ZipFile(f) as z:
                infos = check_zip_members(z.infolist(), ".npy")
                return {name[:-4]: parse_npy(read_member(z, info), f"member {name!r:.80}",
                                             name[:-4] in text_members)
                        for name, info in infos.items()}
        except (zipfile.BadZipFile, zlib.error) as e:
            raise UserError(f"corrupt zip archive ({e})") from None
        except (zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, OSError,
                ValueError) as e:  # ValueError: a directory offset that seeks before the start
            raise UserError(f"unreadable zip archive ({e})") from None


def check_zip_members(infos, suffix: str = "") -> dict[str, zipfile.ZipInfo]:
    """The members of a zip archive by name, once checked: each ends with `suffix`, appears once,
    is neither encrypted nor compressed by another method than store or deflate, and the sizes
    they declare add up to at most max_file_bytes. Nothing has been inflated yet."""
    limits.check("number of zip members", len(infos), "max_graph_nodes")
    out: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        if not name.endswith(suffix) or info.is_dir():
            raise UserError(f"member {name!r:.80} is not a {suffix or 'file'}")
        if name in out:
            raise UserError(f"member {name!r:.80} appears twice")
        if info.flag_bits & 0x1:
            raise UserError(f"member {name!r:.80} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UserError(f"member {name!r:.80} uses zip compression method {info.compress_type}, "
                            "not stored or deflated")
        total += info.file_size
        limits.check("the members' declared size in all", total, "max_file_bytes")
        out[name] = info
    return out


def read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A checked member's bytes: never more than it declares (zipfile checks the CRC)."""
    with z.open(info) as m:
        return read_bounded(m, info.file_size, f"member {info.filename!r:.80}")


def _read_header(bio, where):
    version = np.lib.format.read_magic(bio)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(bio, max_header_size=_HEADER_MAX)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(bio, max_header_size=_HEADER_MAX)
    raise UserError(f"{where}: .npy format version {version} is not supported")


def parse_npy(data: bytes, where: str = ".npy data", text_ok: bool = False) -> np.ndarray:
    """One `.npy` file's bytes as an array, after checking its header (see the module notes)."""
    bio = io.BytesIO(data)
    try:
        with warnings.catch_warnings():  # numpy's notes on headers "created on Python 2"
            warnings.simplefilter("ignore")
            shape, fortran, dtype = _read_header(bio, where)
    except UserError:
        raise
    except Exception as e:  # ValueError and whatever else a malformed literal raises: data, not code
        raise UserError(f"{where}: malformed .npy header ({type(e).__name__}: {str(e)[:120]})") from None
    if dtype.hasobject:
        raise UserError(f"{where}: holds Python objects (reading it would need unpickling, "
                        "which this loader never does)")
    plain = dtype.fields is None and dtype.subdtype is None
    if not plain or not (dtype.kind in _NUMERIC_KINDS or (text_ok and dtype.kind == "U")):
        raise UserError(f"{where}: dtype {str(dtype)[:60]} is not a plain numeric type")
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise UserError(f"{where}: malformed shape {shape!r:.80}")
    count = prod(shape)
    limits.check(f"{where}: elements of shape {shape}", count, "max_tensor_elements")
    offset = bio.tell()
    if len(data) - offset != count * dtype.itemsize:
        raise UserError(f"{where}: {len(data) - offset:,} data bytes, shape {shape} of {dtype} needs "
                        f"{count * dtype.itemsize:,}")
    if dtype.kind == "U":
        # NumPy makes a str of any 4-byte code unit; one past U+10FFFF gives a str that crashes
        # Python (SystemError) when read character by character, so the text is checked here
        units = np.frombuffer(data, dtype.byteorder.replace("|", "=") + "u4", count * dtype.itemsize // 4, offset)
        if units.size and units.max() > 0x10FFFF:
            raise UserError(f"{where}: text holds a code point past U+10FFFF (not Unicode)")
    flat = np.frombuffer(data, dtype, count=count, offset=offset)
    return np.array(flat.reshape(shape, order="F" if fortran else "C"), order="C")
