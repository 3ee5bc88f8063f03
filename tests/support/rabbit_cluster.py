"""A private three-node RabbitMQ cluster on loopback, for fault tests that kill a broker node.

Each node is a `PrivateRabbit` (own node name, AMQP and distribution ports, mnesia dir, the machine's
Erlang cookie); the nodes boot in parallel, then every node after the first joins the first
(`stop_app`, `join_cluster`, `start_app`). Quorum queues declared after that have a member on every
node (RabbitMQ 3.10 puts one on each cluster node when `x-quorum-initial-group-size` is not given).
Nodes are killed and restarted one by one through `PrivateRabbit`, by PID.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Self

import pytest

from tests.support.private_services import RABBITMQ_BIN, PrivateRabbit, PrivateServiceError, StartsOnEnter
from tests.support.services import IN_CI


def require_rabbitmq_server() -> None:
    """No `rabbitmq-server` binary: fail under CI, skip on a developer machine."""
    if (RABBITMQ_BIN / "rabbitmq-server").exists() or shutil.which("rabbitmq-server"):
        return
    message = "rabbitmq-server is not installed: a private RabbitMQ cluster cannot start"
    if IN_CI:
        pytest.fail(message + " (CI requires it)")
    pytest.skip(message)


class ClusterNode(PrivateRabbit):
    """A `PrivateRabbit` with a readable node name (`scf-<cluster>-c1@localhost`)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.node = f"{name}@localhost"

    def queues(self, vhost: str, *columns: str) -> list[dict[str, Any]]:
        """`list_queues` of `vhost` as seen by this node, one dict per queue."""
        out = self.ctl("list_queues", "-p", vhost, "--formatter", "json", *columns)
        return list(json.loads(out.stdout))

    def running_nodes(self) -> set[str]:
        status = json.loads(self.ctl("cluster_status", "--formatter", "json").stdout)
        return set(status["running_nodes"])

    def quorum_status(self, vhost: str, queue: str) -> dict[str, str]:
        """Node name -> Raft state (`leader`, `follower`, ...) of each member of a quorum queue."""
        queues = self._script("rabbitmq-queues")
        command = [queues, "-n", self.node, "quorum_status", "-p", vhost, queue, "--formatter", "json"]
        result = self._run(command, 60)
        if result.returncode != 0:
            raise PrivateServiceError(f"quorum_status {queue} failed: {result.stderr[-2000:]}")
        return {row["Node Name"]: row["Raft State"] for row in json.loads(result.stdout)}


@dataclass(frozen=True)
class LeaderChange:
    """A quorum queue's leader moved to `leader`, as this cluster saw it at `at` (Unix time, seconds).

    `watched` is false when the watch began after the change (its first look already saw the new
    leader): `at` is then only an upper bound.
    """

    leader: str
    at: float
    watched: bool


_LEADER_CHANGE = re.compile(r"\{'?([^',{}]+@[^',{}]+?)'?,(\d+),(true|false)\}")
#: A tag for the leader watch: an Erlang atom that needs no quoting.
_ATOM = re.compile(r"[a-z][a-z0-9_]{0,63}")


