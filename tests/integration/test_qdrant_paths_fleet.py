"""Qdrant local mode through a real fleet: a hostile `path` never registers, and a deleted connector's
vectors are gone from the worker's data directory before a new connector of the same name is made."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from scf.fleet.client import FleetClient
from scf.schemas.errors import ConfigurationError

pytestmark = pytest.mark.integration


def config(name: str, **custom: Any) -> dict[str, Any]:
    return {"service_type": "qdrant", "service_name": name, "custom_config": custom}


async def ok(client: FleetClient, name: str, operation: str, **fields: Any) -> Any:
    result = await client.execute_operation(name, {"operation": operation, **fields})
    assert result.status == "success", result.error
    return result.result_data


async def gone(folder: Path, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while folder.exists():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@pytest.mark.parametrize("path", ["/tmp", "../other", "/proc/self/cwd", "a/../../b"])
async def test_a_hostile_local_path_is_refused_at_create(client: FleetClient, path: str) -> None:
    name = f"qpath_{uuid.uuid4().hex[:8]}"
    with pytest.raises(ConfigurationError) as caught:
        await client.create_connector(config(name, path=path))

    assert caught.value.code == "INVALID_CONFIG"
    assert name not in [c.service_name for c in await client.list_connectors()]


async def test_a_new_connector_of_a_deleted_ones_name_sees_none_of_its_vectors(
    client: FleetClient, env: dict[str, str]
) -> None:
    name = f"qpath_{uuid.uuid4().hex[:8]}"
    folder = Path(env["SCF_DATA_DIR"]) / "qdrant" / name
    await client.create_connector(config(name, collection_name="docs", vector_dimension=2))
    await ok(client, name, "create_collection")
    await ok(client, name, "insert", data={"vectors": [[1.0, 0.0], [0.0, 1.0]]})
    assert (folder / "collection" / "docs").is_dir()

    await client.delete_connector(name)
    removed = await gone(folder)  # the worker heard `connector.deleted` and discarded the folder
    await client.create_connector(config(name, collection_name="docs", vector_dimension=2))
    try:
        listed = await ok(client, name, "list_collections")
    finally:
        await client.delete_connector(name)

    assert removed
    assert listed["collections"] == []
