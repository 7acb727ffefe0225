"""Files written whole or not at all: a temporary file beside the target, renamed into place.

Kept free of PyTorch (and of everything but the standard library), so the web server's process,
which never loads the network, writes its files the same way as every job.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

TEMP_PREFIX = ".impasto-"  # temporary files beside an output: short, so any legal output name has room


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place with
    the usual permissions (the umask's); on any error the temporary file is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=path.suffix or ".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """``data`` written to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
