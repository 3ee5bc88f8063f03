"""Reading the peer benchmarks' JSON (lines recorded from `../shared/peers` on the 2-core machine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import peers
from bench.peers import PeerJob, PeerRun

# The last stdout line of each peer, as `bench.rpc --quick` / `bench.postgres --quick` run them.
RAW_RPC_OUT = (
    '{"bench":"raw_rpc","loop":"uvloop","concurrency":64,"prefetch":64,"payload_bytes":64,"env":{"pyt'
    'hon":"3.11.7","cpus":2,"loadavg_1m":2.9,"bg_cores_busy":2.0},"results":{"hop_durable":{"lat_c1_o'
    'ps_s":130.7,"lat_c1_n":131,"lat_c1_p50_ms":6.745,"lat_c1_p99_ms":28.008,"lat_c1_mean_ms":7.649,"'
    'lat_c1_max_ms":43.719,"thr_c64_ops_s":179.0,"thr_c64_n":394,"thr_c64_p50_ms":290.094,"thr_c64_p9'
    '9_ms":690.866,"thr_c64_mean_ms":338.359,"thr_c64_max_ms":707.868,"thr_cpu_client_s":0.18,"thr_cp'
    'u_client_us_per_op":456.9,"thr_cpu_rabbitmq_s":0.28,"thr_cpu_rabbitmq_us_per_op":710.7,"thr_cpu_'
    'worker_s":0.22,"thr_cpu_worker_us_per_op":558.4,"thr_cpu_dispatcher_s":0.2,"thr_cpu_dispatcher_u'
    's_per_op":507.6,"thr_machine_busy_pct":99.8,"thr_machine_cores_busy":2.0,"thr_wall_s":2.222},"di'
    'rect_durable":{"lat_c1_ops_s":273.0,"lat_c1_n":273,"lat_c1_p50_ms":2.019,"lat_c1_p99_ms":13.17,"'
    'lat_c1_mean_ms":3.662,"lat_c1_max_ms":43.625,"thr_c64_ops_s":443.3,"thr_c64_n":930,"thr_c64_p50_'
    'ms":129.025,"thr_c64_p99_ms":324.31,"thr_c64_mean_ms":141.273,"thr_c64_max_ms":333.448,"thr_cpu_'
    'client_s":0.33,"thr_cpu_client_us_per_op":354.8,"thr_cpu_rabbitmq_s":0.73,"thr_cpu_rabbitmq_us_p'
    'er_op":784.9,"thr_cpu_worker_s":0.36,"thr_cpu_worker_us_per_op":387.1,"thr_machine_busy_pct":100'
    '.0,"thr_machine_cores_busy":2.0,"thr_wall_s":2.109}}}'
)
CELERY_RPC_OUT = (
    '{"bench":"celery_rpc","celery":"5.7.0","outstanding":64,"payload_bytes":64,"env":{"python":"3.11'
    '.7","cpus":2,"loadavg_1m":3.75,"bg_cores_busy":2.0},"results":{"redis_prefork2":{"worker_startup'
    '_s":1.41,"lat_c1_ops_s":155.7,"lat_c1_n":156,"lat_c1_p50_ms":3.776,"lat_c1_p99_ms":29.779,"lat_c'
    '1_mean_ms":6.42,"lat_c1_max_ms":42.004,"thr_c64_ops_s":451.8,"thr_c64_n":921,"thr_c64_p50_ms":13'
    '6.034,"thr_c64_p99_ms":226.352,"thr_c64_mean_ms":139.229,"thr_c64_max_ms":230.857,"thr_cpu_clien'
    't_s":0.75,"thr_cpu_client_us_per_op":814.3,"thr_cpu_rabbitmq_s":0.42,"thr_cpu_rabbitmq_us_per_op'
    '":456.0,"thr_cpu_redis_s":0.12,"thr_cpu_redis_us_per_op":130.3,"thr_cpu_worker_s":0.96,"thr_cpu_'
    'worker_us_per_op":1042.3,"thr_machine_busy_pct":99.8,"thr_machine_cores_busy":2.0,"thr_wall_s":2'
    ".045}}}"
)
PG_QUERY_OUT = (
    '{"bench":"pg_query","concurrency":16,"env":{"python":"3.11.7","cpus":2,"loadavg_1m":4.24,"bg_cor'
    'es_busy":1.76},"results":{"asyncpg_c1":{"ops_s":7700.7,"n":7702,"p50_ms":0.056,"p99_ms":0.976,"m'
    'ean_ms":0.129,"max_ms":5.359},"asyncpg_pool_c16":{"ops_s":6055.4,"n":12113,"p50_ms":2.262,"p99_m'
    's":10.33,"mean_ms":2.635,"max_ms":33.922,"cpu_client_us_per_op":80.9,"cpu_rabbitmq_us_per_op":-5'
    '.0,"cpu_postgres_us_per_op":88.3,"cpu_redis_us_per_op":0.8,"machine_cores_busy":2.0},"amqp_async'
    'pg_c1":{"ops_s":255.3,"n":256,"p50_ms":2.086,"p99_ms":30.678,"mean_ms":3.916,"max_ms":48.224},"a'
    'mqp_asyncpg_c16":{"ops_s":1013.8,"n":2034,"p50_ms":14.567,"p99_ms":46.706,"mean_ms":15.77,"max_m'
    's":86.572,"cpu_client_us_per_op":265.5,"cpu_rabbitmq_us_per_op":54.1,"cpu_postgres_us_per_op":29'
    '0.1,"cpu_redis_us_per_op":-39.3,"cpu_worker_us_per_op":403.1,"machine_cores_busy":1.94},"celery_'
    'prefork2_c1":{"ops_s":191.3,"n":193,"p50_ms":4.112,"p99_ms":14.176,"mean_ms":5.224,"max_ms":109.'
    '639},"celery_prefork2_c16":{"ops_s":242.5,"n":488,"p50_ms":61.607,"p99_ms":127.293,"mean_ms":65.'
    '127,"max_ms":130.469,"cpu_client_us_per_op":963.1,"cpu_rabbitmq_us_per_op":307.4,"cpu_postgres_u'
    's_per_op":655.7,"cpu_redis_us_per_op":163.9,"cpu_worker_us_per_op":1475.4,"machine_cores_busy":2'
    ".0}}}"
)
PG_INSERT_OUT = (
    '{"bench":"pg_insert","rows":10000,"env":{"python":"3.11.7","cpus":2,"loadavg_1m":4.21,"bg_cores_'
    'busy":2.0},"results":{"copy_b1000":{"rows_s":154673,"seconds":0.065,"cpu_client_us_per_row":1.0,'
    '"cpu_postgres_us_per_row":2.0},"amqp_asyncpg_b1000":{"rows_s":73218,"seconds":0.137,"cpu_client_'
    'us_per_row":2.0,"cpu_rabbitmq_us_per_row":11.0,"cpu_postgres_us_per_row":4.0,"cpu_redis_us_per_r'
    'ow":0.0,"cpu_worker_us_per_row":3.0,"machine_cores_busy":2.0},"celery_prefork2_b1000":{"rows_s":'
    '14090,"seconds":0.71,"submit_s":0.254,"cpu_client_us_per_row":6.0,"cpu_rabbitmq_us_per_row":6.0,'
    '"cpu_postgres_us_per_row":4.0,"cpu_redis_us_per_row":2.0,"cpu_worker_us_per_row":30.0,"machine_c'
    'ores_busy":2.0}}}'
)


def run_of(name: str, stdout: str, error: str | None = None) -> PeerRun:
    return PeerRun(PeerJob(name, f"{name}.py", ()), peers.last_json_line(stdout), error, 1.0)


def test_last_json_line_skips_progress_and_trailing_noise() -> None:
    stdout = "READY\n{not json\n" + RAW_RPC_OUT + "\n[raw_rpc] done\n\n"
    parsed = peers.last_json_line(stdout)
    assert parsed is not None
    assert parsed["bench"] == "raw_rpc"
    assert peers.last_json_line("no json here\n[1, 2]\n") is None
    assert peers.last_json_line("") is None


def test_last_json_line_takes_the_last_object() -> None:
    assert peers.last_json_line('{"a": 1}\n{"a": 2}\n') == {"a": 2}


def test_rpc_peers_reads_hop_direct_and_celery_rows() -> None:
    runs = {"raw_rpc": run_of("raw_rpc", RAW_RPC_OUT), "celery_rpc": run_of("celery_rpc", CELERY_RPC_OUT)}
    block = peers.rpc_peers(runs, 64)
    hop = block["raw_hop_durable"]
    assert hop["throughput_rps"] == 179.0
    assert hop["p50_ms"] == 6.745
    assert hop["throughput_p99_ms"] == 690.866
    assert hop["cpu_us_per_op"] == {
        "client": 456.9, "rabbitmq": 710.7, "worker": 558.4, "dispatcher": 507.6, "machine_cores_busy": 2.0,
    }  # fmt: skip
    assert block["raw_direct_durable"]["throughput_rps"] == 443.3
    celery = block["celery_prefork2"]
    assert celery["throughput_rps"] == 451.8
    assert celery["p50_ms"] == 3.776
    assert celery["cpu_us_per_op"]["redis"] == 130.3
    assert block["runs"]["raw_rpc"]["command"].startswith("../shared/peers/run raw_rpc.py")
    assert block["runs"]["celery_rpc"]["env"]["cpus"] == 2


def test_rpc_peers_at_another_concurrency_finds_no_throughput() -> None:
    block = peers.rpc_peers({"raw_rpc": run_of("raw_rpc", RAW_RPC_OUT)}, 32)
    assert block["raw_hop_durable"]["throughput_rps"] is None
    assert block["raw_hop_durable"]["p50_ms"] == 6.745  # c1 rows do not depend on it


def test_missing_or_failed_peers_leave_null_fields() -> None:
    empty = peers.rpc_peers({}, 64)
    assert empty["raw_hop_durable"] is None and empty["celery_prefork2"] is None
    assert empty["runs"] == {"raw_rpc": None, "celery_rpc": None}
    failed = peers.rpc_peers({"celery_rpc": run_of("celery_rpc", "Traceback ...\n", "exit status 1")}, 64)
    assert failed["celery_prefork2"] is None
    assert failed["runs"]["celery_rpc"]["error"] == "exit status 1"
    pg = peers.pg_peers({}, 16, 1000)
    assert pg["point_read"] == {"minimal_worker": None, "celery_prefork2": None, "asyncpg_pool": None}
    assert pg["insert"] == {"copy_b1000": None, "minimal_worker": None, "celery_prefork2": None}


def test_pg_peers_reads_point_reads_and_inserts() -> None:
    runs = {"pg_query": run_of("pg_query", PG_QUERY_OUT), "pg_insert": run_of("pg_insert", PG_INSERT_OUT)}
    block = peers.pg_peers(runs, 16, 1000)
    worker = block["point_read"]["minimal_worker"]
    assert worker["per_second"] == 1013.8
    assert worker["p50_ms"] == 14.567
    assert worker["c1_p50_ms"] == 2.086
    assert worker["cpu_us_per_op"]["worker"] == 403.1
    assert worker["cpu_us_per_op"]["redis"] == -39.3  # kept as the peer measured it (see chart._stackable)
    celery = block["point_read"]["celery_prefork2"]
    assert (celery["per_second"], celery["c1_p50_ms"]) == (242.5, 4.112)
    assert block["point_read"]["asyncpg_pool"]["per_second"] == 6055.4
    insert = block["insert"]
    assert insert["copy_b1000"]["rows_per_second"] == 154673
    assert insert["minimal_worker"]["rows_per_second"] == 73218
    assert insert["minimal_worker"]["cpu_us_per_row"]["worker"] == 3.0
    assert insert["celery_prefork2"]["cpu_us_per_row"]["worker"] == 30.0


def test_cpu_fields_reads_only_cpu_per_op_or_row_keys() -> None:
    row = {
        "thr_cpu_client_us_per_op": 1.5,
        "thr_cpu_client_s": 0.2,
        "cpu_worker_us_per_row": 3,
        "thr_machine_cores_busy": 2.0,
        "thr_cpu_bogus_us_per_op": "7",
    }
    assert peers.cpu_fields(row, "thr_") == {"client": 1.5}
    assert peers.cpu_fields(row) == {"worker": 3.0}


def test_jobs_keep_the_peers_short_and_pick_only_the_rows_compared() -> None:
    quick = {job.name: job for job in peers.rpc_jobs(64, quick=True)}
    assert "--variants" in quick["raw_rpc"].args and "hop_durable,direct_durable" in quick["raw_rpc"].args
    assert quick["celery_rpc"].args[:4] == ("--backends", "redis", "--pools", "prefork:2")
    assert "--thr-seconds" in quick["raw_rpc"].args
    assert "--thr-seconds" not in {a for job in peers.rpc_jobs(64, quick=False) for a in job.args}
    pg = {job.name: job for job in peers.pg_jobs(read_concurrency=16, insert_concurrency=4, rows=10_000,
                                                   batch=1000, quick=True)}  # fmt: skip
    assert pg["pg_query"].args[:4] == ("--concurrency", "16", "--celery-pools", "prefork:2")
    insert = pg["pg_insert"].args
    assert insert[insert.index("--celery-tasks") + 1] == "10"
    assert insert[insert.index("--amqp-pool") + 1] == "4"
    assert pg["pg_query"].shell().startswith("../shared/peers/run pg_query.py --concurrency 16")


def test_peers_folder_of_a_worktree_is_found_beside_its_main_checkout(tmp_path: Path) -> None:
    main = tmp_path / "main"
    (main / ".git" / "worktrees" / "bench").mkdir(parents=True)
    shared = tmp_path / "shared" / "peers"
    shared.mkdir(parents=True)
    (shared / "run").write_text("#!/bin/sh\n")
    worktree = tmp_path / "wt" / "bench"
    worktree.mkdir(parents=True)
    (worktree / ".git").write_text(f"gitdir: {main / '.git' / 'worktrees' / 'bench'}\n")
    assert peers.main_checkout(worktree) == main
    assert peers.default_peers_dir(worktree) == shared
    assert peers.default_peers_dir(main) == shared
    (shared / "run").unlink()
    assert peers.default_peers_dir(worktree) is None


def test_an_explicit_folder_without_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert peers.resolve_peers_dir(str(tmp_path), disabled=False) is None
    assert "has no `run` script" in capsys.readouterr().err
    assert peers.resolve_peers_dir(str(tmp_path), disabled=True) is None


def test_run_peer_parses_the_last_line_and_reports_failures(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = ok.py ]; then echo progress >&2; echo READY\n'
        '  echo \'{"bench": "ok", "results": {}}\'; exit 0; fi\n'
        'if [ "$1" = silent.py ]; then echo nothing; exit 0; fi\n'
        'echo \'{"bench": "half"}\'; exit 3\n'
    )
    run.chmod(0o755)
    ok = peers.run_peer(tmp_path, PeerJob("ok", "ok.py", ()))
    assert ok.error is None and ok.data == {"bench": "ok", "results": {}}
    silent = peers.run_peer(tmp_path, PeerJob("silent", "silent.py", ()))
    assert silent.error == "no JSON line on stdout" and silent.data is None
    failed = peers.run_peer(tmp_path, PeerJob("bad", "bad.py", ()))
    assert failed.error == "exit status 3" and failed.data == {"bench": "half"}
    assert json.dumps(peers.rpc_peers({"raw_rpc": failed}, 64))  # serialisable whatever happened


def test_a_peer_past_its_timeout_is_ended_with_its_whole_session(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    run = tmp_path / "run"
    run.write_text(f"#!/bin/sh\nsleep 60 &\necho $$ $! > {pids}\nwait\n")
    run.chmod(0o755)
    result = peers.run_peer(tmp_path, PeerJob("slow", "slow.py", ()), timeout=1.0)
    assert result.error == "timed out after 1s" and result.data is None
    started = [int(pid) for pid in pids.read_text().split()]
    assert len(started) == 2
    for pid in started:  # the script and the worker it started: gone, not orphaned
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split(") ")[1].startswith("Z")
