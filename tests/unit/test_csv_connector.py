"""The CSV connector end to end (no network: the payload travels in the request) and its pure helpers."""

from __future__ import annotations

import base64
import csv
from typing import Any

import pytest

from scf.connectors.csv_ingest import CSVIngestionConnector
from scf.connectors.parsing.csv_rows import (
    ColumnProfile,
    classify_value,
    coerce_value,
    column_names,
    header_problems,
    read_rows,
)
from scf.connectors.parsing.csv_text import (
    CsvDialect,
    CsvLimits,
    decode_bytes,
    decode_page_token,
    detect_codec,
    encode_page_token,
    sniff_delimiter,
)
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome, OperationRequest, OperationResult

PEOPLE = "name,age,score,active\nAda,36,1.5,true\nGrace,45,2,false\nLinus,,3.25,true\n"


def make_connector(**custom_config: Any) -> CSVIngestionConnector:
    connection = ServiceConnection(service_type="csv", service_name="csv_test", custom_config=custom_config)
    return CSVIngestionConnector(connection)


async def run(
    operation: str, file_data: Any, connector: CSVIngestionConnector | None = None, **kw: Any
) -> Any:
    """Execute through the typed API and return result_data."""
    outcome = await execute(operation, file_data, connector, **kw)
    return outcome.result_data


async def execute(
    operation: str, file_data: Any, connector: CSVIngestionConnector | None = None, **kw: Any
) -> OperationOutcome:
    request = OperationRequest(operation=operation, data={"file_data": file_data}, **kw)
    return await (connector or make_connector()).execute(request)


async def failure(
    operation: str, file_data: Any, connector: CSVIngestionConnector | None = None, **kw: Any
) -> PermanentError:
    with pytest.raises(PermanentError) as caught:
        await execute(operation, file_data, connector, **kw)
    return caught.value


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# --- ingest -----------------------------------------------------------------------------------------


async def test_spec_example_ingests_typed_records() -> None:
    result = await make_connector().execute_operation(
        {
            "operation": "ingest",
            "data": {"file_data": PEOPLE},
            "parameters": {"delimiter": ",", "has_headers": True, "encoding": "utf-8"},
        }
    )
    assert isinstance(result, OperationResult)
    assert result.status == "success", result.error
    assert result.records_processed == 3
    assert result.next_page_token is None
    assert result.result_data["columns"] == ["name", "age", "score", "active"]
    assert result.result_data["delimiter"] == ","
    assert result.result_data["encoding"] == "utf-8"
    assert result.result_data["records"] == [
        {"name": "Ada", "age": 36, "score": 1.5, "active": True},
        {"name": "Grace", "age": 45, "score": 2.0, "active": False},
        {"name": "Linus", "age": None, "score": 3.25, "active": True},
    ]


async def test_spec_pipeline_example_with_connection_id_alias() -> None:
    connector = CSVIngestionConnector(ServiceConnection(service_type="csv", service_name="data_ingest"))
    result = await connector.execute_operation(
        {
            "connection_id": "data_ingest",
            "operation": "ingest",
            "data": {"file_data": PEOPLE},
            "parameters": {"has_headers": True, "delimiter": ","},
        }
    )
    assert result.ok and result.records_processed == 3


async def test_a_request_naming_another_connector_is_refused() -> None:
    request = {"connection_id": "someone_else", "operation": "preview"}
    result = await make_connector().execute_operation(request)

    assert result.error is not None and result.error.code == "INVALID_REQUEST"
    assert "someone_else" in result.error.message


async def test_semicolon_delimiter() -> None:
    data = await run("ingest", "a;b\n1;x,y\n", parameters={"delimiter": ";"})
    assert data["records"] == [{"a": 1, "b": "x,y"}]
    assert data["delimiter"] == ";"


