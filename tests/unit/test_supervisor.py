"""The supervisor's pure parts: restart backoff, port layout, merged metrics, loop choice, CLI defaults."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from scf.app import runner
from scf.app.cli import main
from scf.app.supervisor import RestartPolicy, child_port, default_processes
from scf.fleet.http import merge_metrics, parse_metrics


def test_a_child_that_keeps_dying_is_restarted_later_and_later_then_given_up() -> None:
    policy = RestartPolicy(first_delay=0.5, max_delay=4.0, max_deaths=5, window=60.0)
    deaths: list[float] = []
    delays = []
    for at in range(6):
        deaths.append(float(at))
        delays.append(policy.delay(deaths, now=float(at)))

    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, None]


def test_deaths_outside_the_window_are_forgiven() -> None:
    policy = RestartPolicy(first_delay=0.5, max_deaths=2, window=60.0)
    old = [0.0, 1.0, 2.0]

    assert policy.delay([*old, 100.0], now=100.0) == 0.5
    assert policy.delay([*old, 30.0], now=30.0) is None


def test_each_child_gets_its_own_port_after_the_supervisors() -> None:
    assert [child_port(9464, k) for k in (1, 2, 3)] == [9465, 9466, 9467]
    assert child_port(0, 2) == 0  # ephemeral stays ephemeral: never two children on one fixed port
    assert child_port(65535, 1) == 0


def test_default_processes_is_the_cores_this_process_may_use() -> None:
    import os

    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert expected is not None
    assert default_processes() == expected >= 1


def child_exposition(inflight: float, requests: int) -> bytes:
    registry = CollectorRegistry()
    Gauge("scf_inflight_operations", "in flight", ["role"], registry=registry).labels("worker").set(inflight)
    counter = Counter("scf_requests_total", "requests", ["type"], registry=registry)
    counter.labels("postgresql").inc(requests)
    histogram = Histogram("scf_operation_duration_seconds", "time", buckets=(0.1, 1), registry=registry)
    histogram.observe(0.5)
    return generate_latest(registry)


def test_merged_metrics_label_every_sample_with_its_process_and_keep_one_type_line_per_family() -> None:
    merged = merge_metrics(
        [
            ("worker-1", parse_metrics(child_exposition(3, 10))),
            ("worker-2", parse_metrics(child_exposition(1, 5))),
        ]
    ).decode()
    lines = merged.splitlines()

    assert 'scf_inflight_operations{process="worker-1",role="worker"} 3.0' in lines
    assert 'scf_inflight_operations{process="worker-2",role="worker"} 1.0' in lines
    assert 'scf_requests_total{process="worker-1",type="postgresql"} 10.0' in lines
    assert 'scf_requests_total{process="worker-2",type="postgresql"} 5.0' in lines
    assert 'scf_operation_duration_seconds_bucket{le="1.0",process="worker-2"} 1.0' in lines
    assert lines.count("# TYPE scf_requests_total counter") == 1
    assert lines.count("# TYPE scf_operation_duration_seconds histogram") == 1
    # what Prometheus reads back is what the children said, per process
    reread = {f.name: f for f in parse_metrics(merged.encode())}
    totals = {
        s.labels["process"]: s.value for s in reread["scf_requests"].samples if s.name.endswith("_total")
    }
    assert totals == {"worker-1": 10.0, "worker-2": 5.0}


def test_a_family_whose_type_disagrees_is_dropped_not_mislabelled() -> None:
    as_gauge = CollectorRegistry()
    Gauge("scf_thing", "a gauge here", registry=as_gauge).set(7)
    as_counter = CollectorRegistry()
    Counter("scf_thing", "a counter there", registry=as_counter).inc(2)

    merged = merge_metrics(
        [("a", parse_metrics(generate_latest(as_gauge))), ("b", parse_metrics(generate_latest(as_counter)))]
    ).decode()

    assert 'scf_thing{process="a"} 7.0' in merged.splitlines()
    assert 'scf_thing_total{process="b"}' not in merged
    assert 'scf_thing{process="b"}' not in merged


@pytest.mark.parametrize(
    ("setting", "expected"), [(None, "asyncio"), ("1", "uvloop"), ("on", "uvloop"), ("0", "asyncio")]
)
def test_uvloop_runs_only_when_asked_for(
    setting: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if setting is None:
        monkeypatch.delenv(runner.UVLOOP_ENV, raising=False)
    else:
        monkeypatch.setenv(runner.UVLOOP_ENV, setting)

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    assert runner.run_loop(loop_module()) == expected


def test_a_supervised_child_names_itself_so_only_the_supervisor_announces_ready(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(runner.PROCESS_LABEL_ENV, "worker-2")
    runner.progress("ready: probes and metrics on :1234")
    monkeypatch.delenv(runner.PROCESS_LABEL_ENV)
    runner.progress("ready: probes and metrics on :9464")

    assert capsys.readouterr().err.splitlines() == [
        "scf[worker-2]: ready: probes and metrics on :1234",
        "scf: ready: probes and metrics on :9464",
    ]


def test_processes_is_an_option_of_worker_and_up_defaulting_to_the_cores() -> None:
    for command in ("worker", "up"):
        shown = CliRunner().invoke(main, [command, "--help"], terminal_width=200).output
        assert "--processes INTEGER RANGE" in shown
        assert "the cores this process may use" in shown
    refused = CliRunner().invoke(main, ["worker", "--processes", "0"])
    assert refused.exit_code == 2 and "--processes" in refused.output
