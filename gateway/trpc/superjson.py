"""The superjson wire format, for apps that set `transformer: superjson` on their tRPC client.

Such a client wraps every input it sends, and expects every output back, in an envelope
`{"json": <plain JSON>, "meta": {"values": <annotations>, "v": 1}}`. The annotations name the spots in
`json` that held JS values JSON cannot carry (Date, undefined, bigint, NaN, Set, Map, ...). This module
writes the format of npm `superjson` 2.x (`"v": 1`), and reads it as well as the 1.x format (no `"v"`,
older path escaping) that tRPC v10 apps usually send. See shared/reference/trpc-wire.md, section 7.2.

How values map (serialize: Python -> annotation; deserialize: annotation -> Python):

| Python written                   | annotation                     | Python read                          |
|----------------------------------|--------------------------------|--------------------------------------|
| `datetime` (naive taken as UTC)  | `Date`                         | aware `datetime` in UTC              |
| `UNDEFINED` (`msgspec.UNSET`)    | `undefined`                    | key removed; `None` in a list; root  |
| NaN, Infinity, -Infinity, -0.0   | `number`                       | `float`                              |
| `set`, `frozenset`               | `set`                          | `list`                               |
| `bytes`, `bytearray`             | `["typed-array","Uint8Array"]` | `list` of numbers                    |
| never (ints stay JS numbers)     | `bigint`                       | `int`                                |
| never                            | `map`                          | `dict`, or `list` of `[k, v]` pairs  |
| never                            | `regexp`, `URL`, `Error`       | `str`, `str`, `dict`, as sent        |
| never                            | `class`, `custom`, `symbol`    | the json, as sent                    |

The gateway hands `serialize` what `msgspec.to_builtins` makes of a procedure's output (datetimes kept), so sets
arrive there as lists and bytes as base64 strings: the `set` and typed-array rows serve direct callers only.
"""

from __future__ import annotations

import datetime
import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import msgspec

from gateway.codec import js_iso

__all__ = ["UNDEFINED", "SuperjsonError", "deserialize", "is_envelope", "serialize"]

UNDEFINED: Final = msgspec.UNSET
"""JS `undefined`, represented by `msgspec.UNSET` everywhere in the project."""

# `values` trees are nested only by Map/Set annotations; anything deeper than this is hostile, not real.
_MAX_TREE_DEPTH: Final = 64
# Bounds the recursive walk of outputs well below Python's recursion limit, and turns a cycle into an error.
_MAX_VALUE_DEPTH: Final = 128
_SHOWN_CHARS: Final = 40

_UTC: Final = datetime.UTC
_PLAIN_TYPES: Final = frozenset({str, int, bool, type(None)})
_NUMBER_STRINGS: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}


class SuperjsonError(ValueError):
    """A superjson payload or its `meta` is malformed, or a value cannot be written in the format."""


# An annotation tree as written in `meta.values`: a leaf `[type]` / `[type, children]`, or `{path: subtree}`.
_Tree = list[object] | dict[str, object]
# A JSON array or object that deserialize may write into.
_Container = dict[str, object] | list[object]


# --- serialize --------------------------------------------------------------------------------


def serialize(value: object) -> dict[str, object]:
    """Return the envelope `{"json": ..., "meta": {"values": ..., "v": 1}}` for `value`, ready to JSON-encode.

    `value` holds builtins as `msgspec.to_builtins(obj, builtin_types=(datetime.datetime,))` makes them, plus
    the extra types in the module table. `meta` is left out when nothing needs an annotation; then `json` is
    `value` itself, not a copy. Containers are copied only where something inside them changes.
    Raises TypeError for a type the format cannot carry, and SuperjsonError for a value nested too deeply
    (which is also how a cycle shows).
    """
    json_value, annotations = _encode(value, 0)
    if annotations is None:
        return {"json": json_value}
    return {"json": json_value, "meta": {"values": annotations, "v": 1}}


