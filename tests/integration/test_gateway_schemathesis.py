"""Property-based tests of the gateway against its own OpenAPI document (schemathesis, bounded).

Every generated request must get a documented status code, content type and body shape, and never a
500. A 503/504 is a documented answer (no worker, a deadline passed), not a crash. Hypothesis drives
each operation directly (schemathesis' pytest plugin does not load under pytest 9).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 12


def test_every_endpoint_answers_as_documented_and_never_500(gateway_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{gateway_url}/openapi.json")
    results = list(schema.get_all_operations())
    assert all(isinstance(r, Ok) for r in results), "the gateway's OpenAPI document has invalid parts"
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) >= 15, "the gateway documents fewer endpoints than it serves"
    tried: list[str] = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
        def exercise(case: Any) -> None:
            response = case.call(base_url=gateway_url, timeout=40)
            tried.append(f"{case.method} {case.path}")
            assert response.status_code != 500, f"{case.method} {case.formatted_path}: {response.text[:500]}"
            case.validate_response(
                response,
                checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
            )

        exercise()

    assert len(set(tried)) == len(operations)