async def test_tab_delimiter() -> None:
    data = await run("ingest", "a\tb\n1\thello world\n", parameters={"delimiter": "\t"})
    assert data["records"] == [{"a": 1, "b": "hello world"}]


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
async def test_delimiter_is_sniffed_when_not_given(delimiter: str) -> None:
    text = f"id{delimiter}city{delimiter}note\n1{delimiter}Oslo{delimiter}a\n2{delimiter}Rome{delimiter}b\n"
    data = await run("ingest", text)
    assert data["delimiter"] == delimiter
    assert data["records"][1] == {"id": 2, "city": "Rome", "note": "b"}


async def test_configured_delimiter_wins_over_sniffing() -> None:
    data = await run("ingest", "a;b,c\n1;2,3\n", make_connector(delimiter=","))
    assert data["columns"] == ["a;b", "c"]


async def test_quoted_newlines_stay_inside_the_field() -> None:
    text = 'id,comment\n1,"first line\nsecond line"\n2,"say ""hi"""\n'
    data = await run("ingest", text)
    assert data["records"] == [
        {"id": 1, "comment": "first line\nsecond line"},
        {"id": 2, "comment": 'say "hi"'},
    ]


async def test_utf8_bom_is_stripped_from_inline_text_and_bytes() -> None:
    text = "\ufeffname,city\nZoë,Zürich\n"
    inline = await run("ingest", text)
    encoded = await run("ingest", b64(text.encode("utf-8")), data_format="base64")
    for data in (inline, encoded):
        assert data["columns"] == ["name", "city"]
        assert data["records"] == [{"name": "Zoë", "city": "Zürich"}]
        assert data["encoding"] == "utf-8"


async def test_latin1_bytes_with_given_encoding() -> None:
    raw = "name;city\nJosé;Zürich\nRenée;Köln\n".encode("latin-1")
    data = await run("ingest", b64(raw), parameters={"base64": True, "encoding": "latin-1"})
    assert data["records"] == [{"name": "José", "city": "Zürich"}, {"name": "Renée", "city": "Köln"}]
    assert data["encoding"] == "iso8859-1"


async def test_latin1_bytes_encoding_is_detected() -> None:
    raw = "name;city\nJosé;Zürich\nRenée;Köln\nFrançois;Besançon\n".encode("latin-1")
    data = await run("ingest", b64(raw), data_format="base64")
    assert data["records"][2] == {"name": "François", "city": "Besançon"}
    assert data["encoding"] == "cp1252"


async def test_without_headers_columns_are_numbered() -> None:
    data = await run("ingest", "1,a\n2,b\n", parameters={"has_headers": False})
    assert data["columns"] == ["column_1", "column_2"]
    assert data["records"] == [{"column_1": 1, "column_2": "a"}, {"column_1": 2, "column_2": "b"}]


async def test_has_headers_default_comes_from_config() -> None:
    data = await run("ingest", "1,a\n", make_connector(has_headers=False))
    assert data["records"] == [{"column_1": 1, "column_2": "a"}]


async def test_coerce_types_false_keeps_raw_text() -> None:
    data = await run("ingest", "a,b\n1,\n", parameters={"coerce_types": False})
    assert data["records"] == [{"a": "1", "b": ""}]


async def test_blank_and_duplicate_headers_get_unique_keys() -> None:
    data = await run("ingest", "a,,a\n1,2,3\n")
    assert data["columns"] == ["a", "column_2", "a_2"]


async def test_empty_file_has_no_records() -> None:
    outcome = await execute("ingest", "")
    assert outcome.records_processed == 0
    assert outcome.result_data["records"] == []


async def test_blank_lines_are_skipped() -> None:
    data = await run("ingest", "a,b\n\n1,2\n\n")
    assert data["records"] == [{"a": 1, "b": 2}]


async def test_ragged_row_fails_ingest_naming_its_line() -> None:
    error = await failure("ingest", "a,b\n1,2\n3\n")
    assert error.code == ErrorCode.INVALID_DATA
    assert "line 3" in error.message


