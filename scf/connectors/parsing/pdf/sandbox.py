"""Runs extract.py in a child process under memory, CPU, file and wall-clock limits.

The child sets its own rlimits first (no preexec_fn: unsafe in a threaded parent). The parent starts
it in a new session with a minimal environment (no fleet secrets), feeds the job and the PDF on
stdin, keeps at most `max_output_bytes` of its JSON lines, and kills its whole process group (the
tesseract it may run included) on timeout, overflow, a crash or cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from scf.schemas.configs.pdf import MIB, PdfConfig
from scf.schemas.errors import ErrorCode, ResourceError

log = structlog.get_logger(__name__)

EXTRACT_SCRIPT = Path(__file__).with_name("extract.py")
OUTPUT_OVERHEAD_BYTES = MIB  # document metadata and JSON framing on top of the text budget
MAX_OPEN_FILES = 64
STDERR_TAIL_BYTES = 8 * 1024
READ_CHUNK = 64 * 1024
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
#: Environment the child may see; everything else (SCF_SECRET_KEY, credentials) stays in the worker.
PASSED_ENV = ("PATH", "TESSDATA_PREFIX")


@dataclass(frozen=True)
class SandboxLimits:
    """What one parser process may use. `wall_seconds` is enforced here, the rest by the child."""

    memory_bytes: int
    cpu_seconds: int
    wall_seconds: float
    max_output_bytes: int
    max_open_files: int = MAX_OPEN_FILES

    @classmethod
    def from_config(cls, config: PdfConfig, request_timeout: float | None = None) -> SandboxLimits:
        wall = config.parse_timeout
        if request_timeout is not None:  # end as LIMIT_EXCEEDED, with time left to reply, not as a deadline
            wall = min(wall, max(0.5, request_timeout * 0.9))
        return cls(
            memory_bytes=config.memory_limit_mb * MIB,
            cpu_seconds=config.cpu_limit_seconds,
            wall_seconds=wall,
            max_output_bytes=config.max_text_bytes + OUTPUT_OVERHEAD_BYTES,
        )

    def argv(self) -> list[str]:
        """`python -I extract.py`: isolated mode ignores PYTHON* variables, user site and the cwd."""
        return [
            sys.executable,
            "-I",
            str(EXTRACT_SCRIPT),
            "--memory-bytes",
            str(self.memory_bytes),
            "--cpu-seconds",
            str(self.cpu_seconds),
            "--max-open-files",
            str(self.max_open_files),
        ]


@dataclass(frozen=True)
class ParserRun:
    """How one parser process ended: its complete output records and its exit."""

    records: tuple[dict[str, Any], ...]
    returncode: int | None
    seconds: float
    timed_out: bool = False
    overflowed: bool = False
    stderr_tail: str = field(default="", repr=False)

    def first(self, record_type: str) -> dict[str, Any] | None:
        return next((r for r in self.records if r.get("type") == record_type), None)

    def all(self, record_type: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("type") == record_type]


def child_env() -> dict[str, str]:
    env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", OMP_THREAD_LIMIT="1")
    return env


def parse_records(output: bytes) -> tuple[dict[str, Any], ...]:
    """The complete JSON lines; a line cut short by a kill (no newline yet) is dropped."""
    records: list[dict[str, Any]] = []
    for line in output.split(b"\n")[:-1]:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return tuple(records)


async def run_parser(job: dict[str, Any], pdf: bytes, limits: SandboxLimits) -> ParserRun:
    """Run one job; never raises for what the PDF does (see `errors.run_error`), only if no process starts."""
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *limits.argv(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_env(),
            cwd="/",
            start_new_session=True,  # its own process group, so one kill reaches tesseract too
        )
    except OSError as exc:  # EAGAIN, ENOMEM: the worker is short of processes or memory right now
        raise ResourceError(
            "the worker cannot start a PDF parser process right now",
            code=ErrorCode.LIMIT_EXCEEDED,
            detail=f"{type(exc).__name__}: {exc}",
        ) from exc
    payload = json.dumps(job).encode() + b"\n" + pdf
    out, err = bytearray(), bytearray()
    timed_out = overflowed = False
    try:
        async with asyncio.timeout(limits.wall_seconds):
            overflowed = await _exchange(proc, payload, out, err, limits.max_output_bytes)
    except TimeoutError:
        timed_out = True
    finally:
        if proc.returncode is None:  # timeout, overflow or cancellation: nothing of it may outlive us
            _kill_group(proc.pid)
    returncode = await proc.wait()
    if returncode < 0:  # killed by a limit: a tesseract it started may still run in its group
        _kill_group(proc.pid)
    return ParserRun(
        records=parse_records(bytes(out)),
        returncode=returncode,
        seconds=round(time.monotonic() - started, 3),
        timed_out=timed_out,
        overflowed=overflowed,
        stderr_tail=err.decode("utf-8", "replace"),
    )


async def _exchange(
    proc: asyncio.subprocess.Process, payload: bytes, out: bytearray, err: bytearray, cap: int
) -> bool:
    """Feed stdin, collect stdout (up to `cap`) and the tail of stderr; True when stdout overflowed."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr

    async def feed() -> None:
        try:
            stdin.write(payload)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child stopped reading (it failed early): its output and exit say why
        finally:
            stdin.close()

    async def drain_stderr() -> None:
        while chunk := await stderr.read(READ_CHUNK):
            err.extend(chunk)
            del err[:-STDERR_TAIL_BYTES]

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(feed())
        tasks.create_task(drain_stderr())
        while chunk := await stdout.read(READ_CHUNK):
            out.extend(chunk)
            if len(out) > cap:
                _kill_group(proc.pid)  # closes its pipes, which ends the two tasks above
                return True
    await proc.wait()
    return False


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pgid, signal.SIGKILL)
