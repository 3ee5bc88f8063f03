"""The peer benchmarks (bare aio-pika, Celery, the minimal aio-pika + asyncpg worker), run in the same
invocation as the fleet's so every ratio compares figures taken minutes apart on the same machine.

The peers live outside this repository (`../shared/peers/` beside the main checkout; `--peers DIR`
names another place). Each script runs through its own `run` wrapper (its own virtualenv) as a
subprocess in a session of its own, prints progress on stderr (passed through) and one JSON line last
on stdout, which is parsed here and cut down to the rows the fleet is compared with.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
PEERS_SUBPATH = Path("shared") / "peers"


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


# === where the peers are ===============================================================================


def main_checkout(repo_root: Path) -> Path:
    """The main checkout's root: `repo_root` itself, or the checkout a git worktree belongs to."""
    dot_git = repo_root / ".git"
    if dot_git.is_file():  # a worktree: "gitdir: <main>/.git/worktrees/<name>"
        match = re.match(r"gitdir:\s*(.+)", dot_git.read_text(errors="replace").strip())
        if match:
            gitdir = Path(match.group(1))
            if not gitdir.is_absolute():
                gitdir = (repo_root / gitdir).resolve()
            if gitdir.parent.name == "worktrees":
                return gitdir.parent.parent.parent
    return repo_root


def default_peers_dir(repo_root: Path = REPO_ROOT) -> Path | None:
    """`../shared/peers` beside the repository (beside its main checkout when run from a worktree)."""
    for root in dict.fromkeys((repo_root, main_checkout(repo_root))):
        candidate = root.parent / PEERS_SUBPATH
        if (candidate / "run").is_file():
            return candidate
    return None


def resolve_peers_dir(option: str | None, *, disabled: bool) -> Path | None:
    """The peers folder to use, or None (said on stderr) when there is none or `--no-peers` was given."""
    if disabled:
        say("peers: skipped (--no-peers); the peer fields stay null")
        return None
    if option is not None:
        path = Path(option).expanduser().resolve()
        if (path / "run").is_file():
            return path
        say(f"peers: {path} has no `run` script; the peer fields stay null")
        return None
    found = default_peers_dir()
    if found is None:
        say(f"peers: no ../{PEERS_SUBPATH} beside the repository; the peer fields stay null (--peers DIR)")
    return found


# === running one peer script ===========================================================================


@dataclass(frozen=True)
class PeerJob:
    """One peer script and its arguments; `name` is its key in the `peers` block."""

    name: str
    script: str
    args: tuple[str, ...]

    def command(self, peers_dir: Path) -> list[str]:
        return [str(peers_dir / "run"), self.script, *self.args]

    def shell(self) -> str:
        """The command as a person would type it from the repository root (for the README and JSON)."""
        return " ".join(["../shared/peers/run", self.script, *self.args])


@dataclass
class PeerRun:
    job: PeerJob
    data: dict[str, Any] | None
    error: str | None
    elapsed_s: float


def last_json_line(stdout: str) -> dict[str, Any] | None:
    """The last stdout line that is a JSON object (the peers' summary), or None."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _peer_env() -> dict[str, str]:
    # The peers have their own virtualenv: our PYTHONPATH (this checkout) must not leak into it.
    env = dict(os.environ)
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    return env


def _end_session(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the peer's whole session (its workers too), SIGKILL what is left after 10 s."""
    for signum, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signum)  # the session we created: its id is the peer's pid
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def run_peer(peers_dir: Path, job: PeerJob, timeout: float = 600.0) -> PeerRun:
    say(f"peers: {job.shell()}")
    started = time.perf_counter()
    proc = subprocess.Popen(
        job.command(peers_dir),
        stdout=subprocess.PIPE,
        stderr=None,  # the peer's progress goes straight to our stderr
        stdin=subprocess.DEVNULL,
        text=True,
        env=_peer_env(),
        start_new_session=True,
    )
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _end_session(proc)
        proc.communicate()
        return PeerRun(job, None, f"timed out after {timeout:.0f}s", time.perf_counter() - started)
    except BaseException:  # Ctrl-C / SIGTERM: the peer and its workers go too
        _end_session(proc)
        raise
    elapsed = time.perf_counter() - started
    data = last_json_line(stdout)
    if proc.returncode != 0:
        return PeerRun(job, data, f"exit status {proc.returncode}", elapsed)
    if data is None:
        return PeerRun(job, None, "no JSON line on stdout", elapsed)
    say(f"peers: {job.script} done in {elapsed:.1f}s")
    return PeerRun(job, data, None, elapsed)


