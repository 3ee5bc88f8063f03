"""Qdrant local mode stays in `<SCF_DATA_DIR>/qdrant/<service_name>` and is gone when the connector is.

Before: `custom_config.path` took any path (absolute, `../`, `/proc/self/cwd`), so a connector wrote
outside the data directory, opened a planted store, or read a deleted connector's vectors. Every test
here runs qdrant-client's real local mode in a temporary data directory.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, cast

import pytest

from scf.connectors.qdrant import QdrantVectorConnector, local_store
from scf.factory import ServiceConnectorFactory
from scf.fleet.state import RegistryEntry, StateStore
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConfigurationError, ErrorCode, SecurityError, TransientError
from scf.schemas.operation import OperationResult
from scf.worker.cache import ConnectorCache

NAME = "vectors_db"
HOSTILE_PATHS = [
    "/etc",
    "/tmp/elsewhere",
    "/proc/self/cwd",
    "../other_db",
    "a/../../other_db",
    "..",
    ".",
    "./sub",
    "sub/.",
    "~/vectors",
    "~root",
    "sub\\..\\..\\x",
    "C:/vectors",
    "sub\x00/x",
    "sub/",
    "/",
    "sub//x",
    " sub",
    "sub\n",
    "a/b/c/d/e/f/g/h/i",  # more than 8 segments
    "x" * 65,
    ".hidden",
    "../" * 150,
]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("SCF_DATA_DIR", str(data))
    return data


def body(name: str = NAME, **custom: Any) -> dict[str, Any]:
    return {"service_type": "qdrant", "service_name": name, "custom_config": custom}


def connector(name: str = NAME, **custom: Any) -> QdrantVectorConnector:
    return QdrantVectorConnector(ServiceConnection.parse(body(name, **custom)))


async def ok(target: QdrantVectorConnector, operation: str, **fields: Any) -> OperationResult:
    result = await target.execute_operation({"operation": operation, **fields})
    assert result.status == "success", result.error
    return result


async def store_two_vectors(target: QdrantVectorConnector) -> None:
    await ok(target, "create_collection", parameters={"collection": "docs", "vector_dimension": 2})
    await ok(target, "insert", data={"vectors": [[1.0, 0.0], [0.0, 1.0]]}, parameters={"collection": "docs"})


async def collections_of(target: QdrantVectorConnector) -> list[str]:
    listed = await ok(target, "list_collections")
    return list(listed.result_data["collections"])


# --- validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_a_path_that_is_not_a_plain_subfolder_is_refused_at_validation(path: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ServiceConnection.parse(body(path=path))

    assert caught.value.code == "INVALID_CONFIG"
    assert "custom_config.path" in caught.value.message
    assert len(path) < 5 or path not in caught.value.message  # the input is never echoed


def test_a_huge_hostile_path_is_refused_quickly() -> None:
    started = time.perf_counter()
    for path in ("a/" * 100_000, "a" * 1_000_000, "/" + "a_" * 300):
        with pytest.raises(ConfigurationError):
            ServiceConnection.parse(body(path=path))

    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("path", ["shared", "a/b_c-d", "A1/b2/c3/d4/e5/f6/g7/h8", ":memory:"])
def test_a_plain_subfolder_or_memory_is_accepted(path: str) -> None:
    assert ServiceConnection.parse(body(path=path)).custom_config["path"] == path


def test_the_field_documents_the_rule() -> None:
    from scf.schemas.configs.qdrant import QdrantConfig

    description = QdrantConfig.model_fields["path"].description or ""
    assert "<SCF_DATA_DIR>/qdrant/<service_name>" in description
    assert "INVALID_CONFIG" in description


# --- where it stores ---------------------------------------------------------------------------------


async def test_the_store_is_the_connectors_own_folder_or_a_subfolder_of_it(data_dir: Path) -> None:
    plain, nested = connector(), connector("nested_db", path="tenant_a/v1")
    try:
        await store_two_vectors(plain)
        await store_two_vectors(nested)
    finally:
        await plain.close()
        await nested.close()

    assert (data_dir / "qdrant" / NAME / "collection" / "docs").is_dir()
    assert (data_dir / "qdrant" / "nested_db" / "tenant_a" / "v1" / "collection" / "docs").is_dir()
    assert sorted(os.listdir(data_dir / "qdrant")) == ["nested_db", NAME]


async def test_a_symlink_planted_as_the_connector_folder_is_refused_not_followed(
    data_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (data_dir / "qdrant").mkdir(parents=True)
    (data_dir / "qdrant" / NAME).symlink_to(outside, target_is_directory=True)
    target = connector()
    try:
        with pytest.raises(SecurityError) as caught:
            await target.open()
        checked = await target.check()
    finally:
        await target.close()

    assert caught.value.code == "PERMISSION_DENIED"
    assert checked.status == "failed"
    assert list(outside.iterdir()) == []  # nothing written, no planted store read


async def test_a_symlinked_subfolder_is_refused(data_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "collection").mkdir(parents=True)
    (outside / "meta.json").write_text('{"collections": {}, "aliases": {}}')  # a planted store
    own = data_dir / "qdrant" / NAME
    own.mkdir(parents=True)
    (own / "sub").symlink_to(outside, target_is_directory=True)
    target = connector(path="sub")
    try:
        with pytest.raises(SecurityError):
            await target.open()
    finally:
        await target.close()

    assert sorted(p.name for p in outside.iterdir()) == ["collection", "meta.json"]


async def test_a_linked_data_directory_itself_is_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "real-data"
    real.mkdir()
    (tmp_path / "link-data").symlink_to(real, target_is_directory=True)
    monkeypatch.setenv("SCF_DATA_DIR", str(tmp_path / "link-data"))
    target = connector()
    try:
        await store_two_vectors(target)
    finally:
        await target.close()

    assert (real / "qdrant" / NAME / "collection" / "docs").is_dir()


def test_confine_refuses_anything_not_strictly_below_the_root(tmp_path: Path) -> None:
    root = tmp_path / "qdrant"
    root.mkdir()
    for path in (
        tmp_path / "other",
        root,
        root / ".." / "other",
        root / "a" / ".." / ".." / "x",
        Path("/etc"),
    ):
        with pytest.raises(SecurityError):
            local_store.confine(root, path)

    assert local_store.confine(root, root / "a" / "b") == root.resolve() / "a" / "b"


# --- deleted means gone ------------------------------------------------------------------------------


async def test_discard_removes_the_folder_and_a_new_connector_of_the_name_starts_empty(
    data_dir: Path,
) -> None:
    old = connector(collection_name="docs")
    await store_two_vectors(old)
    await old.discard()

    assert not (data_dir / "qdrant" / NAME).exists()
    assert list((data_dir / "qdrant" / local_store.TOMBSTONES).iterdir()) == []  # removed, not just moved
    new = connector(collection_name="docs")
    try:
        assert await collections_of(new) == []
        counted = await new.execute_operation({"operation": "count"})
    finally:
        await new.close()
    assert counted.status == "failed"
    assert counted.error is not None and counted.error.code == "NOT_FOUND"


async def test_discard_unlinks_a_symlink_in_the_folders_place_and_leaves_its_target(
    data_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the connector's")
    (data_dir / "qdrant").mkdir(parents=True)
    (data_dir / "qdrant" / NAME).symlink_to(outside, target_is_directory=True)

    await connector().discard()

    assert not (data_dir / "qdrant" / NAME).exists()
    assert (outside / "keep.txt").read_text() == "not the connector's"


async def test_discard_of_a_server_or_memory_connector_touches_no_folder(data_dir: Path) -> None:
    memory = connector(path=":memory:")
    await store_two_vectors(memory)
    server = connector("remote_db", url="http://127.0.0.1:9")

    await memory.discard()
    await server.discard()

    assert not (data_dir / "qdrant").exists()
    assert not memory.is_open


class Registry:
    """The one registry read the worker's cache makes on `connector.deleted`: is the name still there?"""

    def __init__(self, *names: str, down: bool = False) -> None:
        self.names = set(names)
        self.down = down

    async def entry(self, name: str) -> RegistryEntry:
        if self.down:
            raise TransientError("redis away", code=ErrorCode.STATE_UNAVAILABLE)
        if name not in self.names:
            raise ConfigurationError(f"no connector named {name!r}", code=ErrorCode.CONNECTOR_NOT_FOUND)
        return RegistryEntry(name, "qdrant", 1, False)


