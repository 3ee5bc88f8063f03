"""A third-party package adds a connector type through entry points, without forking the project."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = """
from pydantic import BaseModel, ConfigDict
from scf.connectors.base import ServiceConnector
from scf.schemas.operation import OperationOutcome


class EchoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefix: str = ""


class EchoConnector(ServiceConnector):
    service_type = "echo"
    operations = frozenset({"echo"})

    async def _open(self): pass
    async def _close(self): pass
    async def _check(self):
        return {"connection_test": "passed", "authentication_test": "passed", "permissions_test": "passed"}
    async def _execute(self, request):
        echoed = self.type_config.prefix + request.data["text"]
        return OperationOutcome(records_processed=1, result_data=echoed)
"""

ENTRY_POINTS = """
[scf.connectors]
echo = scf_echo_plugin:EchoConnector
postgresql = scf_echo_plugin:EchoConnector
[scf.connector_configs]
echo = scf_echo_plugin:EchoConfig
"""

SCRIPT = """
import asyncio, json
from scf import ServiceConnectorFactory
from scf.connectors.registry import available_types, connector_class
from scf.schemas.connection import ServiceConnection

async def main():
    async with ServiceConnectorFactory() as factory:
        config = {"service_type": "echo", "service_name": "e", "custom_config": {"prefix": ">"}}
        await factory.create_connector(config)
        result = await factory.execute_operation("e", {"operation": "echo", "data": {"text": "hi"}})
    try:
        ServiceConnection.parse({"service_type": "echo", "service_name": "bad", "custom_config": {"nope": 1}})
        refused = False
    except Exception as exc:
        refused = "custom_config.nope" in str(exc)
    print(json.dumps({
        "types": available_types(),
        "result": result.result_data,
        "postgresql": connector_class("postgresql").__name__,
        "bad_config_refused": refused,
    }))

asyncio.run(main())
"""


def install_fake_plugin(site: Path) -> None:
    (site / "scf_echo_plugin.py").write_text(textwrap.dedent(PLUGIN))
    dist = site / "scf_echo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: scf-echo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)


def test_an_entry_point_adds_a_connector_type_but_cannot_replace_a_built_in(tmp_path: Path) -> None:
    install_fake_plugin(tmp_path)
    repo = Path(__file__).resolve().parents[2]

    run = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={"PYTHONPATH": f"{tmp_path}:{repo}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert "echo" in report["types"]
    assert report["result"] == ">hi"
    assert report["postgresql"] == "PostgreSQLOutputConnector"
    assert report["bad_config_refused"] is True
