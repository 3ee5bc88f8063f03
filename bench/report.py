"""The ratios issue 12 is judged by, computed from one run's JSON, and the tables printed on stderr.

Pure functions over the dictionaries the benches print: `rpc_ratios` / `pg_ratios` read the fleet's
figures and the `peers` block, `judge` sets each ratio against its goal, `ratio_table` and
`cpu_table` render what a person reads at the end of a run.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

CPU_GROUPS = ("client", "dispatcher", "worker", "relay", "responder", "rabbitmq", "redis", "postgres")


def ratio(a: float | None, b: float | None, digits: int = 3) -> float | None:
    """a / b, or None when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return round(a / b, digits)


def dig(data: Mapping[str, Any] | None, *path: str) -> Any:
    """data[path[0]][path[1]]..., or None as soon as a step is missing or not a mapping."""
    value: Any = data
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Goal:
    """`ratio <op> target`: higher-is-better ratios use >=, latency ratios <=."""

    op: str
    target: float

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        compare: Callable[[float, float], bool] = operator.ge if self.op == ">=" else operator.le
        return compare(value, self.target)

    def __str__(self) -> str:
        return f"{self.op} {self.target:g}"


# The table of issue 12 ("How it is measured"), by ratio name.
RPC_GOALS = {
    "throughput_fleet_over_bare_two_hop": Goal(">=", 1.0),
    "throughput_fleet_over_celery_prefork2": Goal(">=", 2.0),
    "p50_c1_fleet_over_bare_two_hop": Goal("<=", 1.2),
}
PG_GOALS = {
    "point_read_fleet_over_minimal_worker": Goal(">=", 1.0),
    "point_read_fleet_over_celery_prefork2": Goal(">=", 3.0),
    "insert_c4_fleet_over_copy": Goal(">=", 0.8),
    "point_read_p50_c1_fleet_over_minimal_worker": Goal("<=", 1.2),
}


def rpc_ratios(line: Mapping[str, Any]) -> dict[str, float | None]:
    """Every ratio of bench.rpc: fleet over the in-run bare two-hop and over each peer."""
    fleet, bare = line.get("fleet"), line.get("bare_two_hop")
    peers = line.get("peers")

    def fleet_over(other: Any, key: str) -> float | None:
        return ratio(number(dig(fleet, key)), number(dig(other, key)))

    return {
        "throughput_fleet_over_bare_two_hop": fleet_over(bare, "throughput_rps"),
        "throughput_fleet_over_celery_prefork2": fleet_over(dig(peers, "celery_prefork2"), "throughput_rps"),
        "throughput_fleet_over_raw_hop_durable": fleet_over(dig(peers, "raw_hop_durable"), "throughput_rps"),
        "throughput_fleet_over_raw_direct_durable": fleet_over(
            dig(peers, "raw_direct_durable"), "throughput_rps"
        ),
        "p50_c1_fleet_over_bare_two_hop": fleet_over(bare, "p50_ms"),
        "p50_c1_fleet_over_celery_prefork2": fleet_over(dig(peers, "celery_prefork2"), "p50_ms"),
        "p50_c1_fleet_over_raw_hop_durable": fleet_over(dig(peers, "raw_hop_durable"), "p50_ms"),
        "cpu_per_call_fleet_over_bare_two_hop": ratio(
            number(dig(fleet, "cpu_us_per_op", "total")), number(dig(bare, "cpu_us_per_op", "total"))
        ),
    }


