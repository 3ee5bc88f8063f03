"""Which route the bench's calls took: through the dispatcher (`scf.requests`) or straight to `scf.ops`.

The dispatcher counts every `operation.execute` it takes from `scf.requests` in its Prometheus counter
`scf_requests_total{type,outcome}`; its metrics port is in its "ready" line. Read before and after a
phase, the counter says how many of the phase's calls went through it; the rest took the client's fast
path. No management plugin, no broker-side counters needed.
"""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass

_READY_PORT = re.compile(r"ready: probes and metrics on :(\d+)")
_SAMPLE = re.compile(r"^scf_requests_total\{(?P<labels>[^}]*)\}\s+(?P<value>[0-9.eE+-]+)\s*$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metrics_port(log_text: str) -> int | None:
    """The probe/metrics port from a fleet process's "scf: ready: probes and metrics on :PORT" line."""
    found = _READY_PORT.findall(log_text)
    return int(found[-1]) if found else None


def requests_taken(metrics_text: str, message_type: str = "operation.execute") -> int:
    """Sum of `scf_requests_total` over every outcome for `message_type`, from a /metrics page."""
    total = 0.0
    for match in _SAMPLE.finditer(metrics_text):
        labels = dict(_LABEL.findall(match.group("labels")))
        if labels.get("type") == message_type:
            total += float(match.group("value"))
    return int(total)


def fetch_metrics(port: int, timeout: float = 5.0) -> str:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
    return body.decode(errors="replace")


@dataclass
class RouteCounter:
    """Counts, around a phase, the calls the dispatcher took; `None` figures when it cannot be read."""

    port: int | None
    _start: int | None = None

    def read(self) -> int | None:
        if self.port is None:
            return None
        try:
            return requests_taken(fetch_metrics(self.port))
        except OSError:
            return None

    def start(self) -> None:
        self._start = self.read()

    def stop(self, calls: int) -> dict[str, int | None]:
        return routing(calls, self._start, self.read())


def routing(calls: int, before: int | None, after: int | None) -> dict[str, int | None]:
    """`{"calls", "via_dispatcher", "direct_to_ops"}` for a phase of `calls` calls."""
    if before is None or after is None:
        return {"calls": calls, "via_dispatcher": None, "direct_to_ops": None}
    via = max(0, after - before)
    return {"calls": calls, "via_dispatcher": via, "direct_to_ops": max(0, calls - via)}
