"""`scf docs` writes the OpenAPI and AsyncAPI documents from the same models, so they cannot drift."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from scf.app.cli import main


def test_scf_docs_writes_both_documents_from_the_same_models(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["docs", "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    openapi = json.loads((tmp_path / "openapi.json").read_text())
    asyncapi = json.loads((tmp_path / "asyncapi.json").read_text())
    spec_paths = {
        "/connectors",
        "/connectors/{service_name}/execute",
        "/connectors/{service_name}/test",
        "/connectors/{service_name}",
        "/connectors/{service_name}/metrics",
        "/metrics",
    }
    assert spec_paths <= set(openapi["paths"])
    assert asyncapi["asyncapi"] == "2.6.0"
    http_result = openapi["components"]["schemas"]["OperationResult"]["properties"]
    amqp_result = asyncapi["components"]["schemas"]["OperationResult"]["properties"]
    assert set(http_result) == set(amqp_result)
    assert "guest" not in json.dumps(asyncapi)  # a placeholder broker: no user, no real host
    assert "127.0.0.1" not in asyncapi["servers"]["rabbitmq"]["url"]
