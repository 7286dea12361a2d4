"""The one place that owns msgspec encoders and turns validation failures into field-level issues.

msgspec stops at the first validation error. A person fixing a form wants every problem at once, so on failure
(the slow path only) the input is re-checked field by field to collect all issues. Issues are shaped like zod's
(`code`, `path`, `message`, ...), because the app's error formatters were written against a zod backend.
"""

from __future__ import annotations

import datetime
import re
import types
import typing
from typing import Any, Final

import msgspec

__all__ = [
    "Issue",
    "decode_any",
    "encode",
    "encode_js_dates",
    "js_iso",
    "may_contain_datetime",
    "nested_deeper_than",
    "strip_annotated",
    "validation_issues",
]

_encoder: Final = msgspec.json.Encoder()
_any_decoder: Final = msgspec.json.Decoder()

encode = _encoder.encode
"""Encode a value (structs, builtins, datetimes) to JSON bytes."""

decode_any = _any_decoder.decode
"""Decode JSON bytes to builtins; raises msgspec.DecodeError on malformed JSON."""


class Issue(msgspec.Struct, omit_defaults=True):
    """One validation problem, in zod's shape: `path` lists the keys and indexes from the input's root."""

    code: str
    path: list[str | int]
    message: str
    expected: str | None = None
    received: str | None = None


def epoch_iso(seconds: float) -> str:
    """Unix seconds as `js_iso` writes them."""
    return js_iso(datetime.datetime.fromtimestamp(seconds, datetime.UTC))


def js_iso(moment: datetime.datetime) -> str:
    """A datetime as JavaScript's `Date.toISOString()` writes it: UTC, milliseconds, `Z` (naive counts as UTC).

    A UTC offset can push a valid Python datetime one day outside Python's years 1-9999 (0001-01-01T00:00+01:00
    is year 0 in UTC); JavaScript writes those as `0000-…` and `+010000-…`, and so do we.
    """
    offset = moment.utcoffset()
    try:
        utc = moment - offset if offset else moment
    except OverflowError:
        assert offset is not None
        return _beyond_python_years(moment.replace(tzinfo=None), offset)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}."
        f"{utc.microsecond // 1000:03d}Z"
    )


def _beyond_python_years(local: datetime.datetime, offset: datetime.timedelta) -> str:
    """UTC of `local - offset` when it falls on 0000-12-31 or 10000-01-01 (offsets are under a day)."""
    seconds = local.hour * 3600 + local.minute * 60 + local.second - int(offset.total_seconds())
    day, seconds = ("0000-12-31", seconds + 86400) if local.year == 1 else ("+010000-01-01", seconds - 86400)
    hours, rest = divmod(seconds, 3600)
    return f"{day}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}.{local.microsecond // 1000:03d}Z"


