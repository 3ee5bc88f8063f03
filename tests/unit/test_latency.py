"""Bucketed last-minute percentiles and rates."""

from __future__ import annotations

import pytest

from scf.fleet.latency import BOUNDS, bucket_of, merge, minute_windows, percentile, rate, window_of


def test_a_value_lands_in_the_first_bucket_that_holds_it() -> None:
    index = bucket_of(0.010)

    assert BOUNDS[index] >= 0.010
    assert index == 0 or BOUNDS[index - 1] < 0.010
    assert bucket_of(10_000.0) == len(BOUNDS) - 1


def test_percentiles_are_within_one_bucket_of_the_truth() -> None:
    samples = [0.001 * i for i in range(1, 1001)]  # 1 ms .. 1 s
    histogram: dict[int, int] = {}
    for s in samples:
        histogram[bucket_of(s)] = histogram.get(bucket_of(s), 0) + 1

    p50, p95 = percentile(histogram, 0.50), percentile(histogram, 0.95)

    assert p50 is not None and 0.500 <= p50 <= 0.500 * 1.25
    assert p95 is not None and 0.950 <= p95 <= 0.950 * 1.25


def test_an_empty_histogram_has_no_percentile_and_no_rate() -> None:
    assert percentile({}, 0.5) is None
    assert rate({}, now=105.0) == 0.0


def test_windows_of_the_last_minute_and_merge_across_workers() -> None:
    assert minute_windows(125.0) == [12, 11, 10, 9, 8, 7]
    assert window_of(125.0) == 12
    assert merge([{"3": "2"}, {"3": "1", "5": "4"}]) == {3: 3, 5: 4}


def test_rate_divides_by_the_covered_span() -> None:
    # at t=125 the span is 5 full windows (50 s) + 5 s of the current one
    assert rate({1: 110}, now=125.0) == pytest.approx(2.0)
