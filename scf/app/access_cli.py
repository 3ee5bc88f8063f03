"""`scf keys`: API keys as an operator tool, straight on the fleet's Redis (`SCF_REDIS_URL`).

`create` prints the key's secret once (only its hash is stored); `list` never shows a secret; `revoke`
takes effect on every gateway within its key cache time (a few seconds).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from scf.app.runner import open_state
from scf.fleet.access_store import ApiKeyRequest, ApiKeyStore
from scf.fleet.settings import Settings
from scf.schemas.errors import ConnectorError

T = TypeVar("T")


def _with_keys(action: Callable[[ApiKeyStore], Awaitable[T]]) -> T:
    async def go() -> T:
        state = await open_state(Settings())
        try:
            return await action(ApiKeyStore(state))
        finally:
            await state.close()

    try:
        return asyncio.run(go())
    except ConnectorError as exc:
        info = exc.to_info()
        click.echo(f"error [{info.category}/{info.code}]: {info.message}", err=True)
        sys.exit(1)


def _echo(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


@click.group()
def keys() -> None:
    """API keys for the HTTP gateway: create (the secret is shown once), list, revoke."""


@keys.command("create")
@click.argument("name")
@click.option("--role", "roles", multiple=True, help="a role from the policy (repeatable)")
@click.option("--grant", "grants", multiple=True, help="e.g. connectors:read, execute:read:pg-* (repeatable)")
@click.option("--expires-in", type=int, default=None, help="seconds until the key stops working")
def create(name: str, roles: tuple[str, ...], grants: tuple[str, ...], expires_in: int | None) -> None:
    """Create a key authenticating as principal NAME; prints the key once: keep it now."""
    try:
        request = ApiKeyRequest(name=name, roles=list(roles), grants=list(grants), expires_in=expires_in)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise click.BadParameter(problems) from None
    created = _with_keys(lambda store: store.create(request))
    _echo(created.model_dump(mode="json", exclude={"key"}))
    click.echo(f"key (shown once, store it now): {created.key}")


@keys.command("list")
def list_keys() -> None:
    """Every key: id, principal, roles, grants, expiry, revoked (never the secret)."""
    _echo([info.model_dump(mode="json") for info in _with_keys(lambda store: store.list())])


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke key KEY_ID (the 16 hex digits after `scf_`)."""
    _echo(_with_keys(lambda store: store.revoke(key_id)).model_dump(mode="json"))