def _encode(value: object, depth: int) -> tuple[object, _Tree | None]:
    """Return `value` made JSON-safe and its annotation tree (None when it needs none).

    Invariant the callers rely on: the returned value is `value` itself whenever the tree is None.
    """
    if type(value) in _PLAIN_TYPES:
        return value, None
    if isinstance(value, dict):
        return _encode_dict(value, depth + 1)
    if isinstance(value, list | tuple):
        return _encode_items(value, depth + 1)
    return _encode_other(value, depth)


def _encode_float(number: float) -> tuple[object, _Tree | None]:
    if math.isfinite(number) and (number != 0.0 or math.copysign(1.0, number) > 0):
        return number, None
    if math.isnan(number):
        return "NaN", ["number"]
    if math.isinf(number):
        return ("Infinity" if number > 0 else "-Infinity"), ["number"]
    return "-0", ["number"]


def _encode_dict(mapping: Mapping[object, object], depth: int) -> tuple[object, _Tree | None]:
    _check_value_depth(depth)
    for index, item in enumerate(mapping.values()):
        if type(item) in _PLAIN_TYPES:
            continue
        new_item, annotation = _encode(item, depth)
        if annotation is not None:
            return _copy_dict_from(mapping, index, new_item, annotation, depth)
    return mapping, None


def _copy_dict_from(
    mapping: Mapping[object, object], index: int, new_item: object, annotation: _Tree, depth: int
) -> tuple[object, _Tree]:
    """Copy `mapping` once its item at `index` turned out to need `annotation`, and encode the rest."""
    items = iter(mapping.items())
    copy = dict(itertools.islice(items, index))
    tree: dict[str, object] = {}
    key, _ = next(items)
    copy[key] = new_item
    _add_subtree(tree, _escape_key(str(key)), annotation)
    for key, item in items:
        copy[key], item_annotation = _encode(item, depth)
        if item_annotation is not None:
            _add_subtree(tree, _escape_key(str(key)), item_annotation)
    return copy, tree


def _encode_items(items: Sequence[object], depth: int) -> tuple[object, dict[str, object] | None]:
    _check_value_depth(depth)
    for index, item in enumerate(items):
        if type(item) in _PLAIN_TYPES:
            continue
        new_item, annotation = _encode(item, depth)
        if annotation is not None:
            return _copy_items_from(items, index, new_item, annotation, depth)
    return items, None


def _copy_items_from(
    items: Sequence[object], index: int, new_item: object, annotation: _Tree, depth: int
) -> tuple[object, dict[str, object]]:
    """Copy `items` into a list once its item at `index` turned out to need `annotation`; encode the rest."""
    copy = [*items[:index], new_item]
    tree: dict[str, object] = {}
    _add_subtree(tree, str(index), annotation)
    for position in range(index + 1, len(items)):
        item, item_annotation = _encode(items[position], depth)
        copy.append(item)
        if item_annotation is not None:
            _add_subtree(tree, str(position), item_annotation)
    return copy, tree


def _encode_other(value: object, depth: int) -> tuple[object, _Tree | None]:
    """Encode everything that is not a plain scalar, float, dict, list or tuple."""
    if value is UNDEFINED:
        return None, ["undefined"]
    if isinstance(value, float):
        return _encode_float(value)
    if isinstance(value, datetime.datetime):
        return js_iso(value), ["Date"]
    if isinstance(value, str | int):
        return value, None
    if isinstance(value, set | frozenset):
        items, inner = _encode_items(list(value), depth + 1)
        return items, (["set"] if inner is None else ["set", inner])
    if isinstance(value, bytes | bytearray):
        return list(value), [["typed-array", "Uint8Array"]]
    raise TypeError(f"superjson cannot serialize a {type(value).__name__}")


def _check_value_depth(depth: int) -> None:
    if depth > _MAX_VALUE_DEPTH:
        raise SuperjsonError(f"value is nested more than {_MAX_VALUE_DEPTH} levels deep (or is cyclic)")


def _add_subtree(tree: dict[str, object], key: str, annotation: _Tree) -> None:
    """Hang a child's annotations under `key`; trees are flattened into dotted paths, as superjson does."""
    if isinstance(annotation, list):
        tree[key] = annotation
        return
    for path, subtree in annotation.items():
        tree[f"{key}.{path}"] = subtree


