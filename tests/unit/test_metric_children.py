"""`Children`: a labelled metric's children remembered by label values, bounded."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from scf.fleet.metrics import Children


def test_children_are_the_metrics_own_and_remembered_up_to_the_limit() -> None:
    registry = CollectorRegistry()
    counter = Counter("scf_test_children_total", "a test counter", ["kind", "outcome"], registry=registry)
    children = Children(counter, limit=2)
    first = children("csv", "success")
    assert children("csv", "success") is first is counter.labels("csv", "success")
    first.inc()
    children("csv", "success").inc(2)
    children("csv", "failed").inc()
    children("pdf", "success").inc(5)  # past the limit: counted, through the metric, not remembered
    children("pdf", "success").inc()
    assert registry.get_sample_value("scf_test_children_total", {"kind": "csv", "outcome": "success"}) == 3
    assert registry.get_sample_value("scf_test_children_total", {"kind": "csv", "outcome": "failed"}) == 1
    assert registry.get_sample_value("scf_test_children_total", {"kind": "pdf", "outcome": "success"}) == 6
    assert len(children._known) == 2
