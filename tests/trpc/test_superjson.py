"""Tests for gateway.trpc.superjson.

The wire bytes are the captured outputs of shared/reference/trpc-wire.md, sections 7.1 and 7.2; they are
checked byte for byte, since a superjson client reads nothing else.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import decimal
import json
import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.trpc.superjson import UNDEFINED, SuperjsonError, deserialize, is_envelope, serialize

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
EPOCH_ISO = "1970-01-01T00:00:00.000Z"


def wire(value: object) -> bytes:
    return msgspec.json.encode(serialize(value))


def read(data: bytes | str) -> object:
    return deserialize(json.loads(data))


# --- section 7.2: the captured table ---------------------------------------------------------------------

# (Python value, captured bytes, what deserializing those bytes gives)
TABLE_BOTH_WAYS: list[tuple[object, bytes, object]] = [
    (UNDEFINED, rb'{"json":null,"meta":{"values":["undefined"],"v":1}}', UNDEFINED),
    (None, rb'{"json":null}', None),
    ({"a": 1, "b": "x"}, rb'{"json":{"a":1,"b":"x"}}', {"a": 1, "b": "x"}),
    (EPOCH, rb'{"json":"1970-01-01T00:00:00.000Z","meta":{"values":["Date"],"v":1}}', EPOCH),
    (
        {EPOCH},
        rb'{"json":["1970-01-01T00:00:00.000Z"],"meta":{"values":["set",{"0":["Date"]}],"v":1}}',
        [EPOCH],
    ),
    (
        {"a": UNDEFINED, "b": 1},
        rb'{"json":{"a":null,"b":1},"meta":{"values":{"a":["undefined"]},"v":1}}',
        {"b": 1},
    ),
    ([UNDEFINED, 1], rb'{"json":[null,1],"meta":{"values":{"0":["undefined"]},"v":1}}', [None, 1]),
    (
        {"list": [{"when": EPOCH}]},
        rb'{"json":{"list":[{"when":"1970-01-01T00:00:00.000Z"}]},"meta":{"values":{"list.0.when":["Date"]},"v":1}}',
        {"list": [{"when": EPOCH}]},
    ),
    (
        {"a.b": EPOCH},
        rb'{"json":{"a.b":"1970-01-01T00:00:00.000Z"},"meta":{"values":{"a\\.b":["Date"]},"v":1}}',
        {"a.b": EPOCH},
    ),
    (b"\x01\x02", rb'{"json":[1,2],"meta":{"values":[["typed-array","Uint8Array"]],"v":1}}', [1, 2]),
]

# Rows whose JS value has no Python counterpart to serialize: (captured bytes, what deserializing gives).
TABLE_READ_ONLY: list[tuple[bytes, object]] = [
    (rb'{"json":"10","meta":{"values":["bigint"],"v":1}}', 10),
    (rb'{"json":"/x+/g","meta":{"values":["regexp"],"v":1}}', "/x+/g"),
    (rb'{"json":"http://a/b","meta":{"values":["URL"],"v":1}}', "http://a/b"),
    (
        rb'{"json":{"name":"Error","message":"boom"},"meta":{"values":["Error"],"v":1}}',
        {"name": "Error", "message": "boom"},
    ),
    (
        rb'{"json":[["a","1970-01-01T00:00:00.000Z"]],"meta":{"values":["map",{"0.1":["Date"]}],"v":1}}',
        {"a": EPOCH},
    ),
    (rb'{"json":[[{"k":1},"v"]],"meta":{"values":["map"],"v":1}}', [[{"k": 1}, "v"]]),
    (rb'{"json":{"a\\b":"1"},"meta":{"values":{"a\\\\b":["bigint"]},"v":1}}', {"a\\b": 1}),
    (
        rb'{"json":{"a":{"z":1},"b":[{"z":1}]},"meta":{"referentialEqualities":{"a":["b.0"]},"v":1}}',
        {"a": {"z": 1}, "b": [{"z": 1}]},
    ),
    (rb'{"json":{"self":null},"meta":{"referentialEqualities":[["self"]],"v":1}}', {"self": None}),
]

NUMBERS_ROW = (
    rb'{"json":["NaN","Infinity","-Infinity","-0"],'
    rb'"meta":{"values":{"0":["number"],"1":["number"],"2":["number"],"3":["number"]},"v":1}}'
)


@pytest.mark.parametrize(("value", "captured", "expected"), TABLE_BOTH_WAYS)
def test_table_row_serializes_to_the_captured_bytes(value: object, captured: bytes, expected: object) -> None:
    assert wire(value) == captured


@pytest.mark.parametrize(("value", "captured", "expected"), TABLE_BOTH_WAYS)
def test_table_row_deserializes(value: object, captured: bytes, expected: object) -> None:
    assert read(captured) == expected


@pytest.mark.parametrize(("captured", "expected"), TABLE_READ_ONLY)
def test_table_row_without_python_counterpart_deserializes(captured: bytes, expected: object) -> None:
    assert read(captured) == expected


def test_bigint_reads_as_int() -> None:
    assert type(read(rb'{"json":"10","meta":{"values":["bigint"],"v":1}}')) is int


def test_special_numbers_row_both_ways() -> None:
    assert wire([math.nan, math.inf, -math.inf, -0.0]) == NUMBERS_ROW
    numbers = read(NUMBERS_ROW)
    assert isinstance(numbers, list)
    nan, inf, minus_inf, minus_zero = numbers
    assert math.isnan(nan)
    assert inf == math.inf
    assert minus_inf == -math.inf
    assert minus_zero == 0.0
    assert math.copysign(1.0, minus_zero) == -1.0


def test_key_with_backslash_serializes_with_escaped_path() -> None:
    # The captured row is `{'a\\b': 1n}`; ints never become bigint, so a Date stands in for the annotation.
    assert wire({"a\\b": EPOCH}) == (
        rb'{"json":{"a\\b":"1970-01-01T00:00:00.000Z"},"meta":{"values":{"a\\\\b":["Date"]},"v":1}}'
    )


# --- section 7.1: captured exchanges ---------------------------------------------------------------------


def test_captured_query_input_and_output() -> None:
    assert read(b'{"json":{"name":"Ann"}}') == {"name": "Ann"}
    assert wire({"hello": "Ann"}) == b'{"json":{"hello":"Ann"}}'
    assert wire("pong") == b'{"json":"pong"}'
    assert read(b'{"json":"NOT_FOUND"}') == "NOT_FOUND"


def test_captured_undefined_input_reads_as_undefined() -> None:
    assert read(b'{"json":null,"meta":{"values":["undefined"],"v":1}}') is UNDEFINED


def test_captured_error_object_serializes_without_meta() -> None:
    error = {
        "message": "thrown NOT_FOUND",
        "code": -32004,
        "data": {"code": "NOT_FOUND", "httpStatus": 404, "path": "throwCode"},
    }
    assert wire(error) == (
        b'{"json":{"message":"thrown NOT_FOUND","code":-32004,'
        b'"data":{"code":"NOT_FOUND","httpStatus":404,"path":"throwCode"}}}'
    )


def test_captured_jsonl_lines_both_ways() -> None:
    head = b'{"json":{"0":[[0],[null,0,0]]}}'
    assert wire({"0": [[0], [None, 0, 0]]}) == head
    line = (
        b'{"json":[6,0,[[{"input":"1970-01-01T00:00:00.000Z"}]]],'
        b'"meta":{"values":{"2.0.0.input":["Date"]},"v":1}}'
    )
    assert wire([6, 0, [[{"input": EPOCH}]]]) == line
    assert read(line) == [6, 0, [[{"input": EPOCH}]]]


def test_captured_tracked_event_data() -> None:
    assert wire({"id": "1", "data": {"i": 1}}) == b'{"json":{"id":"1","data":{"i":1}}}'


@pytest.mark.parametrize("version", [',"v":1', ""])
def test_date_input_with_and_without_version(version: str) -> None:
    payload = (
        '{"json":{"input":"1970-01-01T00:00:00.000Z"},"meta":{"values":{"input":["Date"]}' + version + "}}"
    )
    assert read(payload) == {"input": EPOCH}


# --- superjson 1.x payloads (no "v") and path escaping ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (r"a\.b", "a.b"),  # `\.` is an escape in both formats
        (r"a\b", "a\\b"),  # 1.x: a backslash before anything but `.` is an ordinary character
        (r"a\\b", "a\\\\b"),  # ... so both backslashes stay
        (r"a\\.b", "a\\.b"),  # the second backslash escapes the dot; the first stays
        ("a\\", "a\\"),  # a trailing backslash stays too
    ],
)
def test_legacy_paths(path: str, key: str) -> None:
    payload = {"json": {key: "1"}, "meta": {"values": {path: ["bigint"]}}}
    assert deserialize(payload) == {key: 1}


@pytest.mark.parametrize(("path", "key"), [(r"a\.b", "a.b"), (r"a\\b", "a\\b"), (r"a\\\.b", "a\\.b")])
def test_v1_paths(path: str, key: str) -> None:
    payload = {"json": {key: "1"}, "meta": {"values": {path: ["bigint"]}, "v": 1}}
    assert deserialize(payload) == {key: 1}


@pytest.mark.parametrize("path", [r"a\b", "a\\"])
def test_v1_rejects_a_backslash_that_escapes_nothing(path: str) -> None:
    with pytest.raises(SuperjsonError, match="invalid escape"):
        deserialize({"json": {"a\\b": "1"}, "meta": {"values": {path: ["bigint"]}, "v": 1}})


def test_version_below_one_uses_legacy_paths() -> None:
    assert deserialize({"json": {"a\\b": "1"}, "meta": {"values": {r"a\b": ["bigint"]}, "v": 0}}) == {
        "a\\b": 1
    }


def test_legacy_nested_paths_and_leaves() -> None:
    payload = {
        "json": {"x": {"y": "10"}, "m": [["k", "1970-01-01T00:00:00.000Z"]], "u": None},
        "meta": {"values": {"x.y": ["bigint"], "m": ["map", {"0.1": ["Date"]}], "u": ["undefined"]}},
    }
    assert deserialize(payload) == {"x": {"y": 10}, "m": {"k": EPOCH}}


def test_legacy_unescaped_dotted_key_is_an_error() -> None:
    # superjson 1.x annotates {"a.b": Date} as "a.b" (section 7.2): that path names a.b, which does not exist.
    with pytest.raises(SuperjsonError, match="does not exist"):
        read(b'{"json":{"a.b":"1970-01-01T00:00:00.000Z"},"meta":{"values":{"a.b":["Date"]}}}')


# --- deserialize details ---------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [{"a": 1}, [], "x", None, 1, {"meta": {}}])
def test_not_an_envelope_reads_as_undefined(payload: object) -> None:
    assert deserialize(payload) is UNDEFINED


@pytest.mark.parametrize("meta", [None, {}, {"v": 1}, {"values": None, "v": 1}])
def test_envelope_without_values_returns_json_itself(meta: object) -> None:
    body = {"a": [1, "2"]}
    assert deserialize({"json": body, "meta": meta}) is body


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1970-01-01T00:00:00.000Z", EPOCH),
        ("2024-02-29T23:59:59.999Z", datetime.datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=datetime.UTC)),
        ("0001-01-01T00:00:00.000Z", datetime.datetime(1, 1, 1, tzinfo=datetime.UTC)),
        ("+002024-01-01T00:00:00.000Z", datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)),
        ("2024-01-01", datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)),
        ("2024-01-01T10:00Z", datetime.datetime(2024, 1, 1, 10, tzinfo=datetime.UTC)),
        ("2024-01-01T10:00:00+02:00", datetime.datetime(2024, 1, 1, 8, tzinfo=datetime.UTC)),
        (
            "2024-01-01T10:00:00.1234567Z",
            datetime.datetime(2024, 1, 1, 10, 0, 0, 123456, tzinfo=datetime.UTC),
        ),
    ],
)
def test_date_strings(text: str, expected: datetime.datetime) -> None:
    value = deserialize({"json": text, "meta": {"values": ["Date"], "v": 1}})
    assert value == expected
    assert isinstance(value, datetime.datetime)
    assert value.tzinfo is datetime.UTC


@pytest.mark.parametrize(
    "text",
    [
        "not a date",
        "2024-13-01T00:00:00.000Z",
        "2024-02-30T00:00:00.000Z",
        "2024-01-01T00:00:00.000",  # local time of an unknown zone
        "+010000-01-01T00:00:00.000Z",  # JS can write it, Python cannot hold it
        "-000001-01-01T00:00:00.000Z",
        "0001-01-01T00:00:00.000+01:00",
        "2024-01-01T00:00:00.000+24:00",
        "\uff12\uff10\uff12\uff14-01-01",  # fullwidth digits
        5,
        None,
    ],
)
def test_bad_dates(text: object) -> None:
    with pytest.raises(SuperjsonError, match="Date"):
        deserialize({"json": text, "meta": {"values": ["Date"], "v": 1}})


def test_typed_arrays() -> None:
    assert read(b'{"json":[1.5,"NaN"],"meta":{"values":[["typed-array","Float64Array"]],"v":1}}') == [
        1.5,
        pytest.approx(math.nan, nan_ok=True),
    ]
    assert read(b'{"json":["-9","10"],"meta":{"values":[["typed-array","BigInt64Array"]],"v":1}}') == [-9, 10]


@pytest.mark.parametrize("kind", ["class", "custom", "symbol"])
def test_registered_annotations_leave_the_json(kind: str) -> None:
    payload = {"json": {"x": {"p": 1}}, "meta": {"values": {"x": [[kind, "Point"]]}, "v": 1}}
    assert deserialize(payload) == {"x": {"p": 1}}


def test_map_with_non_string_keys_stays_pairs() -> None:
    assert read(b'{"json":[[1,"a"],["b",2]],"meta":{"values":["map"],"v":1}}') == [[1, "a"], ["b", 2]]


def test_undefined_inside_map_and_set() -> None:
    payload = {
        "json": {"s": [None], "m": [["k", None]]},
        "meta": {"values": {"s": ["set", {"0": ["undefined"]}]}},
    }
    assert deserialize(payload) == {"s": [None], "m": [["k", None]]}


def test_payload_is_not_modified() -> None:
    payload = json.loads(
        b'{"json":{"a":{"b":[null,"1970-01-01T00:00:00.000Z"]},"c":null},'
        b'"meta":{"values":{"a.b.0":["undefined"],"a.b.1":["Date"],"c":["undefined"]},"v":1}}'
    )
    before = copy.deepcopy(payload)
    assert deserialize(payload) == {"a": {"b": [None, EPOCH]}}
    assert payload == before


def test_aliased_containers_are_changed_independently() -> None:
    shared = ["1970-01-01T00:00:00.000Z"]
    result = deserialize({"json": {"x": shared, "y": shared}, "meta": {"values": {"x.0": ["Date"]}, "v": 1}})
    assert result == {"x": [EPOCH], "y": ["1970-01-01T00:00:00.000Z"]}


def test_deep_path_is_walked_without_recursion() -> None:
    depth = 3000
    body: object = "10"
    for _ in range(depth):
        body = [body]
    result = deserialize({"json": body, "meta": {"values": {".".join(["0"] * depth): ["bigint"]}, "v": 1}})
    for _ in range(depth):
        assert isinstance(result, list)
        result = result[0]
    assert result == 10


def nested_tree(depth: int) -> object:
    tree: object = ["undefined"]
    for _ in range(depth):
        tree = {"0": tree}
    return tree


def test_deeply_nested_values_tree_is_refused() -> None:
    with pytest.raises(SuperjsonError, match="nested"):
        deserialize({"json": None, "meta": {"values": nested_tree(100), "v": 1}})
    with pytest.raises(SuperjsonError, match="nested"):
        deserialize({"json": None, "meta": {"values": nested_tree(100_000), "v": 1}})


def test_values_tree_nested_within_the_bound_is_read() -> None:
    body: object = "1"
    for _ in range(60):
        body = [body]
    assert deserialize({"json": body, "meta": {"values": nested_tree(60), "v": 1}}) == nested_lists_of_none(
        60
    )


def nested_lists_of_none(depth: int) -> object:
    value: object = None
    for _ in range(depth):
        value = [value]
    return value


BAD_PAYLOADS: list[object] = [
    # meta and values shapes
    {"json": 1, "meta": []},
    {"json": 1, "meta": "x"},
    {"json": 1, "meta": {"values": "Date", "v": 1}},
    {"json": 1, "meta": {"values": 5, "v": 1}},
    {"json": 1, "meta": {"values": [], "v": 1}},
    {"json": 1, "meta": {"values": ["number", "x"], "v": 1}},
    {"json": 1, "meta": {"values": ["number", {}, {}], "v": 1}},
    {"json": {"a": 1}, "meta": {"values": {"a": None}, "v": 1}},
    {"json": 1, "meta": {"values": ["number"], "v": "1"}},
    {"json": 1, "meta": {"values": ["number"], "v": True}},
    # annotations
    {"json": 1, "meta": {"values": ["Bogus"], "v": 1}},
    {"json": 1, "meta": {"values": [5], "v": 1}},
    {"json": [1], "meta": {"values": [["typed-array", "Nope"]], "v": 1}},
    {"json": [1], "meta": {"values": [["typed-array"]], "v": 1}},
    {"json": [1], "meta": {"values": [["bogus", "x"]], "v": 1}},
    {"json": [1], "meta": {"values": [["class", 5]], "v": 1}},
    # paths
    {"json": {"a": 1}, "meta": {"values": {"b": ["undefined"]}, "v": 1}},
    {"json": {"a": 1}, "meta": {"values": {"a.b": ["undefined"]}, "v": 1}},
    {"json": [1], "meta": {"values": {"1": ["undefined"]}, "v": 1}},
    {"json": [1], "meta": {"values": {"-1": ["undefined"]}, "v": 1}},
    {"json": [1], "meta": {"values": {"x": ["undefined"]}, "v": 1}},
    {"json": [1], "meta": {"values": {"": ["undefined"]}, "v": 1}},
    {"json": [1], "meta": {"values": {"99999999999999999999999": ["undefined"]}, "v": 1}},
    {"json": "x", "meta": {"values": {"0": ["undefined"]}, "v": 1}},
    {"json": None, "meta": {"values": {"a": ["undefined"]}, "v": 1}},
    # values that do not fit their annotation
    {"json": "1.5", "meta": {"values": ["bigint"], "v": 1}},
    {"json": " 1", "meta": {"values": ["bigint"], "v": 1}},
    {"json": "", "meta": {"values": ["bigint"], "v": 1}},
    {"json": "9" * 5000, "meta": {"values": ["bigint"], "v": 1}},
    {"json": True, "meta": {"values": ["bigint"], "v": 1}},
    {"json": "nan", "meta": {"values": ["number"], "v": 1}},
    {"json": None, "meta": {"values": ["number"], "v": 1}},
    {"json": 1, "meta": {"values": ["regexp"], "v": 1}},
    {"json": None, "meta": {"values": ["URL"], "v": 1}},
    {"json": "boom", "meta": {"values": ["Error"], "v": 1}},
    {"json": "ab", "meta": {"values": ["set"], "v": 1}},
    {"json": {"a": 1}, "meta": {"values": ["map"], "v": 1}},
    {"json": [["a"]], "meta": {"values": ["map"], "v": 1}},
    {"json": ["a"], "meta": {"values": ["map"], "v": 1}},
    {"json": "12", "meta": {"values": [["typed-array", "Uint8Array"]], "v": 1}},
    {"json": [True], "meta": {"values": [["typed-array", "Uint8Array"]], "v": 1}},
    {"json": [1.5], "meta": {"values": [["typed-array", "BigInt64Array"]], "v": 1}},
]


@pytest.mark.parametrize("payload", BAD_PAYLOADS)
def test_bad_payloads_raise_superjson_error(payload: object) -> None:
    with pytest.raises(SuperjsonError):
        deserialize(payload)


def test_error_message_quotes_the_path_briefly() -> None:
    with pytest.raises(SuperjsonError) as caught:
        deserialize({"json": {}, "meta": {"values": {"x" * 500: ["Date"]}, "v": 1}})
    assert len(str(caught.value)) < 120


# --- serialize details -----------------------------------------------------------------------------------


def test_value_without_annotations_is_not_copied() -> None:
    output = {"id": "pi_1", "amount": 1999, "items": [{"sku": "a", "qty": 2}], "paid": True, "note": None}
    assert serialize(output)["json"] is output


def test_only_changed_containers_are_copied() -> None:
    untouched = {"k": [1, 2]}
    output = {"a": 1, "when": EPOCH, "c": "x", "untouched": untouched}
    envelope = serialize(output)
    assert envelope == {
        "json": {"a": 1, "when": EPOCH_ISO, "c": "x", "untouched": {"k": [1, 2]}},
        "meta": {"values": {"when": ["Date"]}, "v": 1},
    }
    assert envelope["json"]["untouched"] is untouched  # type: ignore[index]
    assert output["when"] is EPOCH


def test_ints_stay_numbers() -> None:
    assert (
        wire({"amount": 2**62, "flag": True, "n": 1.5})
        == b'{"json":{"amount":4611686018427387904,"flag":true,"n":1.5}}'
    )


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (
            datetime.datetime(2024, 1, 1, 2, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
            "2024-01-01T00:00:00.000Z",
        ),
        (datetime.datetime(2024, 5, 6, 7, 8, 9, 123999), "2024-05-06T07:08:09.123Z"),
        (datetime.datetime(1, 1, 1, tzinfo=datetime.UTC), "0001-01-01T00:00:00.000Z"),
        (
            datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.UTC),
            "9999-12-31T23:59:59.999Z",
        ),
    ],
)
def test_dates_are_written_as_js_does(moment: datetime.datetime, text: str) -> None:
    assert serialize(moment) == {"json": text, "meta": {"values": ["Date"], "v": 1}}


def test_tuples_frozensets_and_bytearrays() -> None:
    assert (
        wire((EPOCH, 1)) == b'{"json":["1970-01-01T00:00:00.000Z",1],"meta":{"values":{"0":["Date"]},"v":1}}'
    )
    assert wire((1, "a")) == b'{"json":[1,"a"]}'
    assert wire({"s": frozenset({EPOCH})}) == (
        b'{"json":{"s":["1970-01-01T00:00:00.000Z"]},"meta":{"values":{"s":["set",{"0":["Date"]}]},"v":1}}'
    )
    assert wire({"s": {"x"}}) == b'{"json":{"s":["x"]},"meta":{"values":{"s":["set"]},"v":1}}'
    assert (
        wire([bytearray(b"\xff")])
        == b'{"json":[[255]],"meta":{"values":{"0":[["typed-array","Uint8Array"]]},"v":1}}'
    )


def test_unsupported_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        serialize({"x": decimal.Decimal("1")})


def test_cycle_is_refused() -> None:
    cyclic: dict[str, object] = {}
    cyclic["self"] = cyclic
    with pytest.raises(SuperjsonError, match="nested"):
        serialize(cyclic)


# --- is_envelope -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"json": 1}, True),
        ({"json": None, "meta": {"values": ["undefined"], "v": 1}}, True),
        ({"json": 1, "extra": 2}, False),
        ({"json": 1, "meta": {}, "extra": 2}, False),
        ({"meta": {}}, False),
        ({}, False),
        ([["json", 1]], False),
        ("json", False),
    ],
)
def test_is_envelope(value: object, expected: bool) -> None:
    assert is_envelope(value) is expected


# --- properties ------------------------------------------------------------------------------------------

keys = st.text(alphabet="ab.\\ é0", max_size=4) | st.text(max_size=6)
moments = st.datetimes(
    min_value=datetime.datetime(2, 1, 1),
    max_value=datetime.datetime(9998, 12, 31),
    timezones=st.sampled_from([datetime.UTC, datetime.timezone(datetime.timedelta(hours=-5, minutes=-30))]),
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | moments
)
builtins_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(keys, children | st.just(UNDEFINED), max_size=4)
    ),
    max_leaves=30,
)


def without_undefined(value: object) -> object:
    if isinstance(value, dict):
        return {key: without_undefined(item) for key, item in value.items() if item is not UNDEFINED}
    if isinstance(value, list):
        return [without_undefined(item) for item in value]
    return value


@settings(database=None)
@given(builtins_values)
def test_round_trip(value: object) -> None:
    assert deserialize(json.loads(msgspec.json.encode(serialize(value)))) == without_undefined(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)
# Envelope-shaped payloads reach far deeper into the code than arbitrary JSON does.
annotation_names = st.sampled_from(
    ["undefined", "bigint", "Date", "number", "regexp", "URL", "Error", "set", "map", "bogus"]
)
compound_annotations = st.lists(
    st.sampled_from(["typed-array", "class", "custom", "symbol", "Uint8Array", "BigInt64Array", "x"])
    | st.integers(),
    max_size=3,
)
any_annotation = annotation_names | compound_annotations | json_values
paths = st.text(alphabet="01ab.\\", max_size=6)
trees = st.recursive(
    st.builds(lambda annotation: [annotation], any_annotation) | json_values,
    lambda children: (
        st.dictionaries(paths, children, max_size=3)
        | st.builds(
            lambda annotation, inner: [annotation, inner], any_annotation, st.dictionaries(paths, children)
        )
    ),
    max_leaves=8,
)
wire_scalars = st.sampled_from(
    [None, True, 0, 1, -1.5, "", "a", "10", "NaN", "-0", EPOCH_ISO, "2024-01-01T00:00:00+02:00", "x.y"]
)
wire_json = st.recursive(
    wire_scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["0", "1", "a", "b", "a.b"]), children)
    ),
    max_leaves=12,
)
envelopes = st.fixed_dictionaries(
    {"json": wire_json},
    optional={
        "meta": st.fixed_dictionaries(
            {"values": trees}, optional={"v": st.sampled_from([1, 0, None, "1", 2.5])}
        )
        | json_values
    },
)


@settings(database=None, max_examples=300)
@given(json_values | envelopes)
def test_any_json_payload_returns_or_raises_superjson_error(payload: object) -> None:
    before = copy.deepcopy(payload)
    with contextlib.suppress(SuperjsonError):
        deserialize(payload)
    assert payload == before