def _escape_key(key: str) -> str:
    if "\\" in key or "." in key:
        return key.replace("\\", "\\\\").replace(".", "\\.")
    return key


# --- deserialize ------------------------------------------------------------------------------


def is_envelope(value: object) -> bool:
    """True when `value` is a dict whose keys are `"json"` and optionally `"meta"`, and nothing else."""
    return (
        isinstance(value, dict)
        and "json" in value
        and (len(value) == 1 or (len(value) == 2 and "meta" in value))
    )


def deserialize(payload: object) -> object:
    """Return the value that `payload` (an already JSON-decoded envelope) stands for.

    Returns UNDEFINED when the root is `undefined`, and also when `payload` is not a dict with a `"json"` key,
    as real superjson does. `payload` is never modified: the containers on annotated paths are copied.
    `meta.referentialEqualities` is ignored, because the json already holds a copy at each place.
    Raises SuperjsonError, and nothing else, for any malformed payload.
    """
    if not isinstance(payload, dict) or "json" not in payload:
        return UNDEFINED
    json_value: object = payload["json"]
    meta = payload.get("meta")
    if meta is None:
        return json_value
    if not isinstance(meta, dict):
        raise SuperjsonError("meta must be an object")
    values = meta.get("values")
    if values is None:
        return json_value
    target = _Target(json_value, legacy_paths=_uses_legacy_paths(meta.get("v")))
    target.apply(values, (), 1)
    return target.root


def _uses_legacy_paths(version: object) -> bool:
    """superjson 1.x writes no `v`; its paths escape only `.`."""
    if version is None:
        return True
    if isinstance(version, bool) or not isinstance(version, int | float):
        raise SuperjsonError("meta.v must be a number")
    return version < 1


class _Target:
    """The json being annotated.

    Each container on an annotated path is copied once (then remembered), so the caller's payload stays intact
    and aliased containers in it are not changed through one another, at the cost of copying only those paths.
    """

    __slots__ = ("_copies", "legacy_paths", "root")

    def __init__(self, root: object, *, legacy_paths: bool) -> None:
        self.root = root
        self.legacy_paths = legacy_paths
        self._copies: dict[int, _Container] = {}

    def apply(self, tree: object, origin: tuple[str, ...], depth: int) -> None:
        """Apply an annotation tree found at `origin`, children first: inner values are restored first."""
        if depth > _MAX_TREE_DEPTH:
            raise SuperjsonError(f"meta.values is nested more than {_MAX_TREE_DEPTH} levels deep")
        if isinstance(tree, dict):
            self._apply_children(tree, origin, depth)
        elif isinstance(tree, list):
            annotation, children = _split_leaf(tree)
            if children is not None:
                self._apply_children(children, origin, depth)
            self._update(origin, annotation)
        else:
            raise SuperjsonError("meta.values must hold only arrays and objects")

    def _apply_children(self, children: dict[object, object], origin: tuple[str, ...], depth: int) -> None:
        for path, subtree in children.items():
            if not isinstance(path, str):
                raise SuperjsonError("meta.values paths must be strings")
            self.apply(subtree, origin + _parse_path(path, self.legacy_paths), depth + 1)

    def _update(self, path: tuple[str, ...], annotation: object) -> None:
        if not path:
            self.root = _untransform(self.root, annotation)
            return
        parent = self.root = self._writable(self.root, path)
        for segment in path[:-1]:
            parent = self._descend(parent, segment, path)
        last = path[-1]
        if isinstance(parent, dict):
            value = _untransform(parent[_key(parent, last, path)], annotation)
            if value is UNDEFINED:
                # An absent key is how an `undefined` property reads in Python.
                del parent[last]
            else:
                parent[last] = value
        else:
            index = _index(parent, last, path)
            value = _untransform(parent[index], annotation)
            parent[index] = None if value is UNDEFINED else value

    def _descend(self, parent: _Container, segment: str, path: tuple[str, ...]) -> _Container:
        """Step from `parent` (this run's own) into its child at `segment`, made this run's own too."""
        child: _Container
        if isinstance(parent, dict):
            key = _key(parent, segment, path)
            child = parent[key] = self._writable(parent[key], path)
        else:
            index = _index(parent, segment, path)
            child = parent[index] = self._writable(parent[index], path)
        return child

    def _writable(self, container: object, path: tuple[str, ...]) -> _Container:
        """Return this run's own copy of `container`, making it on first use."""
        existing = self._copies.get(id(container))
        if existing is not None and existing is container:
            return existing
        copy: _Container
        if isinstance(container, dict):
            copy = dict(container)
        elif isinstance(container, list):
            copy = list(container)
        else:
            raise _missing_path(path)
        # Holding the copy keeps its id from being reused by another object during this run.
        self._copies[id(copy)] = copy
        return copy