async def test_unmatched_quote_is_invalid_data_with_line() -> None:
    error = await failure("ingest", 'a,b\n1,2\n3,"open\n4,5\n')
    assert error.code == ErrorCode.INVALID_DATA
    assert "line 3" in error.message
    assert "unmatched quote" in error.message


async def test_unknown_operation_is_refused_by_the_base_class() -> None:
    result = await make_connector().execute_operation({"operation": "query", "data": {"file_data": PEOPLE}})
    assert result.status == "failed"
    assert result.error is not None and result.error.code == ErrorCode.UNKNOWN_OPERATION


@pytest.mark.parametrize("data", [{}, {"file_data": None}])
async def test_missing_file_data_is_invalid_data(data: dict[str, Any]) -> None:
    with pytest.raises(PermanentError) as caught:
        await make_connector().execute(OperationRequest(operation="ingest", data=data))
    assert caught.value.code == ErrorCode.INVALID_DATA


@pytest.mark.parametrize("data", [{"file_data": 42}, {"file": "a,b"}])
async def test_misshapen_data_is_refused_before_any_work(data: dict[str, Any]) -> None:
    with pytest.raises(PermanentError) as caught:
        await make_connector().execute(OperationRequest(operation="ingest", data=data))
    assert caught.value.code == ErrorCode.INVALID_REQUEST
    assert "invalid data" in caught.value.message


async def test_bad_base64_is_invalid_data() -> None:
    error = await failure("ingest", "not base64!!", data_format="base64")
    assert error.code == ErrorCode.INVALID_DATA
    assert "base64" in error.message


async def test_undecodable_bytes_fail_ingest_with_line() -> None:
    raw = b"a,b\n1,2\n3,\xff\xfe\n"
    error = await failure("ingest", b64(raw), data_format="base64", parameters={"encoding": "utf-8"})
    assert error.code == ErrorCode.INVALID_DATA
    assert "line 3" in error.message


@pytest.mark.parametrize(
    "parameters",
    [
        {"delimitr": ";"},
        {"delimiter": ";;"},
        {"page_size": 10_001},
        {"delimiter": '"'},
        {"encoding": "klingon"},
    ],
)
async def test_bad_parameters_are_invalid_request(parameters: dict[str, Any]) -> None:
    error = await failure("ingest", PEOPLE, parameters=parameters)
    assert error.code == ErrorCode.INVALID_REQUEST


# --- paging -----------------------------------------------------------------------------------------


def numbered(rows: int) -> str:
    return "n,label\n" + "".join(f"{i},row {i}\n" for i in range(rows))


async def test_paging_across_three_pages_reassembles_every_row() -> None:
    connector = make_connector()
    text = numbered(25)
    whole = await run("ingest", text, connector, parameters={"page_size": 100})
    records: list[dict[str, Any]] = []
    pages = 0
    token: str | None = None
    while True:
        result = await connector.execute_operation(
            {
                "operation": "ingest",
                "data": {"file_data": text},
                "parameters": {"page_size": 10},
                "page_token": token,
            }
        )
        assert result.ok, result.error
        pages += 1
        records.extend(result.result_data["records"])
        assert result.records_processed == len(result.result_data["records"])
        token = result.next_page_token
        if token is None:
            break
    assert pages == 3
    assert records == whole["records"]
    assert [r["n"] for r in records] == list(range(25))


async def test_types_are_inferred_over_the_whole_file_so_pages_agree() -> None:
    text = "code\n1\n2\nX9\n"
    first = await execute("ingest", text, parameters={"page_size": 2})
    assert first.result_data["records"] == [{"code": "1"}, {"code": "2"}]


