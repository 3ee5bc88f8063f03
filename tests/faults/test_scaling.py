"""Scenario: drain-safe scaling. Under keyed insert load the postgresql workers grow from one process to
four and shrink back to one by SIGTERM (each must drain and exit 0); then the group scales to zero, the
requests sent meanwhile wait in `scf.ops.postgresql`, and a worker started later answers them all.

Workers are added as separate `scf worker` processes, as an operator (or KEDA adding pods) scales a
group: `scf worker --processes N` sizes one machine's supervisor at start and does not change N live.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aio_pika
import httpx
import pytest

from scf.fleet.client import FleetClient
from tests.faults.conftest import SERVICE, TABLE, Stack
from tests.faults.harness import Load, Sent, check, dead_letter_ids, effects, settle_missing
from tests.support.fleet import FleetProcess

pytestmark = pytest.mark.faults

WORKER = ["worker", "--types", "postgresql", "--concurrency", "16"]
WORK_QUEUE = "scf.ops.postgresql"
#: seconds at each size while growing and shrinking: 7 steps and the starts, about 30-40 s of load
STEP = 3.0
#: requests in flight all the time: more than one worker takes (16), so every worker is kept busy
LANES = 24
#: requests sent while no worker of the type is alive
WAITING = 20
#: a stopped worker drains for SCF_SHUTDOWN_GRACE (5 s in the fault stack); past this it is SIGKILLed
STOP_TIMEOUT = 20.0

_PORT = re.compile(r"ready: probes and metrics on :(\d+)")
_COUNT = re.compile(r"^scf_operation_duration_seconds_count\{[^}]*\}\s+([0-9.eE+-]+)$", re.MULTILINE)
_DRAINING = re.compile(r'"in_flight":\s*(\d+)|in_flight=(\d+)')


@pytest.fixture(scope="module")
def fleet(stack: Stack) -> Stack:
    """A dispatcher and ONE postgresql worker: the scenario grows the group from there."""
    stack.spawn("dispatcher", ["dispatcher"])
    stack.spawn("worker1", WORKER)
    return stack


@dataclass
class Stopped:
    name: str
    exit_code: int
    drain_s: float
    operations: int
    in_flight: int  # what the worker said it was draining when SIGTERM came
    drain_timed_out: bool


@dataclass
class Timeline:
    """When each size began (monotonic seconds) and what each stop looked like."""

    sizes: list[tuple[float, int]] = field(default_factory=list)
    starts: dict[str, float] = field(default_factory=dict)  # name -> seconds from spawn to ready
    stops: list[Stopped] = field(default_factory=list)


async def operations_run(process: FleetProcess) -> int:
    """Operations this worker ran, from its own /metrics (the histogram's counts, every label set)."""
    ports = _PORT.findall(process.own_output())
    assert ports, f"no ready line in {process.log_path}"
    async with httpx.AsyncClient(timeout=10) as http:
        page = (await http.get(f"http://127.0.0.1:{ports[-1]}/metrics")).text
    return int(sum(float(v) for v in _COUNT.findall(page)))


def drained_in_flight(output: str) -> int:
    """The in-flight count of the worker's `draining` line (0 when it had nothing in flight)."""
    for line in output.splitlines():
        if "draining" in line:
            found = _DRAINING.search(line)
            if found:
                return int(found.group(1) or found.group(2))
    return 0


async def start_worker(fleet: Stack, name: str, timeline: Timeline) -> None:
    began = time.monotonic()
    await asyncio.to_thread(fleet.spawn, name, WORKER)
    timeline.starts[name] = round(time.monotonic() - began, 2)


async def stop_worker(fleet: Stack, name: str, timeline: Timeline) -> Stopped:
    """SIGTERM, as an operator's scale-down (or a pod's termination) sends it, and wait for the drain."""
    process = fleet.processes.pop(name)
    ran = await operations_run(process)
    began = time.monotonic()
    code = await asyncio.to_thread(process.stop, STOP_TIMEOUT)
    output = process.own_output()
    stopped = Stopped(
        name,
        code,
        round(time.monotonic() - began, 2),
        ran,
        drained_in_flight(output),
        "drain_timeout" in output,
    )
    timeline.stops.append(stopped)
    return stopped


async def grow_and_shrink(fleet: Stack, timeline: Timeline) -> None:
    """1 -> 2 -> 3 -> 4 workers, then 4 -> 3 -> 2 -> 1, holding each size for STEP seconds."""
    timeline.sizes.append((time.monotonic(), 1))
    await asyncio.sleep(STEP)
    for n in (2, 3, 4):
        await start_worker(fleet, f"worker{n}", timeline)
        timeline.sizes.append((time.monotonic(), n))
        await asyncio.sleep(STEP)
    for n in (4, 3, 2):
        await stop_worker(fleet, f"worker{n}", timeline)
        timeline.sizes.append((time.monotonic(), n - 1))
        await asyncio.sleep(STEP)


async def steady_load(load: Load, done: asyncio.Event, answered: list[float]) -> None:
    """LANES callers, each sending the next numbered keyed insert as soon as its last was answered."""

    async def lane() -> None:
        while not done.is_set():
            [sent] = load.prepare(1, start=len(load.sent))  # no await in between: indexes are unique
            await load.send(sent)
            answered.append(time.monotonic())

    await asyncio.gather(*(lane() for _ in range(LANES)))


def throughput_by_size(timeline: Timeline, answered: list[float], until: float) -> list[str]:
    marks = [*timeline.sizes, (until, 0)]
    lines = []
    for (start, size), (end, _) in itertools.pairwise(marks):
        n = sum(1 for at in answered if start <= at < end)
        lines.append(f"{size} worker(s): {n} answered in {end - start:.1f}s = {n / (end - start):.0f}/s")
    return lines


async def queued(
    amqp_url: str, count: int, calls: Sequence[asyncio.Future[None]], timeout: float = 30.0
) -> int:
    """Wait until the work queue holds `count` ready messages (or every call was answered: nothing
    will come); returns what it holds at the end."""
    connection = await aio_pika.connect(amqp_url)
    held = -1
    try:
        channel = await connection.channel()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            declared = await channel.declare_queue(WORK_QUEUE, passive=True)
            held = declared.declaration_result.message_count or 0
            if held >= count or all(call.done() for call in calls):
                break
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    return held


@pytest.mark.timeout(300)
async def test_workers_grow_to_four_and_drain_back_to_one_under_keyed_load(
    fleet: Stack, client: FleetClient
) -> None:
    load = Load(client, SERVICE, TABLE, keyed=True, timeout=30)
    timeline = Timeline()
    answered: list[float] = []
    done = asyncio.Event()
    began = time.monotonic()
    running = asyncio.ensure_future(steady_load(load, done, answered))
    try:
        await grow_and_shrink(fleet, timeline)
    finally:
        done.set()
        await running
    ended = time.monotonic()
    await settle_missing(client, load.sent)
    verdict = check(
        load.sent, await effects(fleet.postgres.dsn, TABLE, load.run_id), await dead_letter_ids(client)
    )

    print(f"\nscaling 1 -> 4 -> 1 under keyed load: {len(load.sent)} requests in {ended - began:.1f}s")
    print("\n".join(throughput_by_size(timeline, answered, ended)))
    print(f"start to ready: {timeline.starts}")
    for s in timeline.stops:
        print(
            f"SIGTERM {s.name}: exit {s.exit_code} after {s.drain_s}s, drained {s.in_flight} in flight,"
            f" ran {s.operations} operations"
        )
    print(verdict.summary())
    assert [s.exit_code for s in timeline.stops] == [0, 0, 0]
    assert not any(s.drain_timed_out for s in timeline.stops), "a stop cancelled in-flight work"
    assert all(s.operations > 0 for s in timeline.stops), "an added worker took no work"
    assert sum(s.in_flight for s in timeline.stops) > 0, "no stop had work in flight to drain"
    assert verdict.lost == []
    assert verdict.duplicated == []
    assert verdict.unexpected == []
    assert verdict.dead_lettered == []
    assert dict(verdict.replies) == {"success": len(load.sent)}, "a caller was told an error"


@pytest.mark.timeout(300)
async def test_the_group_scales_to_zero_and_back_and_the_requests_sent_meanwhile_wait(
    fleet: Stack, client: FleetClient
) -> None:
    for name in [n for n in fleet.processes if n.startswith("worker")]:
        stopped = await stop_worker(fleet, name, Timeline())
        assert stopped.exit_code == 0, f"{name} exited {stopped.exit_code}"

    load = Load(client, SERVICE, TABLE, keyed=True, timeout=60)
    batch = load.prepare(WAITING)
    sent_at = time.monotonic()
    calls = [asyncio.ensure_future(load.send(s)) for s in batch]
    held = await queued(fleet.amqp_url, WAITING, calls)
    answered_early: list[Sent] = [s for s in batch if s.code is not None]
    waited = time.monotonic() - sent_at
    worker_began = time.monotonic()
    await asyncio.to_thread(fleet.spawn, "worker1", WORKER)
    ready_s = time.monotonic() - worker_began
    await asyncio.gather(*calls)
    all_answered_s = time.monotonic() - worker_began
    await settle_missing(client, batch)
    found = await effects(fleet.postgres.dsn, TABLE, load.run_id)
    verdict = check(batch, found, await dead_letter_ids(client))

    print(
        f"\nzero workers: {held} of {WAITING} requests waiting in {WORK_QUEUE} after {waited:.2f}s;"
        f" a worker was ready {ready_s:.2f}s after its start and every request answered"
        f" {all_answered_s:.2f}s after it: {verdict.summary()}"
    )
    assert answered_early == [], [(s.index, s.code) for s in answered_early]
    assert held == WAITING
    assert verdict.lost == []
    assert verdict.duplicated == []
    assert dict(verdict.replies) == {"success": WAITING}