def _key(container: dict[str, object], segment: str, path: tuple[str, ...]) -> str:
    if segment not in container:
        raise _missing_path(path)
    return segment


def _index(container: list[object], segment: str, path: tuple[str, ...]) -> int:
    if segment.isascii() and segment.isdigit() and len(segment) <= 18 and int(segment) < len(container):
        return int(segment)
    raise _missing_path(path)


def _missing_path(path: tuple[str, ...]) -> SuperjsonError:
    return SuperjsonError(f"meta.values path {_show_path(path)} does not exist in json")


def _split_leaf(leaf: list[object]) -> tuple[object, dict[object, object] | None]:
    """Split `[annotation]` / `[annotation, {path: subtree}]` into its parts."""
    if len(leaf) == 1:
        return leaf[0], None
    if len(leaf) == 2 and isinstance(leaf[1], dict):
        return leaf[0], leaf[1]
    raise SuperjsonError("meta.values leaf must be [annotation] or [annotation, {children}]")


def _parse_path(text: str, legacy: bool) -> tuple[str, ...]:
    """Split a dotted path into keys.

    With `v` (superjson 2.x) `\\.` is a dot and `\\\\` a backslash inside a key; any other backslash is an
    error. Without it (1.x) only `\\.` is an escape and other backslashes are ordinary characters.
    """
    if "\\" not in text:
        return tuple(text.split("."))
    segments: list[str] = []
    segment: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        following = text[index + 1 : index + 2]
        if char == "\\" and following == ".":
            segment.append(".")
            index += 1
        elif char == "\\" and not legacy:
            if following != "\\":
                raise SuperjsonError(f"meta.values path {_show(text)} has an invalid escape")
            segment.append("\\")
            index += 1
        elif char == ".":
            segments.append("".join(segment))
            segment = []
        else:
            segment.append(char)
        index += 1
    segments.append("".join(segment))
    return tuple(segments)


def _untransform(value: object, annotation: object) -> object:
    """Turn the json at one spot back into the value its annotation names."""
    if isinstance(annotation, str):
        restore = _SIMPLE_RESTORERS.get(annotation)
        if restore is None:
            raise SuperjsonError(f"unknown superjson annotation {_show(annotation)}")
        return restore(value)
    if isinstance(annotation, list) and len(annotation) == 2:
        kind, name = annotation
        if isinstance(kind, str) and isinstance(name, str):
            if kind == "typed-array":
                return _restore_typed_array(value, name)
            if kind in ("class", "custom", "symbol"):
                # These need registrations shared with the client; the plain json is the best we can offer.
                return value
    raise SuperjsonError("unknown superjson annotation")


def _restore_undefined(_: object) -> object:
    return UNDEFINED


_BIGINT: Final = re.compile(r"-?[0-9]{1,4300}")


def _restore_bigint(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _BIGINT.fullmatch(value):
        return int(value)
    raise SuperjsonError("bigint value must be a string of decimal digits")


# The ISO 8601 forms JS `Date` writes (toISOString / toJSON), years beyond 9999 as `+YYYYYY` included, and
# date-only strings, which JS also reads as UTC. A time without an offset would be the sender's local time,
# which a server cannot know, so it is refused.
_ISO_DATE: Final = re.compile(
    r"(?P<year>[+-][0-9]{6}|[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"(?:T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]{1,9}))?)?"
    r"(?P<zone>Z|[+-][0-9]{2}:[0-9]{2}))?"
)