async def test_page_token_for_other_data_is_refused() -> None:
    first = await execute("ingest", numbered(5), parameters={"page_size": 2})
    assert first.next_page_token is not None
    error = await failure(
        "ingest", numbered(6), parameters={"page_size": 2}, page_token=first.next_page_token
    )
    assert error.code == ErrorCode.INVALID_REQUEST
    error = await failure(
        "ingest", numbered(5), parameters={"page_size": 2, "delimiter": ";"}, page_token=first.next_page_token
    )
    assert error.code == ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(
    "token", ["garbage", b64(b'{"v": 1}'), b64(b'{"v":1,"offset":-1,"file":"x","dialect":"y"}')]
)
async def test_garbled_page_token_is_invalid_request(token: str) -> None:
    error = await failure("ingest", PEOPLE, page_token=token)
    assert error.code == ErrorCode.INVALID_REQUEST


async def test_page_token_is_only_for_ingest() -> None:
    error = await failure("preview", PEOPLE, page_token="abc")
    assert error.code == ErrorCode.INVALID_REQUEST


# --- validate ---------------------------------------------------------------------------------------


async def test_validate_reports_ragged_rows_at_their_physical_lines() -> None:
    text = 'id,comment,qty\n1,"spans\ntwo lines",3\n2,short\n3,ok,4\n4,a,5,extra\n'
    outcome = await execute("validate", text)
    report = outcome.result_data
    assert report["valid"] is False
    assert report["rows"] == 4
    assert outcome.records_processed == 4
    ragged = [(e["line"], e["kind"]) for e in report["errors"]]
    assert ragged == [(4, "ragged_row"), (6, "ragged_row")]
    assert report["errors_truncated"] is False


async def test_validate_reports_duplicate_and_empty_headers() -> None:
    report = await run("validate", "id,name,,name\n1,a,b,c\n")
    kinds = [(e["line"], e["kind"]) for e in report["errors"]]
    assert kinds == [(1, "empty_header"), (1, "duplicate_header")]
    assert report["columns"] == ["id", "name", "column_3", "name_2"]


async def test_validate_reports_type_mismatches_against_the_dominant_type() -> None:
    report = await run("validate", "id,qty\n1,10\n2,11\n3,n/a\n4,12\n")
    assert report["inferred_types"] == {"id": "int", "qty": "int"}
    assert report["errors"] == [
        {"line": 4, "kind": "type_mismatch", "message": "column 'qty' holds int values, but 'n/a' is not one"}
    ]


async def test_validate_of_clean_data_is_valid() -> None:
    report = await run("validate", PEOPLE)
    assert report["valid"] is True
    assert report["errors"] == []
    assert report["inferred_types"] == {"name": "str", "age": "int", "score": "float", "active": "bool"}


async def test_validate_caps_errors_and_flags_truncation() -> None:
    text = "a,b\n" + "1\n" * 30
    report = await run("validate", text, parameters={"max_errors": 5})
    assert len(report["errors"]) == 5
    assert [e["line"] for e in report["errors"]] == [2, 3, 4, 5, 6]
    assert report["error_count"] == 30
    assert report["errors_truncated"] is True


async def test_validate_reports_a_malformed_record_instead_of_raising() -> None:
    report = await run("validate", 'a,b\n1,2\n3,"open\n')
    assert report["valid"] is False
    assert report["errors"][0]["kind"] == "malformed"
    assert report["errors"][0]["line"] == 3


async def test_validate_reports_undecodable_bytes_instead_of_raising() -> None:
    raw = b"a,b\n1,2\n3,\xff\n"
    report = await run("validate", b64(raw), data_format="base64", parameters={"encoding": "utf-8"})
    assert report["valid"] is False
    assert report["errors"][0]["kind"] == "encoding"
    assert report["errors"][0]["line"] == 3
    assert report["rows"] == 2


async def test_validate_still_raises_for_limit_breaches() -> None:
    error = await failure("validate", numbered(5), make_connector(max_rows=3))
    assert error.code == ErrorCode.LIMIT_EXCEEDED


# --- preview ----------------------------------------------------------------------------------------


