"""Keep memory freed during a training step in the process, for the next step.

PyTorch's CPU tensors come from ``malloc``. With glibc's defaults, tensors of more than 128 KiB are
``mmap``-ed and returned to the system when freed, and the top of the heap is trimmed as soon as
enough of it is free, so every step faults its working set back in page by page (tens of
thousands of page faults per dcgan step; docs/benchmarks.md has the counts and the time). Raising
glibc's mmap and trim thresholds with ``mallopt`` keeps freed memory for reuse. The price is that
the process keeps its peak resident memory until it exits, which a training run reaches anyway.

This changes the whole process, once, and only where the C library is glibc (Linux).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["retain_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done: bool | None = None


def retain_freed_memory() -> bool:
    """Ask glibc to keep freed memory (see the module docstring). True when the settings took effect."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        _ = libc.gnu_get_libc_version  # glibc only: musl has no mallopt thresholds
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # Allocations up to 1 GiB come from the heap (older glibc caps the threshold at 32 MiB) ...
    mmap_ok = mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1 or mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1
    # ... and the heap is not trimmed until 1 GiB at its top is free.
    _done = mmap_ok and mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
    return _done
