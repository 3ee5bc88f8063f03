"""What one bench's fleet runs in: a vhost of its own, an empty Redis, a logs folder, access control as
asked, and the environment its processes get. `close()` undoes all of it, whatever happened.

Every bench that starts the fleet (`bench.rpc`, `bench.postgres`, `bench.scaleout`) stands on one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path
from types import FrameType

from cryptography.fernet import Fernet

from bench import procstat
from bench.access import BenchAccess
from bench.redis_target import BenchRedis
from scf.fleet.logging import configure_logging
from tests.support.fleet import fleet_env

LOCAL_BROKER = "amqp://guest:guest@127.0.0.1:5672"


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def rabbitmqctl(*args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], check=check, capture_output=True, text=True, timeout=60
    )
    return done.stdout.strip()


def sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    """Outside the event loop SIGTERM takes Ctrl-C's path to the cleanup (inside it, a bench cancels
    its measuring task instead)."""
    raise KeyboardInterrupt


def begin(log_level: str = "warning") -> tuple[float, float | None]:
    """What every bench does first: logs to stderr (stdout is the result), SIGTERM as Ctrl-C, and how
    busy the machine was before the run. Returns (perf_counter at the start, cores busy)."""
    started = time.perf_counter()
    configure_logging(log_level, json_output=False)
    signal.signal(signal.SIGTERM, sigterm_as_interrupt)
    background = procstat.cores_busy_over(1.0)
    say(f"machine: {background} of {os.cpu_count()} cores busy before the run (other tenants)")
    return started, background


class BenchStage:
    def __init__(
        self,
        name: str,
        *,
        auth: bool,
        redis_url: str | None = None,
        amqp_base: str = LOCAL_BROKER,
        log_dir: Path | None = None,
    ) -> None:
        """`redis_url`: an empty database to use (None: a private redis-server); `log_dir`: where the
        process logs go (None: a new temporary folder)."""
        self.vhost = f"scf-bench-{uuid.uuid4().hex[:8]}"
        self.amqp_url = f"{amqp_base.rstrip('/')}/{urllib.parse.quote(self.vhost, safe='')}"
        self.redis_url = redis_url
        self.logs = log_dir or Path(tempfile.mkdtemp(prefix=f"scf-bench-{name}-"))
        self.logs.mkdir(parents=True, exist_ok=True)
        self.access = BenchAccess(self.vhost, self.logs, enabled=auth)
        self.redis: BenchRedis | None = None
        self.client_url = self.amqp_url
        self._vhost_created = False

    def open(self) -> dict[str, str]:
        """Make the vhost, Redis and access control; the environment of the fleet's processes."""
        private = "a private redis-server" if self.redis_url is None else "the empty --redis-url db"
        say(f"vhost {self.vhost}, {private}, logs in {self.logs}")
        self.redis = BenchRedis.open(self.redis_url)  # first: if it refuses, nothing else was made yet
        rabbitmqctl("add_vhost", self.vhost)
        self._vhost_created = True
        rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        env = fleet_env(self.amqp_url, self.redis.url, Fernet.generate_key().decode(), self.logs / "scf-data")
        env.update(self.access.open())
        self.client_url = self.access.client_url(self.amqp_url)
        say(f"access control {'on: client ' + self.access.user if self.access.enabled else 'off'}")
        return env

    def close(self) -> None:
        """Delete the vhost, the client user and the Redis state (each step tried, whatever failed)."""
        try:
            self.access.close()
        except Exception as exc:
            say(f"could not delete the bench's broker user: {type(exc).__name__}")
        if self._vhost_created:
            try:
                rabbitmqctl("delete_vhost", self.vhost, check=False)
            except Exception as exc:
                say(f"could not delete vhost {self.vhost}: {exc!r}")
        if self.redis is not None:
            try:
                self.redis.close()
            except Exception as exc:
                say(f"could not clean up redis: {type(exc).__name__}")
