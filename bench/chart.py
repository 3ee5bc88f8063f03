"""A PNG a reader can take in at a glance: the fleet beside its peers, throughput and p50/p99 side by side.

Each panel is a horizontal bar chart (one row per system, the fleet's label in bold, each bar labelled
with its value); latency panels group p50 and p99, CPU panels stack the process groups. Drawn with
matplotlib's Agg canvas on a bare `Figure` (no pyplot, no display, no global state).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.report import CPU_GROUPS

OUT_DIR = Path(__file__).resolve().parent / "out"
FLEET_COLOUR = "#1f77b4"
PEER_COLOUR = "#9a9a9a"
SERIES_COLOURS = {"p50": "#8fbce6", "p99": "#1f4e79"}
GROUP_COLOURS = {
    "client": "#4c72b0",
    "dispatcher": "#dd8452",
    "relay": "#dd8452",
    "worker": "#55a868",
    "responder": "#55a868",
    "rabbitmq": "#c44e52",
    "redis": "#8172b3",
    "postgres": "#937860",
}
LOG_SCALE_SPREAD = 40.0  # bars spanning more than this factor are drawn on a log axis


@dataclass(frozen=True)
class Bar:
    """One system in a panel: its label and a value per series (None: not measured)."""

    label: str
    values: Mapping[str, float | None]
    fleet: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    xlabel: str
    series: tuple[str, ...]
    bars: tuple[Bar, ...]
    stacked: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


def default_path(bench: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return OUT_DIR / f"{bench}-{stamp}.png"


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _use_log(panel: Panel) -> bool:
    if panel.stacked:
        return False
    values = [v for bar in panel.bars for v in bar.values.values() if v is not None and v > 0]
    return len(values) > 1 and max(values) / min(values) > LOG_SCALE_SPREAD


def _colour(panel: Panel, series: str, bar: Bar) -> str:
    if panel.stacked:
        return GROUP_COLOURS.get(series, "#cccccc")
    if len(panel.series) > 1:
        return SERIES_COLOURS.get(series, PEER_COLOUR)
    return FLEET_COLOUR if bar.fleet else PEER_COLOUR


def _draw(ax: object, panel: Panel) -> None:
    from matplotlib.axes import Axes
    from matplotlib.ticker import FuncFormatter

    assert isinstance(ax, Axes)
    rows = len(panel.bars)
    grouped = not panel.stacked and len(panel.series) > 1
    height = 0.8 / len(panel.series) if grouped else 0.6
    log = _use_log(panel)
    top = max(
        [
            (
                sum(v or 0 for v in bar.values.values())
                if panel.stacked
                else max((v or 0) for v in bar.values.values())
            )
            for bar in panel.bars
        ]
        or [1.0]
    )
    for row, bar in enumerate(panel.bars):
        y = rows - 1 - row  # first bar on top
        left = 0.0
        for index, series in enumerate(panel.series):
            value = bar.values.get(series)
            offset = (index - (len(panel.series) - 1) / 2) * height if grouped else 0.0
            if value is None:
                if not panel.stacked:
                    ax.text(0.01, y - offset, "n/a", va="center", fontsize=8, color="#888888",
                            transform=ax.get_yaxis_transform())  # fmt: skip
                continue
            ax.barh(
                y - offset,
                value,
                height=height,
                left=left if panel.stacked else 0.0,
                color=_colour(panel, series, bar),
                label=series,
            )
            if panel.stacked:
                left += value
            else:
                ax.text(value, y - offset, " " + _fmt(value), va="center", fontsize=8)
        if panel.stacked and left > 0:
            ax.text(left, y, " " + _fmt(left), va="center", fontsize=8, fontweight="bold")
    ax.set_yticks(range(rows))
    ax.set_yticklabels([bar.label for bar in reversed(panel.bars)], fontsize=9)
    for tick, bar in zip(ax.get_yticklabels(), reversed(panel.bars), strict=True):
        if bar.fleet:
            tick.set_fontweight("bold")
            tick.set_color(FLEET_COLOUR)
    ax.set_title(panel.title, fontsize=11, loc="left")
    ax.set_xlabel(panel.xlabel + (" (log scale)" if log else ""), fontsize=9)
    if log:
        ax.set_xscale("log")
        smallest = min(v for bar in panel.bars for v in bar.values.values() if v is not None and v > 0)
        ax.set_xlim(smallest / 3, top * 4)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    else:
        ax.set_xlim(0, top * 1.22 if top > 0 else 1)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    if unique and panel.stacked:  # beside the axes: a stacked bar may run to the right edge
        ax.legend(unique.values(), unique.keys(), fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    elif unique and grouped:  # above the axes' right end, clear of the bars
        ax.legend(
            unique.values(), unique.keys(), fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0),
            ncol=len(unique), frameon=False,
        )  # fmt: skip
    for i, note in enumerate(panel.notes):
        ax.text(0, -0.18 - 0.06 * i, note, transform=ax.transAxes, fontsize=7.5, color="#555555", va="top")


def write_chart(path: Path, title: str, panels: Sequence[Panel], footer: str = "") -> Path:
    """Draw `panels` two per row under `title` and save a PNG at `path` (folders are made)."""
    from matplotlib.figure import Figure

    columns = 2 if len(panels) > 1 else 1
    rows = math.ceil(len(panels) / columns)
    tallest = max((len(p.bars) for p in panels), default=1)
    figure = Figure(figsize=(8 * columns, (1.2 + 0.55 * tallest) * rows + 1.2), layout="constrained")
    figure.suptitle(title, fontsize=13, fontweight="bold")
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index < len(panels):
            _draw(ax, panels[index])
        else:
            ax.set_visible(False)
    if footer:
        figure.supxlabel(footer, fontsize=8, color="#555555")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=110)
    return path


def cpu_panel(
    title: str,
    rows: Sequence[tuple[str, Mapping[str, float | None] | None, bool]],
    unit: str = "operation",
) -> Panel:
    """A stacked CPU panel from `(label, cpu breakdown, is_fleet)` rows; absent groups are left out."""
    present = [g for g in CPU_GROUPS if any(cpu and cpu.get(g) is not None for _, cpu, _ in rows)]
    bars = tuple(
        Bar(label, {g: _stackable((cpu or {}).get(g)) for g in present}, fleet) for label, cpu, fleet in rows
    )
    return Panel(title, f"CPU µs per {unit}, by process group", tuple(present), bars, stacked=True)


def _stackable(value: float | None) -> float | None:
    """A negative CPU figure is a counting artefact (the peers' meter loses processes that exit during a
    phase): a stacked bar shows it as 0, the JSON keeps it as measured."""
    return None if value is None else max(0.0, value)
