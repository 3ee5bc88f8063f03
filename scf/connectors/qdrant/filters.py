"""A small JSON filter language over point payloads, validated, then translated to Qdrant's `Filter`.

A condition is a field test (`match`, `match_any`, `match_except`, `range`, `is_empty`, `is_null` on
`key`), `{"has_id": [...]}`, or a nested filter; see `FilterSpec`. Only these shapes pass, with bounded
depth and size: nothing else a caller sends reaches the client.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    model_validator,
)
from qdrant_client import models

from scf.connectors.operation_table import Strict
from scf.connectors.qdrant.ids import resolve_id

MAX_DEPTH = 8
MAX_CONDITIONS = 256
MAX_VALUES = 1_000

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Scalar = StrictStr | StrictInt | StrictBool
Values = Annotated[list[StrictStr] | list[StrictInt], Field(min_length=1, max_length=MAX_VALUES)]
_TESTS = ("match", "match_any", "match_except", "range", "is_empty", "is_null")


class RangeSpec(Strict):
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None

    @model_validator(mode="after")
    def _has_a_bound(self) -> RangeSpec:
        if self.gt is None and self.gte is None and self.lt is None and self.lte is None:
            raise ValueError("a range needs at least one of gt, gte, lt, lte")
        return self


class FieldSpec(Strict):
    """One test on the payload field `key` (dotted paths such as `address.city` reach nested values)."""

    key: str = Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")
    match: Scalar | None = None
    match_any: Values | None = None
    match_except: Values | None = None
    range: RangeSpec | None = None
    is_empty: bool | None = None
    is_null: bool | None = None

    @model_validator(mode="after")
    def _exactly_one_test(self) -> FieldSpec:
        given = [name for name in _TESTS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a condition on {self.key!r} needs exactly one of {', '.join(_TESTS)}")
        if self.is_empty is False or self.is_null is False:
            raise ValueError("is_empty / is_null take true; put the condition under must_not to negate it")
        return self


class HasIdSpec(Strict):
    has_id: list[StrictInt | StrictStr] = Field(min_length=1, max_length=MAX_VALUES)


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return "field" if "key" in value else "has_id" if "has_id" in value else "filter"
    if isinstance(value, FieldSpec):
        return "field"
    if isinstance(value, HasIdSpec):
        return "has_id"
    return "filter" if isinstance(value, FilterSpec) else None


Condition = Annotated[
    Annotated[FieldSpec, Tag("field")]
    | Annotated[HasIdSpec, Tag("has_id")]
    | Annotated["FilterSpec", Tag("filter")],
    Discriminator(_kind),
]


class FilterSpec(Strict):
    """Conditions joined as Qdrant joins them: all of `must`, at least one of `should`, none of `must_not`.

    {"must": [{"key": "city", "match": "Paris"}, {"key": "price", "range": {"gte": 1, "lt": 5}}],
     "must_not": [{"key": "tags", "match_any": ["old", "draft"]}, {"has_id": ["doc-7"]}]}
    """

    must: list[Condition] | None = None
    should: list[Condition] | None = None
    must_not: list[Condition] | None = None

    @model_validator(mode="after")
    def _bounded(self) -> FilterSpec:
        depth, conditions = _measure(self)
        if depth > MAX_DEPTH:
            raise ValueError(f"filters nest at most {MAX_DEPTH} levels deep")
        if conditions > MAX_CONDITIONS:
            raise ValueError(f"a filter holds at most {MAX_CONDITIONS} conditions")
        return self

    @property
    def is_empty_filter(self) -> bool:
        return not (self.must or self.should or self.must_not)

    def children(self) -> list[FieldSpec | HasIdSpec | FilterSpec]:
        return [*(self.must or ()), *(self.should or ()), *(self.must_not or ())]


FilterSpec.model_rebuild()


def _measure(spec: FilterSpec) -> tuple[int, int]:
    depth, conditions = 1, 0
    for child in spec.children():
        if isinstance(child, FilterSpec):
            child_depth, child_conditions = _measure(child)
            depth, conditions = max(depth, child_depth + 1), conditions + child_conditions
        else:
            conditions += 1
    return depth, conditions


def to_qdrant(spec: FilterSpec | None) -> models.Filter | None:
    """Qdrant's `Filter` for a validated spec; `None` (no filter) for a missing or empty one."""
    if spec is None or spec.is_empty_filter:
        return None
    return _filter(spec)


def _filter(spec: FilterSpec) -> models.Filter:
    return models.Filter(
        must=_conditions(spec.must), should=_conditions(spec.should), must_not=_conditions(spec.must_not)
    )


def _conditions(items: list[FieldSpec | HasIdSpec | FilterSpec] | None) -> list[models.Condition] | None:
    return None if items is None else [_condition(item) for item in items]


def _condition(item: FieldSpec | HasIdSpec | FilterSpec) -> models.Condition:
    if isinstance(item, FilterSpec):
        return _filter(item)
    if isinstance(item, HasIdSpec):
        return models.HasIdCondition(has_id=[resolve_id(i).point_id for i in item.has_id])
    if item.is_empty:
        return models.IsEmptyCondition(is_empty=models.PayloadField(key=item.key))
    if item.is_null:
        return models.IsNullCondition(is_null=models.PayloadField(key=item.key))
    if item.range is not None:
        bounds = item.range
        return models.FieldCondition(
            key=item.key, range=models.Range(gt=bounds.gt, gte=bounds.gte, lt=bounds.lt, lte=bounds.lte)
        )
    return models.FieldCondition(key=item.key, match=_match(item))


def _match(item: FieldSpec) -> models.Match:
    if item.match_any is not None:
        return models.MatchAny(any=item.match_any)
    if item.match_except is not None:
        return models.MatchExcept(**{"except": item.match_except})
    assert item.match is not None  # guaranteed by FieldSpec's validator
    return models.MatchValue(value=item.match)
