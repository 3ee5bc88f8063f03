"""Waiting for the broker and Redis at start: backoff with a bounded total, a line per retry, one clear
failure naming the service and the last reason."""

from __future__ import annotations

import socket

import pytest

from scf.fleet import amqp
from scf.fleet.startup import StartupError, wait_for


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_broker_that_never_answers_fails_within_the_deadline() -> None:
    lines: list[str] = []
    url = f"amqp://guest:guest@127.0.0.1:{closed_port()}/"
    with pytest.raises(StartupError) as caught:
        await wait_for("RabbitMQ", lambda: amqp.connect(url, "t"), deadline=1.5, say=lines.append)
    assert str(caught.value).startswith("RabbitMQ did not answer within 1.5 s (")
    assert len(lines) >= 2, lines  # it tried again, with a line each time
    assert all(line.startswith("waiting for RabbitMQ (attempt ") for line in lines)


async def test_a_service_that_comes_up_is_used() -> None:
    answers = iter([False, False, True])

    async def ping() -> bool:
        return next(answers)

    lines: list[str] = []
    assert await wait_for("Redis", ping, deadline=30, say=lines.append, ready=bool) is True
    assert len(lines) == 2 and "not ready" in lines[0]
