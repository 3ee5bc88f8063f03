"""Access control for a bench fleet, as production runs it (docs/access-control.md).

The fleet logs in as guest; the bench's client is a RabbitMQ user of its own, named in a policy file
with the grants the bench needs and a rate so high it never refuses, so every call pays what a real
caller pays: its principal resolved and checked by the dispatcher or the worker, and its quota charged
(one GCRA script in Redis). `--auth off` runs the fleet with `SCF_AUTH=off` instead (the cost of the
checks is the difference).
"""

from __future__ import annotations

import secrets
import subprocess
import urllib.parse
import uuid
from pathlib import Path

#: far above any bench's rate: the limiter runs on every call and never refuses
BENCH_RATE = 1_000_000
BENCH_BURST = 10_000_000


class BenchAccess:
    def __init__(self, vhost: str, directory: Path, *, enabled: bool) -> None:
        self.vhost = vhost
        self.enabled = enabled
        self.user = f"scf-bench-client-{uuid.uuid4().hex[:6]}"
        self.password = secrets.token_hex(16)  # never a leading "-", which rabbitmqctl reads as an option
        self.policy = directory / "bench-policy.yaml"
        self._created = False

    def open(self) -> dict[str, str]:
        """Create the client user and the policy; the env a bench fleet adds to fleet_env()."""
        if not self.enabled:
            return {"SCF_AUTH": "off"}
        _rabbitmqctl("add_user", self.user, self.password)
        self._created = True
        _rabbitmqctl("set_permissions", "-p", self.vhost, self.user, ".*", ".*", ".*")
        self.policy.parent.mkdir(parents=True, exist_ok=True)
        self.policy.write_text(
            "principals:\n"
            f"  {self.user}:\n"
            '    grants: ["connectors:read", "connectors:write", "execute:read", "execute:write"]\n'
            f"    rate: {BENCH_RATE}\n"
            f"    burst: {BENCH_BURST}\n"
        )
        return {"SCF_AUTH": "on", "SCF_POLICY_FILE": str(self.policy)}

    def client_url(self, fleet_url: str) -> str:
        """The URL the bench's clients connect with (the fleet's own login when access control is off)."""
        if not self.enabled:
            return fleet_url
        parts = urllib.parse.urlsplit(fleet_url)
        host = parts.hostname or "127.0.0.1"
        netloc = (
            f"{urllib.parse.quote(self.user)}:{urllib.parse.quote(self.password)}@{host}:{parts.port or 5672}"
        )
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def close(self) -> None:
        if self._created:
            subprocess.run(["rabbitmqctl", "-q", "delete_user", self.user], capture_output=True, timeout=60)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)