async def test_preview_returns_first_rows_and_schema() -> None:
    outcome = await execute("preview", PEOPLE, parameters={"preview_rows": 2})
    data = outcome.result_data
    assert outcome.records_processed == 2
    assert [r["name"] for r in data["records"]] == ["Ada", "Grace"]
    assert data["truncated"] is True
    assert data["schema"] == [
        {"name": "name", "type": "str", "nullable": False},
        {"name": "age", "type": "int", "nullable": True},
        {"name": "score", "type": "float", "nullable": False},
        {"name": "active", "type": "bool", "nullable": False},
    ]


async def test_preview_row_count_defaults_to_config() -> None:
    data = await run("preview", numbered(20), make_connector(preview_rows=4))
    assert len(data["records"]) == 4


async def test_preview_of_a_short_file_is_not_truncated() -> None:
    data = await run("preview", PEOPLE)
    assert len(data["records"]) == 3
    assert data["truncated"] is False


async def test_preview_ignores_trouble_past_the_rows_it_shows() -> None:
    text = numbered(5) + "ragged\n" + '9,"open\n'
    data = await run("preview", text, parameters={"preview_rows": 3})
    assert [r["n"] for r in data["records"]] == [0, 1, 2]
    assert data["truncated"] is True
    error = await failure("preview", text, parameters={"rows": 6})
    assert error.code == ErrorCode.INVALID_DATA
    assert "line 7" in error.message


# --- limits -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "text", "limit"),
    [
        ({"max_bytes": 20}, PEOPLE, "max_bytes (20)"),
        ({"max_rows": 2}, PEOPLE, "max_rows (2)"),
        ({"max_columns": 3}, PEOPLE, "max_columns (3)"),
        ({"max_field_size": 4}, PEOPLE, "max_field_size (4)"),
    ],
)
@pytest.mark.parametrize("operation", ["ingest", "validate"])
async def test_each_limit_breach_is_limit_exceeded(
    config: dict[str, Any], text: str, limit: str, operation: str
) -> None:
    error = await failure(operation, text, make_connector(**config))
    assert error.code == ErrorCode.LIMIT_EXCEEDED
    assert limit in error.message


async def test_max_bytes_applies_to_decoded_base64() -> None:
    error = await failure("ingest", b64(PEOPLE.encode()), make_connector(max_bytes=20), data_format="base64")
    assert error.code == ErrorCode.LIMIT_EXCEEDED
    assert "max_bytes (20)" in error.message


async def test_field_over_python_default_limit_is_limit_exceeded_and_limit_untouched() -> None:
    before = csv.field_size_limit()
    error = await failure("ingest", "a,b\n1," + "x" * 200_000 + "\n")
    assert error.code == ErrorCode.LIMIT_EXCEEDED
    assert "max_field_size (131072)" in error.message
    assert csv.field_size_limit() == before == 131_072


async def test_check_passes_without_io() -> None:
    result = await make_connector().check()
    assert result.status == "success"
    assert set(result.test_results.values()) == {"passed"}


# --- pure helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("", "blank"),
        ("   ", "blank"),
        ("42", "int"),
        ("-7", "int"),
        (" 5 ", "int"),
        ("007", "str"),
        ("1.5", "float"),
        ("1e3", "float"),
        (".5", "float"),
        ("1e999", "str"),
        ("nan", "str"),
        ("TRUE", "bool"),
        ("false", "bool"),
        ("yes", "str"),
        ("1_000", "str"),
    ],
)
def test_classify_value(value: str, kind: str) -> None:
    assert classify_value(value) == kind


def test_coerce_value() -> None:
    assert coerce_value(" 5 ", "int") == 5
    assert coerce_value("2", "float") == 2.0
    assert coerce_value("False", "bool") is False
    assert coerce_value("", "str") is None
    assert coerce_value(" keep ", "str") == " keep "


