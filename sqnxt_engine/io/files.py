"""Reading and writing files safely (docs/security.md).

Reading: only regular files. A FIFO would block the reader forever and a device can stream without
end, so `open_regular` opens without blocking and checks what it opened (fstat on the open file,
not a check-then-open race), and says what the path is when it is not a file.

Writing: an output is checked before the work starts (`check_out`), written to a hidden temporary
file beside it and put in place only once complete (`write_atomic`, `write_atomic_group` for
results made of several files, which appear together or not at all). Without --force the final
step is a hard link, which fails if a file appeared at the path during the run (nothing is
clobbered); with --force only a regular file is ever replaced, never a device, FIFO or folder.
Temporary files are removed on any failure, Ctrl-C and SIGTERM included (the commands turn SIGTERM
into an exception, cli/common.py), and errors name the output, never the temporary file.
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from .. import limits
from ..errors import UserError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def kind(mode: int) -> str:
    """What a stat mode describes, in words ("a FIFO (named pipe)")."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


# --- reading ------------------------------------------------------------------------------------

def require_regular(path) -> Path:
    """`path`, or a UserError saying what is wrong with it: missing, or not a regular file (a
    directory, FIFO, device or socket). For checking every input before any work starts."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise UserError(f"{p}: no such file") from None
    except OSError as e:
        raise UserError(f"{p}: cannot open ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{p}: is {kind(st.st_mode)}, not a regular file")
    return p


def is_file(path) -> bool:
    """Path.is_file() that answers False, not an OSError, for a name the system cannot even look
    up (too long, embedded NUL): a name read from a file is no file then."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def open_regular(path) -> BinaryIO:
    """`path` opened for binary reading, or a UserError naming it: missing, unreadable, or not a
    regular file (a directory, FIFO, device or socket)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot open ({e.strerror or e})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UserError(f"{path}: is {kind(st.st_mode)}, not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_bounded(f: BinaryIO, limit: int, what: str = "file") -> bytes:
    """At most `limit` bytes from a stream (a file, a gzip or zip member), or a UserError: a
    decompressing stream is never trusted to stop by itself."""
    chunks, total = [], 0
    while total <= limit:
        # in blocks: read(n) allocates n bytes up front, whatever the stream then holds
        chunk = f.read(min(1 << 20, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    raise limits.exceeded(f"{what} holds more than {limit:,} bytes; size", total, "max_file_bytes")


def read_regular(path) -> bytes:
    """The bytes of a regular file no larger than the max_file_bytes limit."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        limits.check(f"{path}: file size", size, "max_file_bytes")
        return read_bounded(f, limits.current().max_file_bytes, str(path))


def read_text(path) -> str:
    """A regular file as UTF-8 text (bounded like read_regular); UserError if it is not UTF-8."""
    data = read_regular(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start}: {data[e.start:e.start + 1]!r})") from None


# --- writing ------------------------------------------------------------------------------------

def check_out(path, force: bool) -> Path:
    """A file we may write: its folder exists, and the path holds nothing (or, with --force, a
    regular file or a symbolic link, which the rename replaces; never a device, FIFO or folder)."""
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise UserError(f"{p}: cannot check the output path ({e.strerror or e})") from None
    if st is not None:
        if not force:
            raise UserError(f"{p}: exists (use --force to overwrite)")
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            raise UserError(f"{p}: is {kind(st.st_mode)}; --force replaces only regular files")
    if not p.parent.is_dir():
        raise UserError(f"{p}: folder {p.parent} does not exist")
    return p


def write_atomic(path, write: Callable[[BinaryIO], object], force: bool = False) -> None:
    """write(f) into a temporary file beside `path` (binary), then put it at `path`: a reader never
    sees a half-written file, and a failure leaves the old file (or none) in place. Without `force`
    an existing file (even one that appeared while `write` ran) is never replaced."""
    write_atomic_group([(path, write)], force)


def write_atomic_group(outputs: Iterable[tuple[object, Callable[[BinaryIO], object]]],
                       force: bool = False) -> None:
    """Several files written as one result: every file is written to its temporary first, then all
    are put in place; if any step fails, the ones already placed are removed again, so a run
    leaves the whole set or none of it (with --force, a replaced old file is not restored)."""
    outputs = [(Path(p), w) for p, w in outputs]
    temps: list[str] = []
    placed: list[Path] = []
    try:
        for path, write in outputs:
            check_out(path, force)
            temps.append(_write_temp(path, write))
        for (path, _), tmp in zip(outputs, temps):
            _place(tmp, path, force)
            placed.append(path)
    except BaseException:
        for tmp in temps:
            _unlink(tmp)
        if len(placed) < len(outputs):
            for path in placed:
                _unlink(path)
        raise


def _write_temp(path: Path, write) -> str:
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UserError(f"{path}: cannot write in {path.parent} ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # the mode a new file would get (mkstemp's are private)
    except OSError as e:
        _unlink(tmp)
        raise UserError(f"{path}: cannot write ({e.strerror or e})") from None
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


def _place(tmp: str, path: Path, force: bool) -> None:
    try:
        if force:
            check_out(path, force)  # again: a FIFO or device may have appeared since the start
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)  # fails if anything is at `path` now: no clobbering
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            # a file system without hard links: claim the name exclusively, then rename over it
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.replace(tmp, path)
            return
        os.unlink(tmp)
    except FileExistsError:
        raise UserError(f"{path}: a file appeared there during the run; not overwritten "
                        "(use --force to overwrite)") from None
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e})") from None


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
