"""What every benchmark reports beside pytest-benchmark's own statistics: best-of-N time and peak RSS."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable


def peak_rss_mb() -> float:
    """The process's peak resident memory so far [MB] (getrusage; it only grows over a session)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` calls of `fn` [s]: the least disturbed by other work on a shared machine."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