def test_column_profile_widens_for_ingest_and_keeps_majority_for_validate() -> None:
    profile = ColumnProfile(keep=10)
    for line, value in enumerate(["1", "2", "3.5", "", "oops"], start=2):
        profile.observe(value, line)
    assert profile.widened_type == "str"
    assert profile.dominant_type == "float"
    assert profile.nullable is True
    assert profile.mismatches() == (1, [(6, "oops")])


def test_column_names_and_header_problems() -> None:
    assert column_names(None, 2) == ["column_1", "column_2"]
    assert column_names(["x", " ", "x", "x"], 4) == ["x", "column_2", "x_2", "x_3"]
    assert [kind for kind, _ in header_problems(["x", "", "x"])] == ["empty_header", "duplicate_header"]


def test_read_rows_reports_start_line_of_multiline_records() -> None:
    limits = CsvLimits(max_bytes=1000, max_rows=10, max_columns=10, max_field_size=100)
    rows = list(read_rows('a,b\n"x\ny",1\n\nz,2\n', CsvDialect(","), limits))
    assert [(r.line, r.fields) for r in rows] == [(1, ["a", "b"]), (2, ["x\ny", "1"]), (5, ["z", "2"])]


def test_sniff_uses_whole_lines_of_a_long_file() -> None:
    text = "a;b;c\n" + "x;yy;zzz\n" * 5_000
    assert sniff_delimiter(text) == ";"


def test_sniff_falls_back_to_comma() -> None:
    assert sniff_delimiter("single\nvalue\n") == ","
    assert sniff_delimiter("a|b\n1|2\n") == "|"


def test_decode_bytes_prefers_bom_then_utf8() -> None:
    assert decode_bytes("\ufeffa".encode()).text == "a"
    assert decode_bytes("a,b".encode("utf-16")).text == "a,b"
    assert decode_bytes("é".encode()).encoding == "utf-8"
    lenient = decode_bytes(b"a\n\xff", "utf-8", lenient=True)
    assert lenient.issue_line == 2 and lenient.text == "a\n\ufffd"


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        ("name;city\nJosé;Zürich\nFrançois;Besançon\n", "cp1252"),
        ("imię,miasto\nZażółć gęślą jaźń,Łódź\n", "cp1250"),
        ("имя,город\nИван,Москва\nПётр,Санкт-Петербург\n", "cp1251"),  # noqa: RUF001
    ],
)
def test_detect_codec_prefers_cp1252_only_on_a_tie(text: str, codec: str) -> None:
    assert detect_codec(text.encode(codec)) == codec


def test_page_token_round_trip_and_refusals() -> None:
    token = encode_page_token(20, "file", "dialect")
    assert decode_page_token(token, "file", "dialect") == 20
    for file_id, dialect_id in [("other", "dialect"), ("file", "other")]:
        with pytest.raises(PermanentError):
            decode_page_token(token, file_id, dialect_id)


async def test_a_given_schema_overrides_inference_and_refuses_values_that_do_not_fit() -> None:
    connector = CSVIngestionConnector(ServiceConnection(service_type="csv", service_name="typed"))
    text = "zip,amount\n12345,5\n99501,6\n"  # zips look like integers

    kept = await connector.execute(
        OperationRequest(operation="ingest", data={"file_data": text}, parameters={"schema": {"zip": "str"}})
    )
    wrong = await connector.execute_operation(
        {"operation": "ingest", "data": {"file_data": "a\nx\n"}, "parameters": {"schema": {"a": "int"}}}
    )
    unknown = await connector.execute_operation(
        {"operation": "ingest", "data": {"file_data": "a\n1\n"}, "parameters": {"schema": {"b": "int"}}}
    )

    assert kept.result_data["records"] == [{"zip": "12345", "amount": 5}, {"zip": "99501", "amount": 6}]
    assert wrong.error is not None and wrong.error.code == "INVALID_DATA" and "line 2" in wrong.error.message
    assert unknown.error is not None and unknown.error.code == "INVALID_REQUEST"
