"""A worker bounds what it takes from `scf.ops` as the dispatcher would: the deadline of an envelope
(which a raw publisher writes itself) is capped at MAX_TIMEOUT_SECONDS after the worker took it."""

from __future__ import annotations

from scf.schemas.operation import MAX_TIMEOUT_SECONDS, OperationEnvelope, OperationRequest


def envelope(deadline: float) -> OperationEnvelope:
    request = OperationRequest.model_validate({"service_name": "x", "operation": "preview"}).with_defaults()
    return OperationEnvelope(request=request, service_type="csv", connector_version=0, deadline=deadline)


def test_a_far_future_deadline_is_capped_at_the_timeout_cap_from_now() -> None:
    now = 1_800_000_000.0
    capped = envelope(now + 365 * 86_400).capped(now)
    assert capped.deadline == now + MAX_TIMEOUT_SECONDS
    assert capped.remaining(now) == MAX_TIMEOUT_SECONDS


def test_a_deadline_within_the_cap_is_kept_as_it_is() -> None:
    now = 1_800_000_000.0
    within = envelope(now + 30)
    assert within.capped(now) is within
    assert envelope(now - 5).capped(now).deadline == now - 5  # already passed: DEADLINE_EXCEEDED later
