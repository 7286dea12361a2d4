"""Validation issues with field paths, and JavaScript-compatible dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

import msgspec

from gateway.codec import Issue, encode_js_dates, js_iso, may_contain_datetime, validation_issues


class Line(msgspec.Struct):
    sku: Annotated[str, msgspec.Meta(min_length=1)]
    quantity: Annotated[int, msgspec.Meta(gt=0)]


class Order(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    order_id: str
    lines: list[Line]
    note: str | None = None


def test_every_problem_is_reported_with_its_path() -> None:
    issues = validation_issues(
        {"orderId": 7, "lines": [{"sku": "", "quantity": 1}, {"quantity": "2"}]}, Order
    )
    assert issues == [
        Issue("invalid_type", ["orderId"], "Expected string, received number", "string", "number"),
        Issue("too_small", ["lines", 0, "sku"], "Expected string of length >= 1"),
        Issue("invalid_type", ["lines", 1, "sku"], "Required", received="undefined"),
        Issue(
            "invalid_type", ["lines", 1, "quantity"], "Expected number, received string", "number", "string"
        ),
    ]


def test_messages_use_javascript_type_names_like_zod() -> None:
    class Amount(msgspec.Struct):
        cents: Annotated[int, msgspec.Meta(gt=0)]

    assert validation_issues({"cents": 1.5}, Amount) == [
        Issue("invalid_type", ["cents"], "Expected integer, received float", "integer", "float")
    ]
    assert validation_issues({"cents": 0}, Amount) == [Issue("too_small", ["cents"], "Expected number >= 1")]
    assert validation_issues({"cents": True}, Amount)[0].message == "Expected number, received boolean"


def test_missing_fields_and_unknown_fields() -> None:
    assert validation_issues({}, Order) == [
        Issue("invalid_type", ["orderId"], "Required", received="undefined"),
        Issue("invalid_type", ["lines"], "Required", received="undefined"),
    ]
    assert validation_issues({"orderId": "a", "lines": [], "extra": 1}, Order) == [
        Issue("unrecognized_keys", [], "Unrecognized key: 'extra'")
    ]


def test_wrong_root_type_and_valid_input() -> None:
    assert validation_issues(None, Order) == [
        Issue("invalid_type", [], "Expected object, received null", expected="object", received="null")
    ]
    assert validation_issues({"orderId": "a", "lines": []}, Order) == []


def test_dates_are_written_like_javascript() -> None:
    moment = datetime(2024, 1, 15, 11, 30, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert js_iso(moment) == "2024-01-15T10:30:00.123Z"
    assert encode_js_dates({"at": datetime(2024, 1, 15, tzinfo=UTC), "n": [1]}) == (
        b'{"at":"2024-01-15T00:00:00.000Z","n":[1]}'
    )


def test_may_contain_datetime_looks_inside_types() -> None:
    class WithDate(msgspec.Struct):
        when: datetime | None

    class Plain(msgspec.Struct):
        name: str

    assert may_contain_datetime(WithDate)
    assert may_contain_datetime(list[WithDate])
    assert may_contain_datetime(Annotated[datetime, msgspec.Meta(tz=True)])
    assert may_contain_datetime(Any)
    assert not may_contain_datetime(Plain)
    assert not may_contain_datetime(dict[str, int])
