"""Access control's state in Redis: principals and roles set by the admin API, and API keys.

An API key is `scf_<id>_<secret>`: 256 random bits, shown once at creation and stored only as its
SHA-256 (a key is as strong as a random 32-byte token, so a fast hash suffices; the comparison is
constant-time). A key carries its own grants and roles; revoking it takes effect within the verifier's
cache time (a few seconds) on every gateway.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from redis.typing import EncodableT, FieldT

from scf.fleet import keys
from scf.fleet.access import PolicySource
from scf.fleet.state import StateStore
from scf.fleet.state_errors import as_text, redis_errors, text_map
from scf.schemas.access import PRINCIPAL_NAME_PATTERN, GrantText, PrincipalEntry, parse_grant
from scf.schemas.errors import ConfigurationError, ErrorCode

KEY_PREFIX = "scf_"
KEY_PATTERN = re.compile(r"scf_([0-9a-f]{16})_([A-Za-z0-9_\-]{43})")
MAX_KEYS_LISTED = 10_000


class ApiKeyRequest(BaseModel):
    """Create an API key: the principal it authenticates as, and what it may do."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=PRINCIPAL_NAME_PATTERN, description="the principal the key authenticates as")
    roles: list[str] = Field(default_factory=list, max_length=64)
    grants: list[GrantText] = Field(default_factory=list, max_length=256)
    expires_in: int | None = Field(default=None, ge=60, le=10 * 365 * 86_400, description="seconds")


class ApiKeyInfo(BaseModel):
    """An API key as listed: never its secret."""

    key_id: str
    name: str
    roles: list[str]
    grants: list[str]
    created_at: float
    expires_at: float | None = None
    revoked: bool = False


class ApiKeyCreated(ApiKeyInfo):
    key: str = Field(description="the secret: shown this once, stored only as a hash")


class AccessStore(PolicySource):
    """Principals and roles managed at runtime (the admin API), over the policy file's."""

    def __init__(self, state: StateStore) -> None:
        self.redis = state.redis  # the StateStore's one connection: stores never open their own

    async def lookup(self, name: str) -> tuple[dict[str, list[str]], PrincipalEntry | None]:
        async with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.ACCESS_PRINCIPALS, name)
            pipe.hgetall(keys.ACCESS_ROLES)
            raw, roles = await pipe.execute()
        entry = PrincipalEntry.model_validate_json(raw) if raw else None
        return {k: json.loads(v) for k, v in text_map(roles).items()}, entry

    async def put_principal(self, name: str, entry: PrincipalEntry) -> None:
        async with redis_errors():
            await self.redis.hset(keys.ACCESS_PRINCIPALS, name, entry.model_dump_json())

    async def delete_principal(self, name: str) -> bool:
        async with redis_errors():
            return bool(await self.redis.hdel(keys.ACCESS_PRINCIPALS, name))

    async def principals(self) -> dict[str, PrincipalEntry]:
        async with redis_errors():
            raw = await self.redis.hgetall(keys.ACCESS_PRINCIPALS)
        return {k: PrincipalEntry.model_validate_json(v) for k, v in text_map(raw).items()}

    async def put_role(self, name: str, grants: list[str]) -> None:
        for text in grants:
            parse_grant(text)
        async with redis_errors():
            await self.redis.hset(keys.ACCESS_ROLES, name, json.dumps(grants))


class ApiKeyStore:
    def __init__(self, state: StateStore) -> None:
        self.redis = state.redis  # the StateStore's one connection: stores never open their own

    async def create(self, request: ApiKeyRequest) -> ApiKeyCreated:
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = time.time()
        record: dict[FieldT, EncodableT] = {
            "name": request.name,
            "roles": json.dumps(request.roles),
            "grants": json.dumps(request.grants),
            "digest": _digest(secret),
            "created_at": repr(now),
            "expires_at": "" if request.expires_in is None else repr(now + request.expires_in),
            "revoked": "0",
        }
        async with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.api_key(key_id), mapping=record)
            pipe.sadd(keys.API_KEYS_INDEX, key_id)
            await pipe.execute()
        info = _info(key_id, {str(k): v for k, v in record.items()})
        return ApiKeyCreated(**info.model_dump(), key=f"{KEY_PREFIX}{key_id}_{secret}")

    async def verify(self, presented: str) -> ApiKeyInfo | None:
        """The key's record when `presented` is a live key (not revoked, not expired), else None."""
        found = KEY_PATTERN.fullmatch(presented) if len(presented) < 128 else None
        if found is None:
            return None
        key_id, secret = found.group(1), found.group(2)
        async with redis_errors():
            record = text_map(await self.redis.hgetall(keys.api_key(key_id)))
        if not record or not hmac.compare_digest(record.get("digest", ""), _digest(secret)):
            return None
        info = _info(key_id, record)
        if info.revoked or (info.expires_at is not None and info.expires_at <= time.time()):
            return None
        return info

    async def list(self) -> list[ApiKeyInfo]:
        async with redis_errors():
            ids = sorted(as_text(i) for i in await self.redis.smembers(keys.API_KEYS_INDEX))[:MAX_KEYS_LISTED]
            async with self.redis.pipeline(transaction=False) as pipe:
                for key_id in ids:
                    pipe.hgetall(keys.api_key(key_id))
                records = await pipe.execute()
        return [_info(i, text_map(r)) for i, r in zip(ids, records, strict=True) if r]

    async def revoke(self, key_id: str) -> ApiKeyInfo:
        async with redis_errors():
            if not re.fullmatch(r"[0-9a-f]{16}", key_id) or not await self.redis.exists(keys.api_key(key_id)):
                raise ConfigurationError(f"no API key {key_id[:20]!r}", code=ErrorCode.NOT_FOUND)
            await self.redis.hset(keys.api_key(key_id), "revoked", "1")
            record = text_map(await self.redis.hgetall(keys.api_key(key_id)))
        return _info(key_id, record)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(key_id: str, record: dict[str, Any]) -> ApiKeyInfo:
    expires = record.get("expires_at") or ""
    return ApiKeyInfo(
        key_id=key_id,
        name=record.get("name", ""),
        roles=json.loads(record.get("roles") or "[]"),
        grants=json.loads(record.get("grants") or "[]"),
        created_at=float(record.get("created_at") or 0),
        expires_at=float(expires) if expires else None,
        revoked=record.get("revoked") == "1",
    )