def run_peers(peers_dir: Path | None, jobs: list[PeerJob]) -> dict[str, PeerRun]:
    if peers_dir is None:
        return {}
    say(f"peers: {len(jobs)} scripts from {peers_dir} (about a minute each)")
    runs = {}
    for job in jobs:
        run = run_peer(peers_dir, job)
        if run.error:
            say(f"peers: {job.script} FAILED ({run.error}); its fields stay null")
        runs[job.name] = run
    return runs


# === which scripts, with which options =================================================================


def rpc_jobs(concurrency: int, quick: bool) -> list[PeerJob]:
    """Echo RPC peers: bare aio-pika (with and without a dispatcher hop, durable) and Celery prefork 2."""
    raw = ["--variants", "hop_durable,direct_durable", "--concurrency", str(concurrency)]
    celery = ["--backends", "redis", "--pools", "prefork:2", "--outstanding", str(concurrency)]
    if quick:
        raw += ["--warmup-seconds", "0.3", "--lat-seconds", "1", "--lat-n", "500", "--thr-seconds", "2"]
        celery += ["--lat-seconds", "1", "--lat-n", "300", "--thr-seconds", "2"]
    return [
        PeerJob("raw_rpc", "raw_rpc.py", tuple(raw)),
        PeerJob("celery_rpc", "celery_rpc.py", tuple(celery)),
    ]