def _dates_to_js(value: object) -> object:
    if isinstance(value, datetime.datetime):
        return js_iso(value)
    if isinstance(value, dict):
        return {key: _dates_to_js(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_dates_to_js(item) for item in value]
    return value


def nested_deeper_than(value: object, limit: int) -> bool:
    """Whether a decoded JSON value has containers nested more than `limit` levels (checked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def encode_js_dates(value: object) -> bytes:
    """Encode like `encode`, but write datetimes exactly as a JavaScript server would (`…T10:30:00.000Z`).

    msgspec has no option for the datetime format, so values that may hold datetimes go through builtins first;
    `may_contain_datetime` tells, once per procedure, whether that detour is needed.
    """
    return _encoder.encode(_dates_to_js(msgspec.to_builtins(value, builtin_types=(datetime.datetime,))))


def may_contain_datetime(type_: Any, _seen: set[int] | None = None) -> bool:
    """Whether a value of this type can hold a datetime anywhere inside (Any and object count as yes)."""
    seen = _seen if _seen is not None else set()
    if id(type_) in seen:
        return False
    seen.add(id(type_))
    if type_ is Any or type_ is object or type_ is datetime.datetime:
        return True
    if isinstance(type_, type) and issubclass(type_, msgspec.Struct):
        return any(may_contain_datetime(field.type, seen) for field in msgspec.structs.fields(type_))
    origin = typing.get_origin(type_)
    if origin is typing.Annotated:
        return may_contain_datetime(typing.get_args(type_)[0], seen)
    if origin is not None or isinstance(type_, types.UnionType):
        return any(may_contain_datetime(arg, seen) for arg in typing.get_args(type_))
    return False


# msgspec's messages look like "Expected `int`, got `str` - at `$.items[1].x`".
_AT: Final = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_PATH_PART: Final = re.compile(r"\.(?P<key>[^.\[]+)|\[(?P<index>\d+)\]|\[(?P<quoted>[^\]]*)\]")
_EXPECTED_GOT: Final = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<received>[^`]+)`$")
_MISSING: Final = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_UNKNOWN: Final = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`$")
_BOUND: Final = re.compile(r"^Expected `(?P<type>[^`]+)`(?: of length)? (?P<op>[<>]=?) (?P<bound>\S+)$")


# Type names as the app's JavaScript (and zod's messages) call them.
_JS_TYPES: Final = {
    "int": "number",
    "float": "number",
    "str": "string",
    "bool": "boolean",
    "datetime": "date",
}


def _js_type(name: str) -> str:
    return _JS_TYPES.get(name, name)


def _split_path(text: str) -> list[str | int]:
    parts: list[str | int] = []
    for match in _PATH_PART.finditer(text):
        if match["index"] is not None:
            parts.append(int(match["index"]))
        else:
            parts.append(match["key"] if match["key"] is not None else match["quoted"])
    return parts


def _issue_from_message(message: str, prefix: list[str | int]) -> Issue:
    """Turn one msgspec validation message into an issue whose path starts at `prefix`."""
    path = list(prefix)
    at = _AT.search(message)
    if at:
        path.extend(_split_path(at["path"]))
        message = message[: at.start()]
    if m := _MISSING.match(message):
        return Issue("invalid_type", [*path, m["field"]], "Required", received="undefined")
    if m := _UNKNOWN.match(message):
        return Issue("unrecognized_keys", path, f"Unrecognized key: {m['field']!r}")
    if m := _EXPECTED_GOT.match(message):
        if (m["expected"], m["received"]) == ("int", "float"):
            expected, received = "integer", "float"  # zod's words for 1.5 where an integer is wanted
        else:
            expected, received = _js_type(m["expected"]), _js_type(m["received"])
        return Issue("invalid_type", path, f"Expected {expected}, received {received}", expected, received)
    if m := _BOUND.match(message):
        code = "too_small" if m["op"].startswith(">") else "too_big"
        return Issue(code, path, message.replace(f"`{m['type']}`", _js_type(m["type"])))
    return Issue("custom", path, message.replace("`", ""))


def _struct_fields(type_: Any) -> tuple[msgspec.structs.FieldInfo, ...] | None:
    if isinstance(type_, type) and issubclass(type_, msgspec.Struct):
        return msgspec.structs.fields(type_)
    return None


def strip_annotated(type_: Any) -> Any:
    """`Annotated[X, ...]` -> X (constraints are msgspec's business; the shape is ours)."""
    while typing.get_origin(type_) is typing.Annotated:
        type_ = typing.get_args(type_)[0]
    return type_


def _unwrap(type_: Any, value: object) -> Any:
    """The type whose parts to look inside for `value`: without `Annotated`, and `X | None` is X when the value is
    not null. (Constraints are checked afterwards against the declared type as a whole.)"""
    bare = strip_annotated(type_)
    if typing.get_origin(bare) in (typing.Union, types.UnionType) and value is not None:
        members = [arg for arg in typing.get_args(bare) if arg is not type(None)]
        if len(members) == 1:
            return strip_annotated(members[0])
    return bare


def validation_issues(value: object, type_: Any, prefix: list[str | int] | None = None) -> list[Issue]:
    """Every problem with `value` as a `type_`, each with its field path. Empty when `value` is valid.

    Structs are checked field by field, lists item by item and dicts key by key (recursively) so that all problems
    are found, not only the first one msgspec stops at.
    """
    path = prefix or []
    declared = type_
    type_ = _unwrap(type_, value)
    fields = _struct_fields(type_)
    issues: list[Issue] = []
    if fields is not None and isinstance(value, dict):
        for field in fields:
            if field.encode_name in value:
                issues.extend(
                    validation_issues(value[field.encode_name], field.type, [*path, field.encode_name])
                )
            elif field.required:
                issues.append(
                    Issue("invalid_type", [*path, field.encode_name], "Required", received="undefined")
                )
    elif typing.get_origin(type_) is list and isinstance(value, list):
        (item_type,) = typing.get_args(type_) or (Any,)
        for index, item in enumerate(value):
            issues.extend(validation_issues(item, item_type, [*path, index]))
    elif typing.get_origin(type_) is dict and isinstance(value, dict):
        # A record: a bad key or a bad value is reported at that key, as zod does (msgspec says only `...`).
        key_type, item_type = typing.get_args(type_) or (Any, Any)
        for key, item in value.items():
            at = [*path, key]
            issues.extend(validation_issues(key, key_type, at) or validation_issues(item, item_type, at))
    if issues:
        return issues
    # Item-wise fine (or not a struct/list), yet the whole may still fail: unknown fields, constraints on the
    # container itself, __post_init__ checks, or a plain type mismatch.
    try:
        msgspec.convert(value, declared)
    except msgspec.ValidationError as error:
        return [_issue_from_message(str(error), path)]
    return []
