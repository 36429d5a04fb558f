"""Writing files safely: checked first, written atomically, never overwritten without --force."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import UserError


def check_out(path, force: bool) -> Path:
    """A file we may write: its folder exists, and it does not unless --force."""
    p = Path(path)
    if p.exists() and not force:
        raise UserError(f"{p}: exists (use --force to overwrite)")
    if not p.parent.is_dir():
        raise UserError(f"{p}: folder {p.parent} does not exist")
    return p


def write_atomic(path, write) -> None:
    """write(f) into a temporary file beside `path` (binary), then rename it over `path`: a reader
    never sees a half-written file, and a failure leaves the old file (or none) in place. The file
    gets the mode a new file would (mkstemp's are private)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
