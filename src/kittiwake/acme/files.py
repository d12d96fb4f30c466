"""Owner-only files for ACME state: directories 0700, files 0600, written atomically.

A private key or account file is never briefly readable by others (created
0600, not chmod-ed afterwards) and never half-written: temp file in the same
directory, fsync, rename, fsync of the directory (DESIGN.md "Storage").
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from kittiwake.durable import fsync_dir


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700; tighten an existing one."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, mode 0600, durably."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)
