"""CPU and memory accounting of the benchmarks: /proc parsing and per-operation arithmetic."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import procstat
from bench.procstat import CpuSnapshot, cpu_report, group_delta, parse_stat, per_op_us

# /proc/<pid>/stat of a process whose name holds a space and a parenthesis (comm may hold anything).
STAT = "4242 (tricky ) name) S 17 4242 4242 0 -1 4194560 900 0 0 0 130 27 0 0 20 0 3 0 1000 0 0"


def test_parse_stat_splits_at_the_last_parenthesis() -> None:
    assert parse_stat(STAT) == ("tricky ) name", 17, 157)


def test_group_delta_counts_births_and_ignores_deaths() -> None:
    before = {1: 100, 2: 50, 3: 10}
    after = {1: 130, 3: 10, 4: 25}  # 2 exited, 4 was born during the phase
    assert group_delta(before, after) == 30 + 0 + 25


def test_group_delta_treats_a_smaller_counter_as_a_reused_pid() -> None:
    assert group_delta({7: 500}, {7: 20}) == 20


def test_per_op_us_converts_ticks_to_microseconds_per_operation() -> None:
    assert per_op_us(10, 100, clk_tck=100) == 1000.0  # 0.1 s over 100 calls
    assert per_op_us(3, 1000, clk_tck=100) == 30.0
    assert per_op_us(10, 0, clk_tck=100) is None


def test_cpu_report_per_group_total_and_cores_busy() -> None:
    before = CpuSnapshot({"client": {1: 100}, "worker": {2: 0, 3: 0}, "redis": {}}, (1_000, 4_000), 10.0)
    after = CpuSnapshot({"client": {1: 150}, "worker": {2: 80, 3: 20}, "redis": {}}, (1_300, 4_400), 12.5)
    report = cpu_report(before, after, 500, clk_tck=100, cpus=2)
    assert report["client"] == 1000.0  # 50 ticks = 0.5 s over 500 calls
    assert report["worker"] == 2000.0  # both processes of the tree
    assert report["redis"] == 0.0
    assert report["total"] == 3000.0
    assert report["machine_cores_busy"] == 1.5  # 300 of 400 jiffies busy on 2 CPUs
    assert report["wall_s"] == 2.5


def test_cpu_report_with_no_operation_has_no_per_op_figures() -> None:
    snap = CpuSnapshot({"client": {1: 1}}, (0, 0), 0.0)
    report = cpu_report(snap, snap, 0, clk_tck=100, cpus=2)
    assert report["client"] is None and report["total"] is None
    assert report["machine_cores_busy"] is None


def test_meter_over_a_real_process_tree_sees_the_child_work() -> None:
    child = subprocess.Popen(  # burns CPU for a moment, then sleeps until killed
        [sys.executable, "-c", "import time\nx = 0\nfor i in range(3_000_000): x += i\ntime.sleep(60)"]
    )
    try:
        assert child.pid in procstat.tree_pids(os.getpid())
        meter = procstat.CpuMeter({"children": procstat.tree(child.pid), "client": lambda: [os.getpid()]})
        meter.start()
        child_ticks = 0
        for _ in range(200):  # until the loop is done (its ticks stop moving) or 20 s
            ticks = procstat.cpu_ticks(child.pid) or 0
            if ticks and ticks == child_ticks:
                break
            child_ticks = ticks
            time.sleep(0.1)
        report = meter.stop(1)
        per_row = meter.per(1000)
    finally:
        child.kill()
        child.wait()
    assert report["children"] is not None and report["children"] > 0
    assert per_row["children"] == pytest.approx(report["children"] / 1000, abs=0.1)


def test_rss_sampler_keeps_the_peak_of_a_tree() -> None:
    sampler = procstat.RssSampler(os.getpid(), interval=0.01).start()
    ballast = bytearray(64 * 2**20)  # 64 MiB, touched so it is resident
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    peak = sampler.sample()
    del ballast
    assert sampler.stop() >= peak > 64 * 2**20
    assert sampler.samples >= 3
    assert procstat.mib(3 * 2**20) == 3.0 and procstat.mib(None) is None


def test_groups_by_name_and_of_a_gone_process() -> None:
    assert procstat.tree_pids(2**22 + 12345) == []  # above pid_max: never alive
    groups = procstat.standard_groups(processes={"worker": None}, redis_pid=None)
    assert set(groups) == {"client", "worker", "rabbitmq", "redis", "postgres"}
    assert groups["client"]() == [os.getpid()]
    assert groups["worker"]() == []
    me = parse_stat(Path(f"/proc/{os.getpid()}/stat").read_text())[0]
    assert os.getpid() in procstat.pids_by_name([me])


def test_background_load_is_a_share_of_the_machine() -> None:
    busy = procstat.cores_busy_over(0.05, cpus=2)
    assert busy is not None and 0.0 <= busy <= 2.0
