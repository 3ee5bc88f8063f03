"""Fleet-wide response-time percentiles and rates over the last minute, from bucketed counters.

Every worker adds each operation to a histogram of the current 10-second window in Redis (one HINCRBY:
cheap, and it sums across workers for free). Reading merges the windows of the last minute; the
percentile is the upper bound of the bucket where the rank falls (buckets grow by 25 %).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping

WINDOW_SECONDS = 10
WINDOWS_PER_MINUTE = 6
#: upper bounds in seconds: 0.25 ms growing by 25 % to ~5 min
BOUNDS: tuple[float, ...] = tuple(0.00025 * 1.25**i for i in range(64))


def window_of(now: float) -> int:
    return int(now // WINDOW_SECONDS)


def bucket_of(seconds: float) -> int:
    """Index of the first bucket whose upper bound holds `seconds` (the last bucket takes the rest)."""
    return min(bisect.bisect_left(BOUNDS, seconds), len(BOUNDS) - 1)


def minute_windows(now: float) -> list[int]:
    """The current window and the five before it."""
    current = window_of(now)
    return [current - i for i in range(WINDOWS_PER_MINUTE)]


def merge(histograms: Iterable[Mapping[str, str] | Mapping[bytes, bytes]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for histogram in histograms:
        for key, value in histogram.items():
            index = int(key)
            merged[index] = merged.get(index, 0) + int(value)
    return merged


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = math.ceil(q * total)
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return round(BOUNDS[index], 6)
    return round(BOUNDS[max(histogram)], 6)


def rate(histogram: Mapping[int, int], now: float) -> float:
    """Operations per second over the covered span: five full windows plus the current partial one."""
    covered = (WINDOWS_PER_MINUTE - 1) * WINDOW_SECONDS + (now - window_of(now) * WINDOW_SECONDS)
    return round(sum(histogram.values()) / covered, 3) if covered > 0 else 0.0
