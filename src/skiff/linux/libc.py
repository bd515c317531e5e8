"""The C library, loaded once, and the errno check every wrapper shares."""

from __future__ import annotations

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)


def check(ret: int, what: str, path: str | None = None) -> int:
    """Raise OSError with the C errno when a libc call returned -1."""
    if ret == -1:
        err = ctypes.get_errno()
        if path is not None:
            raise OSError(err, f"{what}: {os.strerror(err)}", path)
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret
