"""Issue 12's ratios from a bench's JSON, the goals they are held to, the chart and the route counter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from matplotlib.image import imread

from bench import chart, fleetstats, postgres, report, rpc
from bench.report import RPC_GOALS, Goal, judge, pg_ratios, ratio, rpc_ratios

RPC_LINE: dict[str, Any] = {
    "fleet": {
        "p50_ms": 4.0, "p99_ms": 9.0, "throughput_rps": 600.0, "throughput_p50_ms": 100.0,
        "throughput_p99_ms": 180.0,
        "cpu_us_per_op": {"client": 300.0, "dispatcher": 200.0, "worker": 500.0, "rabbitmq": 600.0,
                          "redis": 50.0, "postgres": 0.0, "total": 1650.0, "machine_cores_busy": 1.9},
    },
    "bare_two_hop": {
        "p50_ms": 2.5, "p99_ms": 5.0, "throughput_rps": 800.0, "throughput_p50_ms": 80.0,
        "throughput_p99_ms": 120.0,
        "cpu_us_per_op": {"client": 250.0, "relay": 300.0, "responder": 300.0, "rabbitmq": 250.0,
                          "total": 1100.0},
    },
    "peers": {
        "raw_hop_durable": {"p50_ms": 2.0, "throughput_rps": 1000.0, "p99_ms": 3.0,
                            "cpu_us_per_op": {"client": 330.0, "worker": 360.0, "dispatcher": 350.0}},
        "raw_direct_durable": {"p50_ms": 1.2, "throughput_rps": 1500.0},
        "celery_prefork2": {"p50_ms": 2.0, "p99_ms": 3.1, "throughput_rps": 300.0,
                            "cpu_us_per_op": {"client": 845.0, "worker": 950.0, "redis": -4.0}},
    },
    "calls": {"throughput_concurrency": 64},
}  # fmt: skip

PG_LINE: dict[str, Any] = {
    "point_read": {
        "fleet": {"per_second": 1600.0, "p50_ms": 9.0, "p99_ms": 20.0, "cpu_us_per_op": {"worker": 400.0}},
        "fleet_c1": {"p50_ms": 1.5, "p99_ms": 2.5},
        "direct": {"per_second": 8000.0, "p50_ms": 1.3, "p99_ms": 2.0},
        "direct_c1": {"p50_ms": 0.1, "p99_ms": 0.2},
    },
    "insert": {
        "fleet_c4": {"rows_per_second": 120_000, "cpu_us_per_row": {"worker": 5.0, "postgres": 3.0}},
        "direct_c4": {"rows_per_second": 300_000, "cpu_us_per_row": {"client": 1.0, "postgres": 2.0}},
        "ratio_rows_per_second_c4": 0.4,
    },
    "peers": {
        "point_read": {
            "minimal_worker": {"per_second": 1000.0, "c1_p50_ms": 1.25, "p50_ms": 14.0, "p99_ms": 40.0},
            "celery_prefork2": {"per_second": 400.0, "c1_p50_ms": 3.0},
            "asyncpg_pool": None,
        },
        "insert": {
            "minimal_worker": {"rows_per_second": 150_000},
            "celery_prefork2": None,
            "copy_b1000": None,
        },
    },
    "rows": 10_000,
    "batch": 1000,
    "concurrency": {"read": 16, "insert": 4},
}


def test_ratio_is_none_when_a_side_is_missing_or_zero() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None and ratio(3.0, None) is None and ratio(3.0, 0) is None


def test_rpc_ratios_compare_the_fleet_with_the_in_run_bare_path_and_each_peer() -> None:
    ratios = rpc_ratios(RPC_LINE)
    assert ratios["throughput_fleet_over_bare_two_hop"] == 0.75
    assert ratios["throughput_fleet_over_celery_prefork2"] == 2.0
    assert ratios["throughput_fleet_over_raw_hop_durable"] == 0.6
    assert ratios["throughput_fleet_over_raw_direct_durable"] == 0.4
    assert ratios["p50_c1_fleet_over_bare_two_hop"] == 1.6
    assert ratios["p50_c1_fleet_over_celery_prefork2"] == 2.0
    assert ratios["cpu_per_call_fleet_over_bare_two_hop"] == 1.5


def test_rpc_ratios_without_peers_are_null_but_the_in_run_ones_stay() -> None:
    ratios = rpc_ratios({**RPC_LINE, "peers": {"raw_hop_durable": None, "celery_prefork2": None}})
    assert ratios["throughput_fleet_over_celery_prefork2"] is None
    assert ratios["throughput_fleet_over_bare_two_hop"] == 0.75


def test_pg_ratios_cover_every_row_of_the_issue() -> None:
    ratios = pg_ratios(PG_LINE)
    assert ratios["point_read_fleet_over_minimal_worker"] == 1.6
    assert ratios["point_read_fleet_over_celery_prefork2"] == 4.0
    assert ratios["point_read_fleet_over_asyncpg_pool"] == 0.2
    assert ratios["insert_c4_fleet_over_copy"] == 0.4  # the bench's own ratio_rows_per_second_c4
    assert ratios["insert_c4_fleet_over_minimal_worker"] == 0.8
    assert ratios["insert_c4_fleet_over_celery_prefork2"] is None
    assert ratios["point_read_p50_c1_fleet_over_minimal_worker"] == 1.2
    assert ratios["point_read_p50_c1_fleet_over_celery_prefork2"] == 0.5


def test_goals_are_higher_is_better_for_throughput_and_lower_for_latency() -> None:
    assert Goal(">=", 1.0).met(1.0) is True and Goal(">=", 1.0).met(0.99) is False
    assert Goal("<=", 1.2).met(1.2) is True and Goal("<=", 1.2).met(1.21) is False
    assert Goal(">=", 1.0).met(None) is None
    verdicts = judge(rpc_ratios(RPC_LINE), RPC_GOALS)
    assert verdicts["throughput_fleet_over_bare_two_hop"] == {"goal": ">= 1", "met": False}
    assert verdicts["throughput_fleet_over_celery_prefork2"] == {"goal": ">= 2", "met": True}
    assert verdicts["p50_c1_fleet_over_bare_two_hop"] == {"goal": "<= 1.2", "met": False}
    assert set(judge(pg_ratios(PG_LINE), report.PG_GOALS)) == set(report.PG_GOALS)


def test_tables_show_verdicts_and_cpu_totals() -> None:
    table = report.ratio_table(rpc_ratios(RPC_LINE), RPC_GOALS)
    assert "throughput_fleet_over_bare_two_hop" in table and "NO" in table and "yes" in table
    cpu = report.cpu_table([("fleet", RPC_LINE["fleet"]["cpu_us_per_op"]), ("celery", {"worker": 950.0})])
    assert "dispatcher" in cpu and "1650.0" in cpu and "950.0" in cpu
    assert report.cpu_total({"client": 1.5, "worker": 2.0}) == 3.5
    assert report.cpu_total(None) is None
    summary = report.goal_summary({"throughput_fleet_over_bare_two_hop": None}, RPC_GOALS)
    assert "not measured" in summary and summary.count("\n") == len(RPC_GOALS) - 1


@pytest.mark.parametrize("bench", ["rpc", "postgres"])
def test_chart_is_written_as_a_valid_png(bench: str, tmp_path: Path) -> None:
    panels = rpc.chart_panels(RPC_LINE) if bench == "rpc" else postgres.chart_panels(PG_LINE)
    assert any(bar.fleet for panel in panels for bar in panel.bars)
    path = chart.write_chart(tmp_path / "sub" / f"{bench}.png", f"bench.{bench}", panels, "footer\nline two")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(path)
    assert pixels.shape[0] > 400 and pixels.shape[1] > 800
    assert pixels.std() > 0.05  # not a blank canvas


def test_cpu_panel_stacks_known_groups_and_shows_negatives_as_zero() -> None:
    panel = chart.cpu_panel(
        "cpu", [("fleet", {"client": 1.0, "total": 9.0}, True), ("peer", {"redis": -4.0}, False)]
    )
    assert panel.series == ("client", "redis") and panel.stacked
    assert panel.bars[1].values == {"client": None, "redis": 0.0}


def test_default_chart_path_is_under_bench_out() -> None:
    path = chart.default_path("rpc")
    assert path.parent == chart.OUT_DIR and path.name.startswith("rpc-") and path.suffix == ".png"


METRICS = """# HELP scf_requests_total Requests taken from scf.requests, by type and outcome.
# TYPE scf_requests_total counter
scf_requests_total{outcome="forwarded",type="operation.execute"} 480.0
scf_requests_total{outcome="answered",type="operation.execute"} 20.0
scf_requests_total{outcome="answered",type="connector.create"} 1.0
scf_requests_created{outcome="forwarded",type="operation.execute"} 1.7e+09
"""


def test_route_counter_reads_the_dispatcher_counter() -> None:
    assert fleetstats.requests_taken(METRICS) == 500
    assert fleetstats.requests_taken(METRICS, "connector.create") == 1
    assert (
        fleetstats.metrics_port("scf: starting dispatcher\nscf: ready: probes and metrics on :40123 (/h)")
        == 40123
    )
    assert fleetstats.metrics_port("scf: starting") is None
    assert fleetstats.routing(500, 100, 400) == {"calls": 500, "via_dispatcher": 300, "direct_to_ops": 200}
    assert fleetstats.routing(500, None, 400)["via_dispatcher"] is None
    assert fleetstats.RouteCounter(None).stop(3) == {
        "calls": 3,
        "via_dispatcher": None,
        "direct_to_ops": None,
    }


def test_the_json_keys_issue_12_names_are_kept() -> None:
    phase = rpc.Phase("p", 1, latencies=[0.001, 0.002], elapsed=0.5)
    fleet = rpc.Side(phases=[phase], latency=phase, throughput=phase, cpu={"client": 1.0})
    bare = rpc.Side(phases=[phase], latency=phase, throughput=phase)
    config = rpc.Config(
        warmup=0, calls=2, throughput_calls=2, concurrency=64, worker_concurrency=64, prefetch=64,
        timeout=1.0, amqp_base="amqp://", redis_url=None, log_dir=None, quick=True,
    )  # fmt: skip
    line = rpc.result_line(config, fleet, bare, {})
    assert line["fleet"]["throughput_rps"] == 4.0 and line["bare_two_hop"]["throughput_rps"] == 4.0
    assert line["ratios"]["throughput_fleet_over_bare_two_hop"] == 1.0
    assert line["peers"]["celery_prefork2"] is None  # no peers ran: null, not absent
    assert line["goals"]["throughput_fleet_over_celery_prefork2"]["met"] is None
    args = postgres.parse_args(["--quick", "--no-peers", "--no-chart"])
    pg = postgres.result_line(args, {"insert": PG_LINE["insert"], "point_read": PG_LINE["point_read"]}, {})
    assert pg["point_read"]["fleet"]["per_second"] == 1600.0
    assert pg["insert"]["ratio_rows_per_second_c4"] == 0.4
    assert pg["peers"]["point_read"]["minimal_worker"] is None
    assert pg["ratios"]["insert_c4_fleet_over_copy"] == 0.4


def test_a_chart_without_peers_still_draws(tmp_path: Path) -> None:
    line = {key: value for key, value in RPC_LINE.items() if key != "peers"}
    path = chart.write_chart(tmp_path / "rpc.png", "no peers", rpc.chart_panels(line))
    assert imread(path).std() > 0.05
    bare_pg = {"point_read": {}, "insert": {}, "concurrency": {"read": 16, "insert": 4}}
    assert (
        chart.write_chart(tmp_path / "pg.png", "nothing", postgres.chart_panels(bare_pg)).stat().st_size > 0
    )
