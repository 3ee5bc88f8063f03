"""Page tokens and listing order of the MinIO connector's `list_objects` (pure, no network)."""

from __future__ import annotations

import base64
import json

import pytest
from minio.datatypes import Object

from scf.connectors.minio.buckets import first_entries
from scf.connectors.minio.paging import ListPosition, decode_list_token, encode_list_token, listing_scope
from scf.schemas.errors import ErrorCode, PermanentError

SCOPE = listing_scope("data-lake", "tenant/reports/", recursive=False)


def test_a_token_round_trips_and_is_opaque_url_safe_text() -> None:
    position = ListPosition("reports/2024/q1.csv", folder=False)

    token = encode_list_token(position, SCOPE)

    assert decode_list_token(token, SCOPE, "reports/") == position
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_folder_position_keeps_its_flag() -> None:
    token = encode_list_token(ListPosition("reports/2024/", folder=True), SCOPE)

    assert decode_list_token(token, SCOPE, "reports/").folder


def test_the_scope_changes_with_bucket_prefix_and_recursion() -> None:
    scopes = {
        listing_scope("a-bucket", "p/", recursive=False),
        listing_scope("b-bucket", "p/", recursive=False),
        listing_scope("a-bucket", "q/", recursive=False),
        listing_scope("a-bucket", "p/", recursive=True),
    }

    assert len(scopes) == 4


def test_a_token_from_another_listing_is_refused() -> None:
    token = encode_list_token(ListPosition("reports/a.csv"), listing_scope("other", "p/", recursive=True))

    with pytest.raises(PermanentError) as caught:
        decode_list_token(token, SCOPE, "reports/")

    assert caught.value.code == ErrorCode.INVALID_REQUEST
    assert "another listing" in caught.value.message


def _forge(body: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "not a token",
        "%%%",
        _forge([1, 2]),
        _forge({"v": 99, "a": "reports/x", "d": False, "s": SCOPE}),
        _forge({"v": 1, "a": "../../etc/passwd", "d": False, "s": SCOPE}),
        _forge({"v": 1, "a": "elsewhere/x", "d": False, "s": SCOPE}),
        _forge({"v": 1, "a": "reports/x", "d": "yes", "s": SCOPE}),
        _forge({"v": 1, "a": 5, "d": False, "s": SCOPE}),
    ],
)
def test_malformed_or_forged_tokens_are_refused(token: str) -> None:
    with pytest.raises(PermanentError) as caught:
        decode_list_token(token, SCOPE, "reports/")

    assert caught.value.code == ErrorCode.INVALID_REQUEST


def _entries(*names: str) -> list[Object]:
    return [Object("data-lake", name) for name in names]


def test_folders_that_the_sdk_yields_after_objects_are_put_back_in_key_order() -> None:
    # one server page as the SDK yields it: its objects first, then its folders
    listing = _entries("b.csv", "d.csv", "a/", "c/")

    page = first_entries(listing, 3, ordered=False)

    assert [e.object_name for e in page] == ["a/", "b.csv", "c/"]


def test_reading_on_is_bounded_to_one_more_server_page() -> None:
    consumed: list[str] = []

    def listing() -> object:
        for i in range(5000):
            consumed.append(f"k{i:05}")
            yield Object("data-lake", f"k{i:05}")

    page = first_entries(listing(), 3, ordered=False)  # type: ignore[arg-type]

    assert [e.object_name for e in page] == ["k00000", "k00001", "k00002"]
    assert len(consumed) == 3 + 1000


def test_a_recursive_listing_is_already_ordered_and_read_no_further() -> None:
    consumed: list[str] = []

    def listing() -> object:
        for name in ("a/1", "a/2", "b/1", "c"):
            consumed.append(name)
            yield Object("data-lake", name)

    page = first_entries(listing(), 2, ordered=True)  # type: ignore[arg-type]

    assert [e.object_name for e in page] == ["a/1", "a/2"]
    assert consumed == ["a/1", "a/2"]
