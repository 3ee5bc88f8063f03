"""The PDF connector's bound on parser processes, with the sandbox replaced by a fake that counts,
and what the parser process is started with: isolated mode, its limits, no worker secrets.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scf.connectors.parsing.pdf import sandbox
from scf.connectors.parsing.pdf.sandbox import ParserRun, SandboxLimits, child_env
from scf.connectors.pdf import PDFIngestionConnector
from scf.schemas.connection import ServiceConnection
from scf.schemas.operation import OperationRequest
from tests.support.pdfs import b64

PDF = b"%PDF-1.7\n"


class FakeParser:
    """Stands in for `run_parser`: records how many runs overlap, then answers one empty page."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0

    async def __call__(self, job: dict[str, Any], pdf: bytes, limits: SandboxLimits) -> ParserRun:
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.05)
        self.running -= 1
        records = (
            {"type": "document", "encrypted": False, "metadata": {}},
            {"type": "page_count", "page_count": 1},
            {"type": "page", "page": 1, "text": "", "tables": [], "ocr": False, "text_truncated": False},
            {"type": "done", "truncated": False},
        )
        return ParserRun(records=records, returncode=0, seconds=0.05)


@pytest.mark.parametrize("max_parsers", [1, 3])
async def test_no_more_parsers_run_at_once_than_max_parsers(
    monkeypatch: pytest.MonkeyPatch, max_parsers: int
) -> None:
    fake = FakeParser()
    monkeypatch.setattr(sandbox, "run_parser", fake)
    connector = PDFIngestionConnector(
        ServiceConnection(
            service_type="pdf", service_name="bounded", custom_config={"max_parsers": max_parsers}
        )
    )
    request = OperationRequest(operation="ingest", data_format="base64", data={"file_data": b64(PDF)})

    outcomes = await asyncio.gather(*(connector.execute(request) for _ in range(8)))

    assert [o.records_processed for o in outcomes] == [1] * 8
    assert fake.most == max_parsers


def test_the_parser_environment_carries_no_worker_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCF_SECRET_KEY", "fernet-canary")
    monkeypatch.setenv("PGPASSWORD", "pg-canary")
    monkeypatch.setenv("PATH", "/opt/bin:/usr/bin")

    env = child_env()

    assert env["PATH"] == "/opt/bin:/usr/bin"
    assert env["OMP_THREAD_LIMIT"] == "1"
    assert "fernet-canary" not in env.values() and "pg-canary" not in env.values()


def test_the_parser_runs_isolated_with_its_limits_on_the_command_line() -> None:
    limits = SandboxLimits(memory_bytes=256 << 20, cpu_seconds=5, wall_seconds=9, max_output_bytes=1 << 20)

    argv = limits.argv()

    assert argv[1] == "-I" and argv[2].endswith("scf/connectors/parsing/pdf/extract.py")
    assert argv[3:] == ["--memory-bytes", str(256 << 20), "--cpu-seconds", "5", "--max-open-files", "64"]
