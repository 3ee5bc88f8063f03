"""Fleet processes for tests: real `scf dispatcher` / `scf worker` subprocesses, ready-checked, killable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

READY_LINE = "scf: ready:"


class FleetProcess:
    """One `python -m scf <role>` subprocess whose output goes to a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log = log_path.open("ab")
        self._offset = self._log.tell()  # a restart under the same name appends: skip the old lines
        self.proc = subprocess.Popen(  # the command line is ours, not user input
            [sys.executable, "-m", "scf", *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY_LINE in self.own_output():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"scf {' '.join(self.args)} exited early:\n{self.output()[-4000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"scf {' '.join(self.args)} not ready in {timeout}s:\n{self.output()[-4000:]}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def written_lines(self) -> list[str]:
        """The log's complete lines: while the process runs, the last one may be half written."""
        text = self.output()
        return text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]

    def own_output(self) -> str:
        """What this process wrote (the log file may hold an earlier process's lines before it)."""
        with self.log_path.open("rb") as log:
            log.seek(self._offset)
            return log.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no draining, no goodbye; whatever it held unacked goes back to RabbitMQ."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return int(self.proc.returncode)


def fleet_env(amqp_url: str, redis_url: str, secret_key: str, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SCF_AMQP_URL": amqp_url,
            "SCF_REDIS_URL": redis_url,
            "SCF_SECRET_KEY": secret_key,
            "SCF_DATA_DIR": str(data_dir),
            "SCF_HEARTBEAT_INTERVAL": "1",
            "SCF_METRICS_PORT": "0",
            "SCF_SHUTDOWN_GRACE": "5",
            "SCF_LOG_LEVEL": "info",
            # one worker process per FleetProcess (the signals and pids the suites send and watch are that
            # process's); tests/integration/test_worker_processes.py runs the supervisor on purpose
            "SCF_PROCESSES": "1",
            # the gateway of the test fleets logs in as guest: its caller header is believed
            "SCF_TRUSTED_FORWARDERS": "guest",
        }
    )
    return env
