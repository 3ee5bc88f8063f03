"""Per-connector operation counts a worker adds up in memory and flushes to Redis about once a second.

Counting each operation in Redis cost a round trip per operation; a tally costs a dict update, and its
flush is one pipeline of HINCRBY/HINCRBYFLOAT (sums, so any number of workers add up exactly as before).
A flush that fails puts its counts back (`restore`), so a Redis blip delays counts but loses none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scf.fleet import latency
from scf.schemas.operation import OperationResult


@dataclass
class ConnectorTally:
    total: int = 0
    successful: int = 0
    failed: int = 0
    seconds: float = 0.0
    #: (10-second window, latency bucket) -> operations
    histogram: dict[tuple[int, int], int] = field(default_factory=dict)
    #: the newest error seen: (its JSON, when)
    last_error: tuple[str, float] | None = None

    def merge(self, other: ConnectorTally) -> None:
        self.total += other.total
        self.successful += other.successful
        self.failed += other.failed
        self.seconds += other.seconds
        for slot, count in other.histogram.items():
            self.histogram[slot] = self.histogram.get(slot, 0) + count
        if other.last_error is not None and (
            self.last_error is None or other.last_error[1] >= self.last_error[1]
        ):
            self.last_error = other.last_error


class Tally:
    """Counts by connector name since the last `take`."""

    def __init__(self) -> None:
        self._by_name: dict[str, ConnectorTally] = {}

    def __bool__(self) -> bool:
        return bool(self._by_name)

    def count(self, service_name: str, result: OperationResult, now: float) -> None:
        tally = self._by_name.get(service_name)
        if tally is None:
            tally = self._by_name[service_name] = ConnectorTally()
        tally.total += 1
        if result.ok:
            tally.successful += 1
        else:
            tally.failed += 1
        tally.seconds += result.execution_time
        slot = (latency.window_of(now), latency.bucket_of(result.execution_time))
        tally.histogram[slot] = tally.histogram.get(slot, 0) + 1
        if result.error is not None:
            tally.last_error = (result.error.model_dump_json(), now)

    def take(self) -> dict[str, ConnectorTally]:
        """Everything counted so far; the tally starts again from zero."""
        taken, self._by_name = self._by_name, {}
        return taken

    def restore(self, taken: dict[str, ConnectorTally], now: float) -> None:
        """Put back counts whose flush failed (added to whatever was counted meanwhile). Latency windows
        older than a minute are dropped: nobody reads them any more, and a long outage must not grow
        the tally without bound (the totals are kept: they are a few numbers per connector)."""
        oldest = latency.window_of(now) - latency.WINDOWS_PER_MINUTE
        for name, tally in taken.items():
            tally.histogram = {slot: n for slot, n in tally.histogram.items() if slot[0] >= oldest}
            current = self._by_name.get(name)
            if current is None:
                self._by_name[name] = tally
            else:
                current.merge(tally)
