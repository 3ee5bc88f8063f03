"""The access-control admin API (`keys:admin`): API keys, and principals and roles kept in Redis.

A created key's secret is answered once (201) and stored only as a hash; listing never shows it.
Principals and roles set here override the policy file's of the same name (read within a few seconds
by every fleet process: `scf.fleet.access.CACHE_SECONDS`).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import FastAPI, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from scf.fleet.access_store import AccessStore, ApiKeyCreated, ApiKeyInfo, ApiKeyRequest, ApiKeyStore
from scf.schemas.access import MAX_GRANTS, PRINCIPAL_NAME_PATTERN, GrantText, PrincipalEntry
from scf.schemas.errors import ConfigurationError, ErrorCode

TAGS: list[str | Enum] = ["access"]
Name = Annotated[str, Path(pattern=PRINCIPAL_NAME_PATTERN)]
KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]


class RoleGrants(BaseModel):
    """A role: the grants every principal holding it gets."""

    model_config = ConfigDict(extra="forbid")

    grants: list[GrantText] = Field(max_length=MAX_GRANTS)


class Removed(BaseModel):
    name: str
    status: str = "deleted"


def _keys(request: Request) -> ApiKeyStore:
    store: ApiKeyStore = request.app.state.keys
    return store


def _access(request: Request) -> AccessStore:
    store: AccessStore = request.app.state.access_store
    return store


def install(app: FastAPI, errors: dict[int | str, dict[str, Any]]) -> None:
    _key_routes(app, errors)
    _principal_routes(app, errors)


def _key_routes(app: FastAPI, errors: dict[int | str, dict[str, Any]]) -> None:
    @app.post("/keys", status_code=201, response_model=ApiKeyCreated, responses=errors, tags=TAGS)
    async def create_key(body: ApiKeyRequest, request: Request) -> ApiKeyCreated:
        """Create an API key; the answer holds its secret, shown this once."""
        return await _keys(request).create(body)

    @app.get("/keys", response_model=list[ApiKeyInfo], responses=errors, tags=TAGS)
    async def list_keys(request: Request) -> list[ApiKeyInfo]:
        return await _keys(request).list()

    @app.delete("/keys/{key_id}", response_model=ApiKeyInfo, responses=errors, tags=TAGS)
    async def revoke_key(key_id: KeyId, request: Request) -> ApiKeyInfo:
        """Revoke a key: refused here at once, on other gateways within seconds."""
        info = await _keys(request).revoke(key_id)
        request.app.state.auth.forget_keys()
        return info


def _principal_routes(app: FastAPI, errors: dict[int | str, dict[str, Any]]) -> None:
    @app.get("/access/principals", response_model=dict[str, PrincipalEntry], responses=errors, tags=TAGS)
    async def list_principals(request: Request) -> dict[str, PrincipalEntry]:
        """The principals set through this API (the policy file's are in the file)."""
        return await _access(request).principals()

    @app.get("/access/principals/{name}", response_model=PrincipalEntry, responses=errors, tags=TAGS)
    async def get_principal(name: Name, request: Request) -> PrincipalEntry:
        entry = (await _access(request).lookup(name))[1]
        if entry is None:
            raise ConfigurationError(f"no stored principal {name!r}", code=ErrorCode.NOT_FOUND)
        return entry

    @app.put("/access/principals/{name}", response_model=PrincipalEntry, responses=errors, tags=TAGS)
    async def put_principal(name: Name, body: PrincipalEntry, request: Request) -> PrincipalEntry:
        await _access(request).put_principal(name, body)
        return body

    @app.delete("/access/principals/{name}", response_model=Removed, responses=errors, tags=TAGS)
    async def delete_principal(name: Name, request: Request) -> Removed:
        if not await _access(request).delete_principal(name):
            raise ConfigurationError(f"no stored principal {name!r}", code=ErrorCode.NOT_FOUND)
        return Removed(name=name)

    @app.put("/access/roles/{name}", response_model=RoleGrants, responses=errors, tags=TAGS)
    async def put_role(name: Name, body: RoleGrants, request: Request) -> RoleGrants:
        await _access(request).put_role(name, body.grants)
        return body
