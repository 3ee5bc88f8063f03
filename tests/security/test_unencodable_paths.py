"""Naming where a lone surrogate sits must stay linear: a wide container deep in a hostile AMQP body.

`unencodable_path` (the dispatcher names the place of unencodable text in its refusal) used to copy the
parent's key path into every element it pushed: 58 levels of 120-character keys above 100,000 small
entries made a 1 MB body cost 0.7 s of the event loop and 700 MB; the dispatcher's 16 MiB limit allows
~16 times that. Now only the path being walked is kept.
"""

from __future__ import annotations

import json
import time
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from scf.fleet.client import FleetClient
from scf.schemas.control import MessageType
from scf.schemas.errors import PermanentError
from scf.schemas.validation import refuse_unencodable, unencodable_path

KB, MB = 1024, 1024 * 1024
DEPTH = 58  # under the dispatcher's nesting limit (64)
KEY = "K" * 120


def hostile(size: int, *, surrogate_first: bool) -> bytes:
    """About `size` bytes: DEPTH levels of long keys above one wide object holding one lone surrogate."""
    prefix = b'{"' + KEY.encode() + b'":'
    room = max(0, size - DEPTH * (len(prefix) + 1) - 20)
    entries = [f'"k{i}":0' for i in range(room // 10)]
    bad = '"s":"\\ud800"'
    inner = "{" + ",".join([bad, *entries] if surrogate_first else [*entries, bad]) + "}"
    return prefix * DEPTH + inner.encode() + b"}" * DEPTH


def test_the_path_is_named_exactly() -> None:
    assert unencodable_path({"a": [1, {"b": "\ud800"}]}) == "a[1].b"
    assert unencodable_path(["x", "\udfff"]) == "[1]"
    assert unencodable_path("\ud800") == "(body)"
    assert unencodable_path({"\udc00": 1}) == "\\udc00"
    assert unencodable_path({"a": {"b": ["ok", json.loads('"\\ud83d\\ude00"')]}}) is None  # a pair is text
    raw = hostile(4 * KB, surrogate_first=False)
    with pytest.raises(PermanentError) as refused:
        refuse_unencodable(raw, json.loads(raw))
    assert refused.value.code == "INVALID_REQUEST"
    assert "KKKK" in refused.value.message and len(refused.value.message) < 400


def _fastest(run: Callable[[], Any], times: int) -> float:
    best = float("inf")
    for _ in range(times):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize("surrogate_first", [True, False], ids=["surrogate first", "surrogate last"])
def test_naming_the_place_is_linear_and_small(surrogate_first: bool) -> None:
    """Memory bounded by the depth (was 700 MB for 1 MB), and 1 MB within 2,000x the 1 KB time (linear
    measures ~1,000x) and 3 s."""
    small, large = (json.loads(hostile(n, surrogate_first=surrogate_first)) for n in (KB, MB))
    tracemalloc.start()
    try:
        assert unencodable_path(large) is not None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * MB, f"naming the place took {peak / MB:.0f} MB"
    small_time = max(_fastest(lambda: unencodable_path(small), 5), 1e-6)
    large_time = _fastest(lambda: unencodable_path(large), 2)
    assert large_time < 3.0, f"1 MB took {large_time:.2f}s"
    assert large_time / small_time < 2_000, f"1 MB {large_time:.4f}s vs 1 KB {small_time:.6f}s"


@pytest.mark.integration
async def test_the_dispatcher_refuses_it_typed_and_keeps_answering(client: FleetClient) -> None:
    """Through the broker: the dispatcher refuses the hostile request (INVALID_REQUEST, naming the
    place), and answers an ordinary request right after."""
    body = hostile(MB, surrogate_first=True)
    wrapped = b'{"service_name":"sec_surrogate_' + uuid.uuid4().hex[:8].encode() + b'","operation":"x",'
    wrapped += b'"data":' + body + b"}"
    reply = await client.rpc.call_raw(MessageType.OPERATION_EXECUTE, wrapped, timeout=60)
    assert reply["status"] == "failed", str(reply)[:300]
    assert reply["error"]["code"] == "INVALID_REQUEST", str(reply)[:300]
    assert "surrogate" in reply["error"]["message"]
    assert isinstance(await client.list_connectors(), list)