class RabbitCluster(StartsOnEnter):
    """`size` ClusterNodes forming one cluster; `start()` boots them in parallel and joins them."""

    def __init__(self, size: int = 3) -> None:
        run = uuid.uuid4().hex[:6]
        self.nodes = [ClusterNode(f"scf-{run}-c{i}") for i in range(1, size + 1)]
        #: Seconds the last `start()` spent booting the nodes, and joining them.
        self.boot_seconds: float | None = None
        self.join_seconds: float | None = None

    # --- life cycle

    def start(self) -> Self:
        started = time.monotonic()
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda node: node.start(), self.nodes))
        booted = time.monotonic()
        self.boot_seconds = booted - started
        seed = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", seed.node)
            node.ctl("start_app")
            node.ctl("await_startup")
        self.join_seconds = time.monotonic() - booted
        members = seed.running_nodes()
        if members != {node.node for node in self.nodes}:
            raise PrivateServiceError(f"the cluster did not form: running nodes {sorted(members)}")
        return self

    def close(self) -> None:
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda node: node.close(), self.nodes))

    # --- addressing

    def node(self, name: str) -> ClusterNode:
        for node in self.nodes:
            if node.node == name:
                return node
        raise KeyError(name)

    def running(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.running]

    def add_vhost(self, name: str) -> list[str]:
        """Create a vhost (cluster-wide) guest may use fully; its AMQP URL on every node, in node order."""
        self.nodes[0].add_vhost(name)
        return self.urls_for(name)

    def urls_for(self, vhost: str) -> list[str]:
        return [node.url_for(vhost) for node in self.nodes]

    # --- quorum queues

    def leader(self, vhost: str, queue: str) -> ClusterNode:
        """The node that leads quorum queue `queue`, as a running node sees it."""
        rows = self.running()[0].queues(vhost, "name", "leader")
        for row in rows:
            if row["name"] == queue:
                return self.node(str(row["leader"]))
        raise PrivateServiceError(f"no queue {queue} in vhost {vhost}: {rows}")

    def members(self, vhost: str, queue: str) -> dict[str, str]:
        """Node name -> Raft state of each member of quorum queue `queue`."""
        return self.running()[0].quorum_status(vhost, queue)

    def await_leader_change(
        self, vhost: str, queue: str, old: str, via: ClusterNode, timeout: float = 60.0, tag: str = ""
    ) -> LeaderChange:
        """Block until `via` sees a leader of `queue` other than `old`; when that happened, to the ms.

        One `rabbitmqctl eval` polls the queue record every 20 ms inside the node, so the figure is not
        blurred by the CLI's own second of start-up: start it before the fault. With `tag` (an Erlang
        atom's text), the polling process registers under it: `watching(via, tag)` says it is on.
        """
        if tag and not _ATOM.fullmatch(tag):
            raise ValueError(f"not a plain Erlang atom: {tag!r}")
        expression = (
            (f"register({tag}, self()), " if tag else "")
            + f"Q = rabbit_misc:r(<<{_erlang_binary(vhost)}>>, queue, <<{_erlang_binary(queue)}>>), "
            f"Old = '{old}', Deadline = erlang:monotonic_time(millisecond) + {int(timeout * 1000)}, "
            "Leader = fun() -> case rabbit_amqqueue:lookup(Q) of "
            "{ok, R} -> case amqqueue:get_pid(R) of {_, N} -> N; _ -> Old end; _ -> Old end end, "
            "Watched = Leader() =:= Old, "
            "Loop = fun L() -> N = Leader(), Now = erlang:monotonic_time(millisecond), "
            "if N =/= Old -> {N, os:system_time(millisecond), Watched}; Now > Deadline -> timeout; "
            "true -> timer:sleep(20), L() end end, Loop()."
        )
        out = via.ctl("eval", expression, timeout=timeout + 30).stdout
        found = _LEADER_CHANGE.search(out)
        if found is None:
            raise PrivateServiceError(f"the leader of {queue} stayed on {old} for {timeout:.0f}s: {out}")
        return LeaderChange(found.group(1), int(found.group(2)) / 1000, found.group(3) == "true")

    @staticmethod
    def watching(via: ClusterNode, tag: str) -> bool:
        """Is the leader watch registered as `tag` polling on `via` now?"""
        if not _ATOM.fullmatch(tag):
            raise ValueError(f"not a plain Erlang atom: {tag!r}")
        return via.ctl("eval", f"whereis({tag}) =/= undefined.").stdout.strip() == "true"

    def await_rejoined(
        self, node: ClusterNode, vhost: str, queue: str, timeout: float = 60.0
    ) -> dict[str, str]:
        """Wait (bounded) until a restarted `node` runs in the cluster again and its member of `queue`
        is a live Raft member (follower or leader); returns the members' states then."""
        witness = next(other for other in self.running() if other is not node)
        deadline = time.monotonic() + timeout
        while True:
            members = witness.quorum_status(vhost, queue)
            if node.node in witness.running_nodes() and members.get(node.node) in ("follower", "leader"):
                return members
            if time.monotonic() > deadline:
                raise PrivateServiceError(f"{node.node} did not rejoin within {timeout:.0f}s: {members}")
            time.sleep(0.5)


def _erlang_binary(text: str) -> str:
    """`text` as the inside of an Erlang `<<...>>` literal (a quoted UTF-8 string)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"/utf8'
