"""Who burned the CPU during a benchmark phase, and how much memory a process tree held, from /proc.

A phase is bracketed by two `CpuSnapshot`s of named process groups (client, dispatcher, worker,
RabbitMQ, Redis, PostgreSQL); `cpu_report` turns the pair into CPU microseconds per operation for each
group, the same accounting as the peers' `cpu_<who>_us_per_op` (utime + stime from /proc/<pid>/stat).
`RssSampler` follows a process tree's resident memory in a thread and keeps the peak.
Linux only, standard library only: reading /proc directly needs no stubs and costs a few reads.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

PidSource = Callable[[], list[int]]
"""The pids of one group now (re-evaluated at each snapshot, so forked children are seen)."""

# RabbitMQ is an Erlang VM (beam.smp) with helper processes; PostgreSQL is one process per backend.
RABBITMQ_NAMES = ("beam.smp", "erl_child_setup", "inet_gethost")
POSTGRES_NAMES = ("postgres",)
REDIS_NAMES = ("redis-server",)


# === /proc readers (each returns None or [] for a process that is gone) ================================


def parse_stat(text: str) -> tuple[str, int, int]:
    """(comm, ppid, utime + stime ticks) from the text of /proc/<pid>/stat.

    comm sits in parentheses and may itself hold spaces and parentheses: split at the LAST ')'.
    """
    left, right = text.index("("), text.rindex(")")
    fields = text[right + 2 :].split()
    # fields[0] is the state (field 3 of proc(5)); ppid is field 4, utime 14, stime 15.
    return text[left + 1 : right], int(fields[1]), int(fields[11]) + int(fields[12])


def _stat(pid: int) -> tuple[str, int, int] | None:
    try:
        return parse_stat((PROC / str(pid) / "stat").read_text(errors="replace"))
    except (OSError, ValueError, IndexError):
        return None


def cpu_ticks(pid: int) -> int | None:
    stat = _stat(pid)
    return stat[2] if stat else None


def rss_bytes(pid: int) -> int | None:
    """Resident set size (second field of /proc/<pid>/statm, in pages)."""
    try:
        return int((PROC / str(pid) / "statm").read_text().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


def _all_pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir(PROC) if name.isdigit()]
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    """Direct children, from every thread's `children` file (cheap: no scan of all of /proc)."""
    out: list[int] = []
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            out.extend(int(p) for p in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return out


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants that are alive now (e.g. `scf worker --processes N`'s children)."""
    if not (PROC / str(root)).exists():
        return []
    seen: list[int] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.append(pid)
        stack.extend(_children(pid))
    return seen


def pids_by_name(names: Iterable[str]) -> list[int]:
    """Every process whose comm starts with one of `names` (comm is cut at 15 characters)."""
    wanted = tuple(names)
    out = []
    for pid in _all_pids():
        stat = _stat(pid)
        if stat is not None and stat[0].startswith(wanted):
            out.append(pid)
    return out


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs from /proc/stat; idle and iowait are not busy."""
    try:
        with (PROC / "stat").open() as stat:
            values = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    return sum(values) - values[3] - values[4], sum(values)


def cores_busy_over(seconds: float = 1.0, cpus: int | None = None) -> float | None:
    """How many cores the machine kept busy over the next `seconds` (other tenants' load, before a run)."""
    busy0, total0 = machine_ticks()
    time.sleep(seconds)
    busy1, total1 = machine_ticks()
    if total1 <= total0:
        return None
    return round((busy1 - busy0) / (total1 - total0) * (cpus or os.cpu_count() or 1), 2)


# === groups and snapshots ==============================================================================


def tree(pid: int | None) -> PidSource:
    return (lambda: tree_pids(pid)) if pid is not None else (lambda: [])


def by_name(names: Iterable[str]) -> PidSource:
    frozen = tuple(names)
    return lambda: pids_by_name(frozen)


def standard_groups(
    *,
    processes: Mapping[str, int | None],
    redis_pid: int | None,
) -> dict[str, PidSource]:
    """client (this process), the bench's own subprocess trees, then RabbitMQ, Redis and PostgreSQL.

    Redis is the private `redis-server` the bench started when it did (the machine's may serve others),
    else every `redis-server`. RabbitMQ and PostgreSQL are every process of the machine's servers:
    work by other tenants during a phase shows up there (compare runs, not single figures).
    """
    me = os.getpid()
    groups: dict[str, PidSource] = {"client": lambda: [me]}
    for name, pid in processes.items():
        groups[name] = tree(pid)
    groups["rabbitmq"] = by_name(RABBITMQ_NAMES)
    groups["redis"] = tree(redis_pid) if redis_pid is not None else by_name(REDIS_NAMES)
    groups["postgres"] = by_name(POSTGRES_NAMES)
    return groups


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU ticks of every pid of every group, the machine's busy/total jiffies, and the time."""

    ticks: dict[str, dict[int, int]]
    machine: tuple[int, int]
    at: float

    @classmethod
    def take(cls, groups: Mapping[str, PidSource]) -> CpuSnapshot:
        ticks: dict[str, dict[int, int]] = {}
        for name, source in groups.items():
            per_pid: dict[int, int] = {}
            for pid in source():
                value = cpu_ticks(pid)
                if value is not None:
                    per_pid[pid] = value
            ticks[name] = per_pid
        return cls(ticks, machine_ticks(), time.perf_counter())


def group_delta(before: Mapping[int, int], after: Mapping[int, int]) -> int:
    """Ticks a group used between two snapshots.

    A pid seen only at the end was born during the phase: all its ticks count. A pid seen only at the
    start exited during it: what it used since the first snapshot is unknown, so it counts 0 (the
    bench's processes live through every phase). A counter never goes back, so a smaller value means
    the pid was reused by a new process: count it as new.
    """
    total = 0
    for pid, end in after.items():
        start = before.get(pid, 0)
        total += end - start if end >= start else end
    return total


def cpu_report(
    before: CpuSnapshot,
    after: CpuSnapshot,
    operations: int,
    *,
    clk_tck: int = CLK_TCK,
    cpus: int | None = None,
) -> dict[str, float | None]:
    """CPU microseconds per operation for each group, their sum, and how busy the machine was.

    Keys: `<group>` (µs/op), `total` (µs/op, sum of the groups), `machine_cores_busy` (cores busy on
    the whole machine, every tenant included) and `wall_s`. With no operation, every per-op value is None.
    """
    out: dict[str, float | None] = {}
    total_ticks = 0
    for name, after_ticks in after.ticks.items():
        ticks = group_delta(before.ticks.get(name, {}), after_ticks)
        total_ticks += ticks
        out[name] = per_op_us(ticks, operations, clk_tck)
    out["total"] = per_op_us(total_ticks, operations, clk_tck)
    busy = after.machine[0] - before.machine[0]
    jiffies = after.machine[1] - before.machine[1]
    ncpu = cpus or os.cpu_count() or 1
    out["machine_cores_busy"] = round(busy / jiffies * ncpu, 2) if jiffies > 0 else None
    out["wall_s"] = round(after.at - before.at, 3)
    return out


def per_op_us(ticks: int, operations: int, clk_tck: int = CLK_TCK) -> float | None:
    """Ticks of CPU over `operations`, in microseconds per operation (one decimal)."""
    if operations <= 0 or clk_tck <= 0:
        return None
    return round(ticks / clk_tck / operations * 1e6, 1)


class CpuMeter:
    """`start()` before a phase, `stop(operations)` after it: the `cpu_report` of that phase."""

    def __init__(self, groups: Mapping[str, PidSource]) -> None:
        self.groups = dict(groups)
        self._before: CpuSnapshot | None = None
        self._after: CpuSnapshot | None = None

    def start(self) -> None:
        self._before = CpuSnapshot.take(self.groups)
        self._after = None

    def stop(self, operations: int) -> dict[str, float | None]:
        if self._before is None:
            raise RuntimeError("CpuMeter.stop() before start()")
        self._after = CpuSnapshot.take(self.groups)
        return cpu_report(self._before, self._after, operations)

    def per(self, units: int) -> dict[str, float | None]:
        """The stopped phase's report over another unit (rows instead of operations, say)."""
        if self._before is None or self._after is None:
            raise RuntimeError("CpuMeter.per() before stop()")
        return cpu_report(self._before, self._after, units)


# === memory ============================================================================================


def tree_rss_bytes(root: int) -> int:
    return sum(rss_bytes(pid) or 0 for pid in tree_pids(root))


class RssSampler:
    """Samples a process tree's total RSS every `interval` seconds in a thread; `peak` in bytes.

    The tree is walked at every sample (a few /proc reads for a worker and its children), so a child
    started or replaced during the phase is counted.
    """

    def __init__(self, root: int, interval: float = 0.1) -> None:
        self.root = root
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> int:
        value = tree_rss_bytes(self.root)
        self.peak = max(self.peak, value)
        self.samples += 1
        return value

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> RssSampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sample()
        return self.peak


def mib(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)
