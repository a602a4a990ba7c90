"""Memory settings for a process that allocates many small, short-lived objects.

- The garbage collector: every event is a fresh dict, so the default GC (a
  generation-0 pass every 700 allocations) spends about a third of the time
  scanning live batches. Events are acyclic: freezing what start-up allocated
  and collecting far less often gives about +50% file -> blackhole throughput
  (bench/bench_file_source.py).
- glibc malloc: by default it gives freed memory at the top of the heap back to
  the kernel (past 128 KiB) and serves mid-size blocks with fresh mmaps, so a
  pipeline that allocates and frees a batch's worth of memory many times a
  second takes a page fault for most pages it touches. Page faults are slow
  (about 4 us each on a virtual machine): file -> parse -> file spent a third
  of its CPU time in them (530k faults for 300k lines). Keeping freed memory
  (the trim threshold high, a fixed mmap threshold) removes 93% of them; the
  peak RSS is unchanged (queues bound how much is ever live).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

GEN0_THRESHOLD = 50_000

# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 256 * 1024 * 1024
TOP_PAD = 16 * 1024 * 1024
MMAP_THRESHOLD = 32 * 1024 * 1024


def tune_gc(gen0: int = GEN0_THRESHOLD) -> None:
    gc.freeze()
    gc.set_threshold(gen0, 20, 100)


def tune_malloc() -> bool:
    """Keep freed heap memory instead of returning it to the kernel (glibc only); False when not applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (_M_TOP_PAD, TOP_PAD),
        )
    )


def tune_memory(gen0: int = GEN0_THRESHOLD) -> None:
    """Both settings; called once, early, by `pipeline run` (and the benchmarks)."""
    tune_malloc()
    tune_gc(gen0)
