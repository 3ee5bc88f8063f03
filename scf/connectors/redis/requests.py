"""The `data` (what to act on) and `parameters` (how to show it) of each Redis operation.

Unknown keys are refused, so a misspelt argument is a `permanent` INVALID_REQUEST naming the field
rather than silently ignored. Keys, fields and channels are checked by `keys.key_problem`; values are
any JSON (see `codec.py`); counts and batches have hard upper bounds here and the connector's own
`max_items` on top.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictFloat, StrictInt, model_validator

from scf.connectors.redis.codec import DecodeMode
from scf.connectors.redis.keys import Name
from scf.schemas.validation import parse_model

#: Validates `data` or `parameters` against a model (the helper every connector shares).
parse = parse_model

MAX_BATCH = 10_000
MAX_COUNT = 100_000
MAX_TTL_SECONDS = 10 * 365 * 24 * 3600.0
MAX_BLOCK_MS = 3_600_000
#: Entries a stream read returns when the request gives no `count` (never above `max_items`).
DEFAULT_PAGE = 100

Ttl = Annotated[float, Field(gt=0, le=MAX_TTL_SECONDS, allow_inf_nan=False)]
Amount = StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)]
Score = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]
Names = Annotated[list[Name], Field(min_length=1, max_length=MAX_BATCH)]
Values = Annotated[list[JsonValue], Field(min_length=1, max_length=MAX_BATCH)]
SessionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{16,128}$")]
#: XADD ids: `*` (server-generated), `<ms>`, `<ms>-<seq>` or `<ms>-*`.
AddId = Annotated[str, Field(pattern=r"^(\*|\d{1,20}(-(\d{1,20}|\*))?)$")]
#: XREAD ids: `$` (only new entries), `+` (the last entry) or an id after which to read.
ReadId = Annotated[str, Field(pattern=r"^(\$|\+|\d{1,20}(-\d{1,20})?)$")]
#: XRANGE bounds: `-` / `+`, an id, or `(`id for an exclusive bound.
RangeId = Annotated[str, Field(pattern=r"^(-|\+|\(?\d{1,20}(-\d{1,20})?)$")]
#: ZRANGE BYSCORE bounds: a number, `-inf` / `+inf`, or `(`number for an exclusive bound.
ScoreBound = Score | Annotated[str, Field(pattern=r"^(\(?-?\d+(\.\d+)?([eE][-+]?\d+)?|[-+]?inf)$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParameters(_Strict):
    """`parameters` of operations that return no stored values."""


class ReadParameters(_Strict):
    """`parameters` of reads: `decode` "text" (default) or "json" (see `codec.py`)."""

    decode: DecodeMode = "text"


class KeyData(_Strict):
    key: Name


class KeysData(_Strict):
    keys: Names


# --- strings and keys --------------------------------------------------------------------------------


class SetData(KeyData):
    value: JsonValue
    ttl: Ttl | None = None
    nx: bool = False
    xx: bool = False

    @model_validator(mode="after")
    def _one_condition(self) -> SetData:
        if self.nx and self.xx:
            raise ValueError("nx and xx exclude each other")
        return self


class MSetData(_Strict):
    values: dict[Name, JsonValue] = Field(min_length=1, max_length=MAX_BATCH)


class ExpireData(KeyData):
    ttl: Ttl


class IncrData(KeyData):
    """`amount` an integer (INCRBY) or a decimal (INCRBYFLOAT); `ttl` is set only if the key has none."""

    amount: Amount = 1
    ttl: Ttl | None = None


class ScanData(_Strict):
    match: Name = "*"
    count: int = Field(default=100, ge=1, le=MAX_COUNT)
    type: Literal["string", "hash", "list", "set", "zset", "stream"] | None = None


class PublishData(_Strict):
    channel: Name
    message: JsonValue


# --- hashes ------------------------------------------------------------------------------------------


class HSetData(KeyData):
    mapping: dict[Name, JsonValue] = Field(min_length=1, max_length=MAX_BATCH)


class FieldData(KeyData):
    field: Name


class FieldsData(KeyData):
    fields: Names


class HIncrByData(FieldData):
    amount: Amount = 1


# --- lists -------------------------------------------------------------------------------------------


class PushData(KeyData):
    values: Values


class PopData(KeyData):
    count: Count | None = None


class RangeData(KeyData):
    start: int = 0
    stop: int = -1


# --- sets --------------------------------------------------------------------------------------------


class MembersData(KeyData):
    members: Values


class MemberData(KeyData):
    member: JsonValue


# --- sorted sets -------------------------------------------------------------------------------------


class ZAddData(KeyData):
    members: dict[Name, Score] = Field(min_length=1, max_length=MAX_BATCH)
    nx: bool = False
    xx: bool = False
    gt: bool = False
    lt: bool = False

    @model_validator(mode="after")
    def _compatible_flags(self) -> ZAddData:
        if self.nx and (self.xx or self.gt or self.lt):
            raise ValueError("nx excludes xx, gt and lt")
        if self.gt and self.lt:
            raise ValueError("gt and lt exclude each other")
        return self


class ZRangeData(KeyData):
    """By rank (`start`/`stop`, default) or by score (`min`/`max`, with `offset`/`count`)."""

    by: Literal["index", "score"] = "index"
    start: int = 0
    stop: int = -1
    min: ScoreBound = "-inf"
    max: ScoreBound = "+inf"
    offset: int = Field(default=0, ge=0)
    count: Count | None = None
    reverse: bool = False
    withscores: bool = False

    @model_validator(mode="after")
    def _fields_of_the_mode(self) -> ZRangeData:
        by_index, by_score = {"start", "stop"}, {"min", "max", "offset", "count"}
        given = self.model_fields_set & (by_score if self.by == "index" else by_index)
        if given:
            raise ValueError(f"{', '.join(sorted(given))} do not apply when by is {self.by!r}")
        return self


class ZMembersData(KeyData):
    members: Names


class ZMemberData(KeyData):
    member: Name


class ZIncrByData(ZMemberData):
    amount: Score = 1.0


# --- streams -----------------------------------------------------------------------------------------


class XAddData(KeyData):
    fields: dict[Name, JsonValue] = Field(min_length=1, max_length=MAX_BATCH)
    id: AddId = "*"
    maxlen: int | None = Field(default=None, ge=0)
    approximate: bool = True


class XReadData(_Strict):
    """`block` in milliseconds waits for new entries (0: as long as the request's timeout allows)."""

    streams: dict[Name, ReadId] = Field(min_length=1, max_length=100)
    count: Count | None = None
    block: int | None = Field(default=None, ge=0, le=MAX_BLOCK_MS)


class XRangeData(KeyData):
    """Pages with `page_token` (an exclusive start after the last entry returned)."""

    start: RangeId = "-"
    end: RangeId = "+"
    count: Count | None = None


# --- sessions ----------------------------------------------------------------------------------------


def _no_reserved_fields(fields: dict[str, JsonValue] | list[str]) -> None:
    reserved = sorted(name for name in fields if name.startswith("$"))
    if reserved:
        raise ValueError(f"session field names starting with '$' are reserved: {reserved[:5]}")


class SessionCreateData(_Strict):
    data: dict[Name, JsonValue] = Field(default_factory=dict, max_length=MAX_BATCH)
    ttl: int | None = Field(default=None, ge=1, le=int(MAX_TTL_SECONDS))

    @model_validator(mode="after")
    def _fields(self) -> SessionCreateData:
        _no_reserved_fields(self.data)
        return self


class SessionIdData(_Strict):
    session_id: SessionId


class SessionUpdateData(SessionIdData):
    """Merge `data` into the session, drop the `remove` fields, refresh (or change, `ttl`) its expiry."""

    data: dict[Name, JsonValue] = Field(default_factory=dict, max_length=MAX_BATCH)
    remove: list[Name] = Field(default_factory=list, max_length=MAX_BATCH)
    ttl: int | None = Field(default=None, ge=1, le=int(MAX_TTL_SECONDS))

    @model_validator(mode="after")
    def _fields(self) -> SessionUpdateData:
        _no_reserved_fields(self.data)
        _no_reserved_fields(self.remove)
        both = sorted(set(self.data) & set(self.remove))
        if both:
            raise ValueError(f"fields both set and removed: {both[:5]}")
        return self
