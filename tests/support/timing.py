"""Timing guards for parsers of untrusted text: the best of a few runs, compared across input sizes.

A guard compares 1 MB of worst-case input with 1 KB of it (a ratio, never a fixed wall-clock bound), so a
slow or busy machine moves both sides; the best run of several is the one least disturbed by noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(runs: int, call: Callable[[], object]) -> float:
    """The shortest of `runs` timings of `call()`, in seconds."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best
