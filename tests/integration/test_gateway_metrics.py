"""The gateway's own Prometheus metrics: requests by route template (never the raw path), status and
method, their durations, and the build every process reports."""

from __future__ import annotations

import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scf._version import __version__

pytestmark = pytest.mark.integration


def samples(text: str, name: str) -> list[dict[str, str]]:
    return [
        {**sample.labels, "value": str(sample.value)}
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def test_requests_are_counted_by_route_template_with_bounded_labels(gateway_url: str) -> None:
    marker = uuid.uuid4().hex
    with httpx.Client(base_url=gateway_url, timeout=30) as http:
        assert http.get(f"/connectors/missing_{marker}").status_code == 404
        assert http.get(f"/no/such/path/{marker}").status_code == 404
        assert http.request("BREW", "/connectors").status_code in (400, 405, 501)
        exported = http.get("/metrics/prometheus")
    assert exported.status_code == 200
    text = exported.text
    assert marker not in text  # a caller's path never becomes a label value

    counted = samples(text, "scf_gateway_requests_total")
    assert {"method": "GET", "route": "/connectors/{service_name}", "status": "404"}.items() <= next(
        s for s in counted if s["route"] == "/connectors/{service_name}" and s["status"] == "404"
    ).items()
    assert any(s["route"] == "unmatched" and s["status"] == "404" for s in counted)
    assert any(s["method"] == "other" for s in counted)
    durations = samples(text, "scf_gateway_request_duration_seconds_count")
    assert any(s["route"] == "/connectors/{service_name}" and float(s["value"]) >= 1 for s in durations)

    (build,) = samples(text, "scf_build_info")
    assert build["version"] == __version__ and build["value"] == "1.0"
