"""Giving freed native memory back to the OS after a stream session (glibc only).

A stream's tracker (a MediaPipe graph with its own threads and buffers) is built and torn
down on the worker threads; glibc keeps the freed pages in its per-thread arenas, so a kiosk
server that opens a stream per shopper would sit at its busiest hour's high-water mark for
weeks. malloc_trim(0) hands the free pages back (benchmarks/stream_soak.py measures it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim  # glibc; musl and others have none
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _load_trim()


def release_free_memory() -> bool:
    """Return free heap pages to the OS; False where the C library cannot (not glibc)."""
    if _TRIM is None:
        return False
    try:
        return bool(_TRIM(0))
    except OSError:  # never let housekeeping fail a request
        log.debug("malloc_trim failed", exc_info=True)
        return False