def pg_ratios(line: Mapping[str, Any]) -> dict[str, float | None]:
    """Every ratio of bench.postgres: point reads and inserts, fleet over the direct side and the peers."""
    read, insert = line.get("point_read"), line.get("insert")
    peers = line.get("peers")
    fleet_rps = number(dig(read, "fleet", "per_second"))
    fleet_c1_p50 = number(dig(read, "fleet_c1", "p50_ms"))
    fleet_c4_rows = number(dig(insert, "fleet_c4", "rows_per_second"))
    return {
        "point_read_fleet_over_minimal_worker": ratio(
            fleet_rps, number(dig(peers, "point_read", "minimal_worker", "per_second"))
        ),
        "point_read_fleet_over_celery_prefork2": ratio(
            fleet_rps, number(dig(peers, "point_read", "celery_prefork2", "per_second"))
        ),
        "point_read_fleet_over_asyncpg_pool": ratio(fleet_rps, number(dig(read, "direct", "per_second"))),
        "insert_c4_fleet_over_copy": number(dig(insert, "ratio_rows_per_second_c4")),
        "insert_c4_fleet_over_minimal_worker": ratio(
            fleet_c4_rows, number(dig(peers, "insert", "minimal_worker", "rows_per_second"))
        ),
        "insert_c4_fleet_over_celery_prefork2": ratio(
            fleet_c4_rows, number(dig(peers, "insert", "celery_prefork2", "rows_per_second"))
        ),
        "point_read_p50_c1_fleet_over_minimal_worker": ratio(
            fleet_c1_p50, number(dig(peers, "point_read", "minimal_worker", "c1_p50_ms"))
        ),
        "point_read_p50_c1_fleet_over_celery_prefork2": ratio(
            fleet_c1_p50, number(dig(peers, "point_read", "celery_prefork2", "c1_p50_ms"))
        ),
    }


def judge(ratios: Mapping[str, float | None], goals: Mapping[str, Goal]) -> dict[str, dict[str, Any]]:
    """`{name: {"goal": ">= 1", "met": bool | None}}` for each ratio that has a goal."""
    return {name: {"goal": str(goal), "met": goal.met(ratios.get(name))} for name, goal in goals.items()}


def ratio_table(ratios: Mapping[str, float | None], goals: Mapping[str, Goal]) -> str:
    width = max((len(name) for name in ratios), default=10)
    lines = [f"{'ratio':<{width}}  {'value':>8}  goal      met"]
    for name, value in ratios.items():
        goal = goals.get(name)
        shown = "n/a" if value is None else f"{value:.3f}"
        met = goal.met(value) if goal else None
        verdict = "" if goal is None else {True: "yes", False: "NO", None: "n/a"}[met]
        lines.append(f"{name:<{width}}  {shown:>8}  {str(goal) if goal else '':<8}  {verdict}")
    return "\n".join(lines)


def cpu_total(cpu: Mapping[str, Any] | None) -> float | None:
    """The `total` of a CPU breakdown, or the sum of its groups when it has none (the peers' rows)."""
    if not cpu:
        return None
    given = number(cpu.get("total"))
    if given is not None:
        return given
    values = [v for g in CPU_GROUPS if (v := number(cpu.get(g))) is not None]
    return round(sum(values), 1) if values else None


def cpu_table(rows: Iterable[tuple[str, Mapping[str, Any] | None]]) -> str:
    """One line per measured system: CPU µs per operation by process group, total, cores busy."""
    materialised = [(label, {**(cpu or {}), "total": cpu_total(cpu)}) for label, cpu in rows]
    groups = [g for g in CPU_GROUPS if any(number(cpu.get(g)) is not None for _, cpu in materialised)]
    width = max((len(label) for label, _ in materialised), default=6)
    head = f"{'CPU us/op':<{width}}  " + "  ".join(f"{g:>10}" for g in [*groups, "total", "cores"])
    lines = [head]
    for label, cpu in materialised:
        cells = []
        for key in [*groups, "total", "machine_cores_busy"]:
            value = number(cpu.get(key))
            cells.append(f"{'-' if value is None else f'{value:.1f}':>10}")
        lines.append(f"{label:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


def goal_summary(ratios: Mapping[str, float | None], goals: Mapping[str, Goal]) -> str:
    """One line per goal for a chart's footer: `name = value (goal >= 1: met)`."""
    lines = []
    for name, goal in goals.items():
        value = ratios.get(name)
        verdict = {True: "met", False: "NOT met", None: "not measured"}[goal.met(value)]
        lines.append(f"{name} = {'n/a' if value is None else f'{value:.2f}'} (goal {goal}: {verdict})")
    return "\n".join(lines)