async def loaded_with_vectors(factory: ServiceConnectorFactory) -> QdrantVectorConnector:
    connector = await factory.create_connector(body(collection_name="docs"))
    assert isinstance(connector, QdrantVectorConnector)
    await store_two_vectors(connector)
    return connector


async def test_the_worker_discards_a_connector_when_it_hears_it_was_deleted(data_dir: Path) -> None:
    factory = ServiceConnectorFactory()
    cache = ConnectorCache(factory, cast(StateStore, Registry()))  # the registry no longer has it
    try:
        await loaded_with_vectors(factory)

        await cache.on_event("deleted", NAME)

        assert factory.list_connectors() == []
        assert not (data_dir / "qdrant" / NAME).exists()
        new = await factory.create_connector(body(collection_name="docs"))
        assert isinstance(new, QdrantVectorConnector)
        assert await collections_of(new) == []
    finally:
        await factory.close()


@pytest.mark.parametrize("registry", [Registry(NAME), Registry(down=True)], ids=["registered", "redis-away"])
async def test_a_deleted_event_the_registry_does_not_confirm_keeps_the_data(
    data_dir: Path, registry: Registry
) -> None:
    """A forged or late `connector.deleted` (the connector is still registered, or nobody can tell)."""
    factory = ServiceConnectorFactory()
    cache = ConnectorCache(factory, cast(StateStore, registry))
    try:
        await loaded_with_vectors(factory)

        await cache.on_event("deleted", NAME)
        again = await factory.create_connector(body(collection_name="docs"))
        assert isinstance(again, QdrantVectorConnector)
        kept = await collections_of(again)
    finally:
        await factory.close()

    assert kept == ["docs"]


async def test_an_update_keeps_the_folder(data_dir: Path) -> None:
    factory = ServiceConnectorFactory()
    cache = ConnectorCache(factory, cast(StateStore, Registry(NAME)))
    try:
        await loaded_with_vectors(factory)

        await cache.on_event("updated", NAME)
        again = await factory.create_connector(body(collection_name="docs"))
        assert isinstance(again, QdrantVectorConnector)
        assert await collections_of(again) == ["docs"]
    finally:
        await factory.close()