def pg_jobs(
    *, read_concurrency: int, insert_concurrency: int, rows: int, batch: int, quick: bool
) -> list[PeerJob]:
    """PostgreSQL peers: point reads (asyncpg, minimal worker, Celery prefork 2) and batch inserts."""
    query = ["--concurrency", str(read_concurrency), "--celery-pools", "prefork:2"]
    insert = [
        "--methods", "copy_b1000", "--celery-pools", "prefork:2", "--rows", str(rows),
        "--celery-tasks", str(max(1, rows // batch)), "--celery-batch", str(batch),
        "--amqp-pool", str(insert_concurrency),
    ]  # fmt: skip
    if quick:
        query += ["--seconds", "2", "--lat-seconds", "1"]
        insert += ["--reps", "1"]
    return [
        PeerJob("pg_query", "pg_query.py", tuple(query)),
        PeerJob("pg_insert", "pg_insert.py", tuple(insert)),
    ]


# === the rows the fleet is compared with ===============================================================

_CPU_KEY = re.compile(r"^cpu_(?P<who>[a-z]+)_us_per_(?:op|row)$")


def cpu_fields(row: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """`{who: µs}` from a peer row's `<prefix>cpu_<who>_us_per_op` (or `_per_row`) fields."""
    out: dict[str, float] = {}
    for key, value in row.items():
        if not key.startswith(prefix) or not isinstance(value, int | float):
            continue
        match = _CPU_KEY.match(key[len(prefix) :])
        if match:
            out[match.group("who")] = float(value)
    return out


def _num(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _results(run: PeerRun | None) -> Mapping[str, Any]:
    if run is None or run.data is None:
        return {}
    results = run.data.get("results")
    return results if isinstance(results, dict) else {}


def _row(results: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    row = results.get(name)
    return row if isinstance(row, dict) else {}


def rpc_row(row: Mapping[str, Any], concurrency: int) -> dict[str, Any] | None:
    """A raw_rpc / celery_rpc result row in the fleet's keys (c1 latency, throughput at `concurrency`)."""
    if not row:
        return None
    thr = f"thr_c{concurrency}_"
    return {
        "p50_ms": _num(row, "lat_c1_p50_ms"),
        "p99_ms": _num(row, "lat_c1_p99_ms"),
        "throughput_rps": _num(row, f"{thr}ops_s"),
        "throughput_p50_ms": _num(row, f"{thr}p50_ms"),
        "throughput_p99_ms": _num(row, f"{thr}p99_ms"),
        "cpu_us_per_op": {
            **cpu_fields(row, "thr_"),
            "machine_cores_busy": _num(row, "thr_machine_cores_busy"),
        },
    }


def read_row(results: Mapping[str, Any], name: str, concurrency: int) -> dict[str, Any] | None:
    """pg_query's `<name>_c1` and `<name>_c<concurrency>` rows in the fleet's point-read keys."""
    loaded, single = _row(results, f"{name}_c{concurrency}"), _row(results, f"{name}_c1")
    if not loaded and not single:
        return None
    return {
        "per_second": _num(loaded, "ops_s"),
        "p50_ms": _num(loaded, "p50_ms"),
        "p99_ms": _num(loaded, "p99_ms"),
        "c1_per_second": _num(single, "ops_s"),
        "c1_p50_ms": _num(single, "p50_ms"),
        "c1_p99_ms": _num(single, "p99_ms"),
        "cpu_us_per_op": {**cpu_fields(loaded), "machine_cores_busy": _num(loaded, "machine_cores_busy")},
    }


def insert_row(row: Mapping[str, Any]) -> dict[str, Any] | None:
    if not row:
        return None
    return {
        "rows_per_second": _num(row, "rows_s"),
        "seconds": _num(row, "seconds"),
        "cpu_us_per_row": {**cpu_fields(row), "machine_cores_busy": _num(row, "machine_cores_busy")},
    }


def _meta(run: PeerRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    env = run.data.get("env") if run.data else None
    return {
        "command": run.job.shell(),
        "elapsed_s": round(run.elapsed_s, 1),
        "error": run.error,
        "env": env if isinstance(env, dict) else None,
    }


def rpc_peers(runs: Mapping[str, PeerRun], concurrency: int) -> dict[str, Any]:
    """The `peers` block of bench.rpc: every field null when a peer did not run."""
    raw, celery = _results(runs.get("raw_rpc")), _results(runs.get("celery_rpc"))
    return {
        "raw_hop_durable": rpc_row(_row(raw, "hop_durable"), concurrency),
        "raw_direct_durable": rpc_row(_row(raw, "direct_durable"), concurrency),
        "celery_prefork2": rpc_row(_row(celery, "redis_prefork2"), concurrency),
        "runs": {name: _meta(runs.get(name)) for name in ("raw_rpc", "celery_rpc")},
    }


def pg_peers(runs: Mapping[str, PeerRun], read_concurrency: int, batch: int) -> dict[str, Any]:
    """The `peers` block of bench.postgres: every field null when a peer did not run."""
    query, insert = _results(runs.get("pg_query")), _results(runs.get("pg_insert"))
    pool = _row(query, f"asyncpg_pool_c{read_concurrency}")
    return {
        "point_read": {
            "minimal_worker": read_row(query, "amqp_asyncpg", read_concurrency),
            "celery_prefork2": read_row(query, "celery_prefork2", read_concurrency),
            "asyncpg_pool": {
                "per_second": _num(pool, "ops_s"),
                "p50_ms": _num(pool, "p50_ms"),
                "p99_ms": _num(pool, "p99_ms"),
                "cpu_us_per_op": cpu_fields(pool),
            }
            if pool
            else None,
        },
        "insert": {
            "copy_b1000": insert_row(_row(insert, "copy_b1000")),
            "minimal_worker": insert_row(_row(insert, f"amqp_asyncpg_b{batch}")),
            "celery_prefork2": insert_row(_row(insert, f"celery_prefork2_b{batch}")),
        },
        "runs": {name: _meta(runs.get(name)) for name in ("pg_query", "pg_insert")},
    }
