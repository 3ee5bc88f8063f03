"""The JSON filter language: what it accepts, what it refuses, and the Qdrant filter it becomes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from qdrant_client import models

from scf.connectors.qdrant.filters import MAX_CONDITIONS, MAX_DEPTH, FilterSpec, to_qdrant
from scf.connectors.qdrant.ids import resolve_id


def translate(body: dict[str, Any]) -> models.Filter | None:
    return to_qdrant(FilterSpec.model_validate(body))


def test_match_and_range_become_field_conditions() -> None:
    result = translate(
        {"must": [{"key": "city", "match": "Paris"}, {"key": "price", "range": {"gte": 1, "lt": 5}}]}
    )

    assert result == models.Filter(
        must=[
            models.FieldCondition(key="city", match=models.MatchValue(value="Paris")),
            models.FieldCondition(key="price", range=models.Range(gte=1, lt=5)),
        ]
    )


def test_should_must_not_any_except_empty_null_and_nesting() -> None:
    result = translate(
        {
            "should": [{"key": "tags", "match_any": ["new", "hot"]}, {"key": "in_stock", "match": True}],
            "must_not": [
                {"key": "year", "match_except": [2023, 2024]},
                {"key": "notes", "is_empty": True},
                {"must": [{"key": "owner", "is_null": True}]},
            ],
        }
    )

    assert result == models.Filter(
        should=[
            models.FieldCondition(key="tags", match=models.MatchAny(any=["new", "hot"])),
            models.FieldCondition(key="in_stock", match=models.MatchValue(value=True)),
        ],
        must_not=[
            models.FieldCondition(key="year", match=models.MatchExcept(**{"except": [2023, 2024]})),
            models.IsEmptyCondition(is_empty=models.PayloadField(key="notes")),
            models.Filter(must=[models.IsNullCondition(is_null=models.PayloadField(key="owner"))]),
        ],
    )


def test_has_id_maps_caller_ids_like_writes_do() -> None:
    result = translate({"must": [{"has_id": [7, "doc-1"]}]})

    assert result == models.Filter(must=[models.HasIdCondition(has_id=[7, resolve_id("doc-1").point_id])])


@pytest.mark.parametrize("body", [{}, {"must": [], "should": [], "must_not": []}])
def test_an_empty_filter_is_no_filter(body: dict[str, Any]) -> None:
    assert translate(body) is None
    assert to_qdrant(None) is None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"must": [{"key": "a"}]}, "exactly one of"),
        ({"must": [{"key": "a", "match": 1, "range": {"gt": 0}}]}, "exactly one of"),
        ({"must": [{"key": "a", "match": 1.5}]}, "valid"),
        ({"must": [{"key": "a", "match": {"$gt": 1}}]}, "valid"),
        ({"must": [{"key": "a", "range": {}}]}, "at least one of gt"),
        ({"must": [{"key": "a", "range": {"gt": "1"}}]}, "valid number"),
        ({"must": [{"key": "a", "match_any": []}]}, "at least 1"),
        ({"must": [{"key": "a", "match_any": [1, "x"]}]}, "valid"),
        ({"must": [{"key": "a", "is_empty": False}]}, "must_not"),
        ({"must": [{"key": "", "match": 1}]}, "at least 1"),
        ({"must": [{"lambda": "os.system"}]}, "Extra inputs"),
        ({"must": {"key": "a", "match": 1}}, "valid list"),
        ({"filter": []}, "Extra inputs"),
    ],
)
def test_anything_outside_the_language_is_refused(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FilterSpec.model_validate(body)

    assert fragment in str(caught.value)


def test_nesting_depth_is_bounded() -> None:
    body: dict[str, Any] = {"must": [{"key": "a", "match": 1}]}
    for _ in range(MAX_DEPTH):
        body = {"must": [body]}

    with pytest.raises(ValidationError) as caught:
        FilterSpec.model_validate(body)

    assert f"at most {MAX_DEPTH} levels" in str(caught.value)


def test_condition_count_is_bounded() -> None:
    body = {"should": [{"key": f"k{i}", "match": i} for i in range(MAX_CONDITIONS + 1)]}

    with pytest.raises(ValidationError) as caught:
        FilterSpec.model_validate(body)

    assert f"at most {MAX_CONDITIONS} conditions" in str(caught.value)
