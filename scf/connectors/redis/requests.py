"""The `parameters` (keys, channel and options) and `data` (values, mappings, members, messages) of each
Redis operation.

Unknown keys are refused, so a misspelt argument is a `permanent` INVALID_REQUEST naming the field
rather than silently ignored. Keys, fields and channels are checked by `keys.key_problem`; values are
any JSON (see `codec.py`); counts and batches have hard upper bounds here and the connector's own
`max_items` on top.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, JsonValue, StrictFloat, StrictInt, model_validator

from scf.connectors.operation_table import PageParameters, Strict
from scf.connectors.redis.codec import DecodeMode
from scf.connectors.redis.keys import Name

MAX_BATCH = 10_000
MAX_COUNT = 100_000
MAX_TTL_SECONDS = 10 * 365 * 24 * 3600.0
MAX_BLOCK_MS = 3_600_000
#: Entries a stream read or a scan returns when the request gives no `count`/`page_size` (never above
#: `max_items`).
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


class Decoded(Strict):
    """How stored values come back: `decode` "text" (default) or "json" (see `codec.py`)."""

    decode: DecodeMode = "text"


class KeyParameters(Strict):
    key: Name


class KeysParameters(Strict):
    keys: Names


class ReadKeyParameters(KeyParameters, Decoded):
    pass


class ReadKeysParameters(KeysParameters, Decoded):
    pass


# --- strings and keys --------------------------------------------------------------------------------


class ValueData(Strict):
    value: JsonValue


class SetParameters(KeyParameters):
    ttl: Ttl | None = None
    nx: bool = False
    xx: bool = False

    @model_validator(mode="after")
    def _one_condition(self) -> SetParameters:
        if self.nx and self.xx:
            raise ValueError("nx and xx exclude each other")
        return self


class MSetData(Strict):
    """Keys and their values: the mapping is the payload."""

    values: dict[Name, JsonValue] = Field(min_length=1, max_length=MAX_BATCH)


class ExpireParameters(KeyParameters):
    ttl: Ttl


class IncrParameters(KeyParameters):
    """`ttl` is set only if the key has none (a fixed-window counter)."""

    ttl: Ttl | None = None


class AmountData(Strict):
    """`amount` an integer (INCRBY) or a decimal (INCRBYFLOAT)."""

    amount: Amount = 1


class ScanParameters(PageParameters):
    match: Name = "*"
    type: Literal["string", "hash", "list", "set", "zset", "stream"] | None = None


class PublishParameters(Strict):
    channel: Name


class MessageData(Strict):
    message: JsonValue


# --- hashes ------------------------------------------------------------------------------------------


class MappingData(Strict):
    mapping: dict[Name, JsonValue] = Field(min_length=1, max_length=MAX_BATCH)


class FieldParameters(KeyParameters):
    field: Name


class ReadFieldParameters(FieldParameters, Decoded):
    pass


class FieldsParameters(KeyParameters):
    fields: Names


# --- lists -------------------------------------------------------------------------------------------


class ValuesData(Strict):
    values: Values


class PopParameters(ReadKeyParameters):
    count: Count | None = None


class RangeParameters(ReadKeyParameters):
    start: int = 0
    stop: int = -1


# --- sets --------------------------------------------------------------------------------------------


class MembersData(Strict):
    members: Values


class MemberData(Strict):
    member: JsonValue


# --- sorted sets -------------------------------------------------------------------------------------


class ZAddParameters(KeyParameters):
    nx: bool = False
    xx: bool = False
    gt: bool = False
    lt: bool = False

    @model_validator(mode="after")
    def _compatible_flags(self) -> ZAddParameters:
        if self.nx and (self.xx or self.gt or self.lt):
            raise ValueError("nx excludes xx, gt and lt")
        if self.gt and self.lt:
            raise ValueError("gt and lt exclude each other")
        return self


class ScoresData(Strict):
    """Members and their scores."""

    members: dict[Name, Score] = Field(min_length=1, max_length=MAX_BATCH)


class ZRangeParameters(ReadKeyParameters):
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
    def _fields_of_the_mode(self) -> ZRangeParameters:
        by_index, by_score = {"start", "stop"}, {"min", "max", "offset", "count"}
        given = self.model_fields_set & (by_score if self.by == "index" else by_index)
        if given:
            raise ValueError(f"{', '.join(sorted(given))} do not apply when by is {self.by!r}")
        return self


class ZMembersData(Strict):
    members: Names


class ZMemberData(Strict):
    member: Name


class ZIncrByData(ZMemberData):
    amount: Score = 1.0


# --- streams -----------------------------------------------------------------------------------------


class XAddParameters(KeyParameters):
    id: AddId = "*"
    maxlen: int | None = Field(default=None, ge=0)
    approximate: bool = True


class XAddData(Strict):
    fields: dict[Name, JsonValue] = Field(min_length=1, max_length=MAX_BATCH)


class XReadParameters(Decoded):
    """`block` in milliseconds waits for new entries (0: as long as the request's timeout allows)."""

    streams: dict[Name, ReadId] = Field(min_length=1, max_length=100)
    count: Count | None = None
    block: int | None = Field(default=None, ge=0, le=MAX_BLOCK_MS)


class XRangeParameters(PageParameters, Decoded):
    """Pages with `page_token` (an exclusive start after the last entry returned)."""

    key: Name
    start: RangeId = "-"
    end: RangeId = "+"


# --- sessions ----------------------------------------------------------------------------------------


def _no_reserved_fields(fields: dict[str, JsonValue] | list[str]) -> None:
    reserved = sorted(name for name in fields if name.startswith("$"))
    if reserved:
        raise ValueError(f"session field names starting with '$' are reserved: {reserved[:5]}")


SessionTtl = Annotated[int, Field(ge=1, le=int(MAX_TTL_SECONDS))]


class SessionCreateParameters(Strict):
    ttl: SessionTtl | None = None


class SessionData(Strict):
    data: dict[Name, JsonValue] = Field(default_factory=dict, max_length=MAX_BATCH)

    @model_validator(mode="after")
    def _fields(self) -> SessionData:
        _no_reserved_fields(self.data)
        return self


class SessionParameters(Strict):
    session_id: SessionId


class SessionUpdateParameters(SessionParameters):
    """`ttl` changes the session's lifetime (else its own is renewed)."""

    ttl: SessionTtl | None = None


class SessionUpdateData(Strict):
    """Merge `data` into the session and drop the `remove` fields."""

    data: dict[Name, JsonValue] = Field(default_factory=dict, max_length=MAX_BATCH)
    remove: list[Name] = Field(default_factory=list, max_length=MAX_BATCH)

    @model_validator(mode="after")
    def _fields(self) -> SessionUpdateData:
        _no_reserved_fields(self.data)
        _no_reserved_fields(self.remove)
        both = sorted(set(self.data) & set(self.remove))
        if both:
            raise ValueError(f"fields both set and removed: {both[:5]}")
        return self
