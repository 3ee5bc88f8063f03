"""Every line a fleet process writes to stderr through logging is one JSON object, the libraries' too,
with the fields bound for the operation; library chatter below WARNING is dropped."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import logging, structlog
from scf.fleet.logging import configure_logging
logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler())  # as uvicorn does: plain text
configure_logging("info")
structlog.contextvars.bind_contextvars(operation_id="op_1", service_name="db")
logging.getLogger("aiormq.connection").warning("lost %s", "the broker")
logging.getLogger("uvicorn.error").warning("port in use")
logging.getLogger("uvicorn.error").info("chatter at info")
logging.getLogger("asyncpg.pool").error("pool broke")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("httpx").exception("request failed")
structlog.get_logger("scf.worker").info("operation_done", password="hunter2")
"""


def test_library_and_own_lines_are_json_with_the_operation_bound() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # fails on any non-JSON line
    events = [line["event"] for line in lines]
    assert events == ["lost the broker", "port in use", "pool broke", "request failed", "operation_done"]
    assert all(line["operation_id"] == "op_1" and line["service_name"] == "db" for line in lines)
    assert lines[0]["logger"] == "aiormq.connection" and lines[0]["level"] == "warning"
    assert "ZeroDivisionError" in lines[3]["exception"]
    assert lines[4]["password"] != "hunter2"
