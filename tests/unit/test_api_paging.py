"""Pure pagination and records: first-page parameters, where the next page is, records_path."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from scf.connectors.api.paging import NextPage, first_params, link_targets, next_page
from scf.connectors.api.records import fields_of, path_segments, records_at, value_at
from scf.schemas.configs.api import PaginationSpec
from scf.schemas.errors import PermanentError

URL = httpx.URL("https://api.example.com/v1/items?q=x")


def following(
    spec: PaginationSpec, *, pages: int = 1, records: int = 3, page_records: int = 3, **kw: Any
) -> Any:
    return next_page(
        spec,
        url=URL,
        pages_done=pages,
        records_done=records,
        page_records=page_records,
        document=kw.get("document"),
        link_headers=kw.get("links", []),
    )


def test_first_page_parameters() -> None:
    assert first_params(PaginationSpec(type="page", size_param="per_page", page_size=50)) == {
        "page": "1",
        "per_page": "50",
    }
    assert first_params(PaginationSpec(type="offset", param="skip", start=10)) == {"skip": "10"}
    assert first_params(PaginationSpec(type="cursor", cursor_path="next")) == {}
    assert first_params(PaginationSpec(type="link")) == {}


def test_page_and_offset_styles_count_forward() -> None:
    page = PaginationSpec(type="page", page_size=3)
    offset = PaginationSpec(type="offset", param="from", page_size=3)

    assert following(page, pages=1) == NextPage(params={"page": "2"})
    assert following(page, pages=4) == NextPage(params={"page": "5"})
    assert following(offset, records=6) == NextPage(params={"from": "6"})


def test_an_empty_or_short_page_is_the_last() -> None:
    sized = PaginationSpec(type="page", page_size=3)
    unsized = PaginationSpec(type="page")

    assert following(sized, page_records=2) is None
    assert following(unsized, page_records=2) == NextPage(params={"page": "2"})
    assert following(unsized, page_records=0) is None


def test_cursor_from_the_body() -> None:
    spec = PaginationSpec(type="cursor", param="after", cursor_path="meta.next")

    assert following(spec, document={"meta": {"next": "abc"}}) == NextPage(params={"after": "abc"})
    assert following(spec, document={"meta": {"next": 42}}) == NextPage(params={"after": "42"})
    assert following(spec, document={"meta": {"next": None}}) is None
    assert following(spec, document={"meta": {}}) is None
    assert following(spec, document={"meta": {"next": "/v1/items?page=2"}}) == NextPage(
        url=httpx.URL("https://api.example.com/v1/items?page=2")
    )
    with pytest.raises(PermanentError):
        following(spec, document={"meta": {"next": {"a": 1}}})


def test_link_headers() -> None:
    spec = PaginationSpec(type="link")
    links = ['<https://api.example.com/v1/items?page=2>; rel="next", </v1/items?page=9>; rel="last"']

    assert following(spec, links=links) == NextPage(url=httpx.URL("https://api.example.com/v1/items?page=2"))
    assert following(spec, links=['</v1/items?page=9>; rel="last"']) is None
    assert following(spec, links=[]) is None


def test_link_header_parsing_handles_several_rels_and_headers() -> None:
    values = ['<a>; rel="prev next"; title="x, y"', "<b>; rel=last", '<c>; rel="next"']

    assert link_targets(values) == {"prev": "a", "next": "a", "last": "b"}


def test_pagination_specs_refuse_inconsistent_settings() -> None:
    with pytest.raises(ValueError):
        PaginationSpec(type="link", param="page")
    with pytest.raises(ValueError):
        PaginationSpec(type="page", size_param="per_page")
    with pytest.raises(ValueError):
        PaginationSpec(type="page", cursor_path="x")


DOC = {"data": {"items": [{"a": 1}, {"b": 2}]}, "list": [[{"x": 1}]], "n": 3}


def test_records_paths() -> None:
    assert path_segments("$") == ()
    assert path_segments("$.data.items") == ("data", "items")
    assert records_at(DOC, "data.items") == [{"a": 1}, {"b": 2}]
    assert records_at(DOC, "$.list.0") == [{"x": 1}]
    assert records_at([{"r": 1}], "$") == [{"r": 1}]
    assert value_at(DOC, "data.missing") is None
    assert fields_of([{"a": 1, "b": 2}, {"c": 3, "a": 4}]) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("document", "path", "fragment"),
    [
        (DOC, "data.nothing", "not in the reply"),
        (DOC, "n", "holds a int"),
        (DOC, "data", "holds an object (keys: items)"),
        ({"data": [1, 2]}, "data", "item 0 is a int"),
        (DOC, "data..items", "dotted path"),
    ],
)
def test_records_that_are_not_a_list_of_objects_say_what_was_found(
    document: Any, path: str, fragment: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        records_at(document, path)

    assert fragment in caught.value.message