def _restore_date(value: object) -> datetime.datetime:
    match = _ISO_DATE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise SuperjsonError("Date value must be an ISO 8601 date string")
    fraction = (match["fraction"] or "0")[:6].ljust(6, "0")
    zone = _parse_zone(match["zone"])
    try:
        moment = datetime.datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"] or 0),
            int(match["minute"] or 0),
            int(match["second"] or 0),
            int(fraction),
            tzinfo=zone,
        )
        return moment.astimezone(_UTC)
    except (ValueError, OverflowError):
        raise SuperjsonError("Date value is not a valid date in years 1 to 9999") from None


def _parse_zone(zone: str | None) -> datetime.timezone:
    if zone is None or zone == "Z":
        return _UTC
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 23 or minutes > 59:
        raise SuperjsonError("Date value has an invalid UTC offset")
    offset = datetime.timedelta(hours=hours, minutes=minutes)
    return datetime.timezone(-offset if zone[0] == "-" else offset)


def _restore_number(value: object) -> float:
    if isinstance(value, str) and value in _NUMBER_STRINGS:
        return _NUMBER_STRINGS[value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise SuperjsonError("number value must be NaN, Infinity, -Infinity or -0")


def _restore_string(value: object) -> str:
    if not isinstance(value, str):
        raise SuperjsonError("regexp and URL values must be strings")
    return value


def _restore_error(value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise SuperjsonError("Error value must be an object")
    return value


def _restore_set(value: object) -> list[object]:
    if not isinstance(value, list):
        raise SuperjsonError("set value must be an array")
    return value


def _restore_map(value: object) -> dict[str, object] | list[list[object]]:
    """A Map with only string keys becomes a dict; any other key cannot be a JSON key, so pairs stay pairs."""
    if not isinstance(value, list) or not all(isinstance(entry, list) and len(entry) == 2 for entry in value):
        raise SuperjsonError("map value must be an array of [key, value] pairs")
    if all(isinstance(key, str) for key, _ in value):
        return {key: item for key, item in value}
    return [[key, item] for key, item in value]


_FLOAT_ARRAYS: Final = frozenset(
    {
        "Int8Array",
        "Uint8Array",
        "Uint8ClampedArray",
        "Int16Array",
        "Uint16Array",
        "Int32Array",
        "Uint32Array",
        "Float32Array",
        "Float64Array",
    }
)
_BIGINT_ARRAYS: Final = frozenset({"BigInt64Array", "BigUint64Array"})


def _restore_typed_array(value: object, name: str) -> list[object]:
    if not isinstance(value, list):
        raise SuperjsonError("typed-array value must be an array")
    if name in _BIGINT_ARRAYS:
        return [_restore_bigint(item) for item in value]
    if name in _FLOAT_ARRAYS:
        return [_restore_array_number(item) for item in value]
    raise SuperjsonError(f"unknown typed array {_show(name)}")


def _restore_array_number(item: object) -> object:
    if isinstance(item, int | float) and not isinstance(item, bool):
        return item
    if isinstance(item, str) and item in _NUMBER_STRINGS:
        return _NUMBER_STRINGS[item]
    raise SuperjsonError("typed-array items must be numbers")


_SIMPLE_RESTORERS: Final[dict[str, Callable[[object], object]]] = {
    "undefined": _restore_undefined,
    "bigint": _restore_bigint,
    "Date": _restore_date,
    "number": _restore_number,
    "regexp": _restore_string,
    "URL": _restore_string,
    "Error": _restore_error,
    "set": _restore_set,
    "map": _restore_map,
}


def _show(text: str) -> str:
    """Quote untrusted text for an error message, cut short."""
    if len(text) > _SHOWN_CHARS:
        text = text[:_SHOWN_CHARS] + "..."
    # repr would double every backslash, which hides how an escaped path was written.
    return f"'{text}'" if text.isprintable() else repr(text)


def _show_path(path: tuple[str, ...]) -> str:
    return _show(".".join(_escape_key(segment) for segment in path))
