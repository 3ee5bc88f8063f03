"""The `scf` command line as a newcomer meets it: every failure is one line on stderr with a next step
(never a traceback, never a password), and the client commands drive the session fleet end to end.

Runs the real entry point (`python -m scf`) in a subprocess, as a shell would.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import pytest
import yaml

from scf._version import __version__
from scf.schemas import topology
from tests.integration.conftest import free_port
from tests.support.fleet import FleetProcess
from tests.support.postgres import pg_body
from tests.support.services import Vhost, create_vhost, delete_vhost

pytestmark = pytest.mark.integration


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def scf(*args: str, url: str, stdin: str | None = None) -> Ran:
    done = subprocess.run(
        [sys.executable, "-m", "scf", *args],
        env={**_base_env(), "SCF_AMQP_URL": url},
        input=stdin or "",
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def _base_env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SCF_")}
    env["SCF_AUTH"] = "off"
    return env


def assert_one_line(ran: Ran, code: int, *fragments: str) -> None:
    assert ran.code == code, ran
    assert len(ran.err_lines) == 1, ran.err
    line = ran.err_lines[0]
    assert line.startswith("scf: "), line
    assert "Traceback" not in ran.err
    for fragment in fragments:
        assert fragment in line, (fragment, line)


@pytest.fixture(scope="module")
def empty_vhost() -> Iterator[Vhost]:
    created = create_vhost()
    yield created
    delete_vhost(created)


@pytest.fixture(scope="module")
def stopped_fleet_vhost() -> Iterator[Vhost]:
    """A vhost where a fleet ran once (its exchanges and queues exist) but no dispatcher runs now."""
    created = create_vhost()

    async def declare() -> None:
        connection = await aio_pika.connect(created.amqp_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(topology.REQUEST_EXCHANGE, "direct", durable=True)
            queue = await channel.declare_queue(topology.REQUEST_QUEUE, durable=True)
            await queue.bind(exchange, topology.REQUEST_ROUTING_KEY)

    asyncio.run(declare())
    yield created
    delete_vhost(created)


def test_the_broker_down_is_one_line_with_a_hint() -> None:
    ran = scf("connector", "list", url=f"amqp://guest:s3cret-pw@127.0.0.1:{free_port()}/")
    assert_one_line(ran, 3, "cannot reach the broker", "connection refused", "is RabbitMQ running?")
    assert "s3cret-pw" not in ran.err + ran.out
    assert "guest:***@" in ran.err


def test_a_wrong_login_names_the_user_not_the_password() -> None:
    ran = scf("connector", "list", url="amqp://nobody-here:s3cret-pw@127.0.0.1:5672/")
    assert_one_line(ran, 3, "refused user 'nobody-here'", "check SCF_AMQP_URL")
    assert "s3cret-pw" not in ran.err + ran.out


def test_a_vhost_that_does_not_exist_is_named() -> None:
    missing = f"scf-missing-{uuid.uuid4().hex[:8]}"
    ran = scf("connector", "list", url=f"amqp://guest:guest@127.0.0.1:5672/{missing}")
    assert_one_line(ran, 3, f"refused vhost {missing!r}")


def test_a_vhost_with_no_fleet_says_to_start_one(empty_vhost: Vhost) -> None:
    ran = scf("connector", "list", url=empty_vhost.amqp_url)
    assert_one_line(ran, 4, "no fleet answers on amqp://guest:***@", "start one with scf up")


def test_a_stopped_fleet_is_said_at_once_not_after_a_timeout(stopped_fleet_vhost: Vhost) -> None:
    ran = scf("--timeout", "60", "connector", "list", url=stopped_fleet_vhost.amqp_url)
    # with a 60 s timeout given, only the dispatcher check can answer within the subprocess's run
    assert_one_line(ran, 4, "no dispatcher is running", "start one with scf up")


def test_bad_input_is_one_line(tmp_path: Path, empty_vhost: Vhost) -> None:
    url = empty_vhost.amqp_url
    assert_one_line(scf("call", "x", "query", "--data", "@/nonexistent/body.json", url=url), 2, "cannot read")
    bad = scf("call", "x", "query", "--data", '{"a": ', url=url)
    assert_one_line(bad, 2, "--data is not JSON", "line 1 column 7")
    (tmp_path / "c.yaml").write_text("- just a string\n")
    assert_one_line(scf("connector", "create", str(tmp_path / "c.yaml"), url=url), 2, "expected a connector")
    refused = scf("connector", "delete", "anything", url=url)  # stdin is no terminal: --yes needed
    assert_one_line(refused, 2, "refusing to delete connector 'anything'", "add --yes")
    purge = scf("dlq", "purge", "--all", url=url)
    assert_one_line(purge, 2, "refusing to purge EVERY dead letter", "add --yes")


def test_version_and_short_help() -> None:
    ran = scf("--version", url="amqp://unused")
    assert ran.code == 0 and ran.out.strip() == f"scf {__version__}"
    helped = scf("connector", "-h", url="amqp://unused")
    assert helped.code == 0
    for command in ("create", "update", "pause", "resume", "status", "delete"):
        assert command in helped.out
    assert "result" in scf("-h", url="amqp://unused").out


# --- against the session fleet ------------------------------------------------------------------------------


@pytest.fixture
def pg_connector(tmp_path: Path) -> tuple[str, Path]:
    name = f"cli_pg_{uuid.uuid4().hex[:8]}"
    body = pg_body(service_name=name, custom_config={"connection_pool_size": 1, "max_connections": 2})
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(body))
    return name, path


def test_the_client_commands_drive_a_connector_end_to_end(
    fleet: dict[str, FleetProcess], vhost: Vhost, pg_connector: tuple[str, Path]
) -> None:
    name, path = pg_connector
    url = vhost.amqp_url
    created = scf("connector", "create", str(path), url=url)
    assert created.code == 0, created
    (answer,) = json.loads(created.out)
    assert answer["connection_ok"] is True and answer["status"] == "created"
    try:
        shown = yaml.safe_load(scf("-o", "yaml", "connector", "get", name, url=url).out)
        assert shown["service_name"] == name and shown["paused"] is False
        assert name in scf("-o", "table", "connector", "list", url=url).out
        assert json.loads(scf("connector", "status", name, url=url).out)["service_name"] == name

        assert scf("connector", "pause", name, url=url).code == 0
        paused = scf("call", name, "query", "--param", "query=SELECT 1 AS one", url=url)
        assert paused.code == 1 and "CONNECTOR_PAUSED" in paused.err_lines[-1], paused
        assert scf("connector", "resume", name, url=url).code == 0

        ran = scf("call", name, "query", "--param", "query=SELECT 41 + 1 AS answer", url=url)
        assert ran.code == 0, ran
        assert ran.out.endswith("\n")
        assert json.loads(ran.out)["result_data"]["rows"] == [{"answer": 42}]

        submitted = scf("submit", name, "query", "--param", "query=SELECT 7 AS seven", url=url)
        assert submitted.code == 0, submitted
        operation_id = json.loads(submitted.out)["operation_id"]
        fetched = scf("result", operation_id, "--wait", "20", url=url)
        assert fetched.code == 0, fetched
        assert json.loads(fetched.out)["result_data"]["rows"] == [{"seven": 7}]

        finished = scf("cancel", operation_id, url=url)
        assert finished.code == 0 and json.loads(finished.out)["status"] == "already_finished", finished
        unknown = scf("cancel", f"op_never_{uuid.uuid4().hex[:8]}", url=url)
        assert_one_line(unknown, 1, "NOT_FOUND")
    finally:
        deleted = scf("connector", "delete", name, "--yes", url=url)
        assert deleted.code == 0, deleted


def test_a_create_whose_connection_test_fails_says_so(
    fleet: dict[str, FleetProcess], vhost: Vhost, tmp_path: Path
) -> None:
    name = f"cli_bad_{uuid.uuid4().hex[:8]}"
    body = pg_body(service_name=name, port=free_port(), connection_timeout=2)  # nothing listens there
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(body))
    ran = scf("connector", "create", str(path), url=vhost.amqp_url)
    try:
        assert ran.code == 1, ran
        (answer,) = json.loads(ran.out)
        assert answer["connection_ok"] is False and answer["status"] == "created"
        assert_one_line(ran, 1, f"the connection test failed for {name}", "scf connector test")
    finally:
        scf("connector", "delete", name, "--yes", url=vhost.amqp_url)
