"""What a worker keeps in memory instead of asking Redis per operation: heard cancels, metric tallies,
and which successful operations get an audit line (no network)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from scf.fleet import audit, latency
from scf.fleet.tally import Tally
from scf.schemas.errors import ErrorCode, TransientError
from scf.schemas.operation import OperationOutcome, OperationResult
from scf.worker.cancels import RecentCancels

NOW = 1_000_000.0


def synced(capacity: int = 10, horizon: float = 100.0) -> RecentCancels:
    cancels = RecentCancels(capacity, horizon)
    cancels.synced([], NOW, cancels.begin_sync())
    return cancels


# --- cancels ---------------------------------------------------------------------------------------


def test_before_the_first_sync_every_id_is_suspect() -> None:
    cancels = RecentCancels(10, 100.0)
    assert cancels.suspect("op_any", NOW)
    assert cancels.needs_sync


def test_after_a_sync_only_heard_and_synced_ids_are_suspect() -> None:
    cancels = RecentCancels(10, 100.0)
    cancels.synced(["op_marked"], NOW, cancels.begin_sync())
    cancels.heard("op_heard", NOW)

    assert cancels.suspect("op_marked", NOW + 1) and cancels.suspect("op_heard", NOW + 1)
    assert not cancels.suspect("op_other", NOW + 1)
    assert not cancels.needs_sync


def test_a_heard_cancel_is_forgotten_after_the_horizon() -> None:
    cancels = synced(horizon=100.0)
    cancels.heard("op_1", NOW)
    assert cancels.suspect("op_1", NOW + 99)
    assert not cancels.suspect("op_1", NOW + 101)


def test_forgetting_early_makes_every_id_suspect_for_as_long_as_it_would_have_mattered() -> None:
    cancels = synced(capacity=3, horizon=100.0)
    for i in range(4):  # the fourth pushes the first out before its time
        cancels.heard(f"op_{i}", NOW + i)

    assert len(cancels) == 3
    assert cancels.suspect("op_never_cancelled", NOW + 50)  # op_0 could have been this one's cancel
    assert not cancels.suspect("op_never_cancelled", NOW + 101)  # op_0's horizon is over


def test_expired_entries_make_room_without_suspecting_anything() -> None:
    cancels = synced(capacity=2, horizon=10.0)
    cancels.heard("op_a", NOW)
    cancels.heard("op_b", NOW)
    cancels.heard("op_c", NOW + 20)  # a and b have expired: dropping them costs nothing

    assert not cancels.suspect("op_other", NOW + 20)
    assert cancels.suspect("op_c", NOW + 20)


def test_missed_events_make_every_id_suspect_until_a_sync_begun_after_them() -> None:
    cancels = synced()
    stale = cancels.begin_sync()  # a sync begun before the interruption...
    cancels.missed_events()
    cancels.synced([], NOW, stale)  # ...cannot vouch for what happened after it began
    assert cancels.suspect("op_x", NOW)

    cancels.synced([], NOW, cancels.begin_sync())
    assert not cancels.suspect("op_x", NOW)


def test_a_failed_sync_keeps_every_id_suspect_and_asks_for_another() -> None:
    cancels = RecentCancels(10, 100.0)
    cancels.give_up_sync(NOW)
    assert cancels.suspect("op_x", NOW + 50) and cancels.needs_sync
    cancels.synced([], NOW + 60, cancels.begin_sync())
    assert not cancels.suspect("op_x", NOW + 60) and not cancels.needs_sync


def test_hearing_the_same_cancel_again_keeps_one_entry() -> None:
    cancels = synced()
    for _ in range(100):
        cancels.heard("op_same", NOW)
    assert len(cancels) == 1


# --- tally -----------------------------------------------------------------------------------------


def ok(seconds: float) -> OperationResult:
    return OperationResult.succeeded("op_ok", OperationOutcome(result_data={}), seconds)


def failed(seconds: float) -> OperationResult:
    error = TransientError("the service timed out", code=ErrorCode.TIMEOUT)
    return OperationResult.failed("op_failed", error, seconds)


def test_a_tally_adds_up_by_connector_and_starts_again_after_take() -> None:
    tally = Tally()
    tally.count("db", ok(0.01), NOW)
    tally.count("db", failed(0.5), NOW + 1)
    tally.count("files", ok(0.002), NOW)

    taken = tally.take()

    db = taken["db"]
    assert (db.total, db.successful, db.failed) == (2, 1, 1)
    assert db.seconds == pytest.approx(0.51)
    assert sum(db.histogram.values()) == 2
    assert (latency.window_of(NOW), latency.bucket_of(0.01)) in db.histogram
    assert db.last_error is not None and '"TIMEOUT"' in db.last_error[0] and db.last_error[1] == NOW + 1
    assert taken["files"].total == 1 and taken["files"].last_error is None
    assert not tally and tally.take() == {}


def test_restored_counts_add_to_new_ones_and_keep_the_newest_error() -> None:
    tally = Tally()
    tally.count("db", failed(0.1), NOW)
    taken = tally.take()
    tally.count("db", ok(0.1), NOW + 2)
    tally.count("db", failed(0.2), NOW + 3)

    tally.restore(taken, NOW + 3)

    db = tally.take()["db"]
    assert (db.total, db.successful, db.failed) == (3, 1, 2)
    assert db.last_error is not None and db.last_error[1] == NOW + 3


def test_restoring_after_a_long_outage_drops_latency_windows_nobody_reads() -> None:
    tally = Tally()
    tally.count("db", ok(0.1), NOW)
    taken = tally.take()

    tally.restore(taken, NOW + 3600)

    db = tally.take()["db"]
    assert db.total == 1 and db.histogram == {}


# --- audit sampling --------------------------------------------------------------------------------


class FakeMessage:
    user_id = "guest"
    headers: ClassVar[dict[str, Any]] = {}
    type = "operation.execute"


@pytest.fixture
def audited(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    lines: list[dict[str, Any]] = []
    monkeypatch.setattr(audit, "record", lambda **fields: lines.append(fields))
    yield lines
    audit.sample_operations(1.0)


@pytest.mark.parametrize(("rate", "expected"), [(1.0, 100), (0.1, 10), (0.0, 0), (0.25, 25)])
def test_successes_are_sampled_evenly(audited: list[dict[str, Any]], rate: float, expected: int) -> None:
    audit.sample_operations(rate)
    for i in range(100):
        audit.audit_operation(FakeMessage(), 0.0, failed=False, operation_id=f"op_{i}")  # type: ignore[arg-type]
    assert len(audited) == expected


def test_every_failure_is_audited_whatever_the_sample(audited: list[dict[str, Any]]) -> None:
    audit.sample_operations(0.0)
    for i in range(20):
        audit.audit_operation(FakeMessage(), 0.0, failed=True, operation_id=f"op_{i}")  # type: ignore[arg-type]
    assert [a["operation_id"] for a in audited] == [f"op_{i}" for i in range(20)]
    assert all(a["user"] == "guest" and a["what"] == "operation.execute" for a in audited)


def test_the_horizon_outlasts_any_deadline() -> None:
    from scf.schemas.operation import MAX_TIMEOUT_SECONDS
    from scf.worker.cancels import HORIZON

    assert HORIZON > MAX_TIMEOUT_SECONDS and math.isfinite(HORIZON)
