"""The two data transformers a tRPC app can use: plain JSON and superjson.

Both decode a call's raw input and encode what goes back. Nothing on the wire names the transformer, so in `auto`
mode it is told from the input itself: superjson clients always send `{"json":…}` (even for undefined input), and
`JSON.stringify` writes that key first with no space, so a prefix check finds the candidates at no cost; the
envelope's shape confirms them (inputs.py). A plain input that is itself exactly `{"json": …[, "meta": …]}` cannot
be told apart: such an app sets GATEWAY_TRPC_TRANSFORMER.
"""

from __future__ import annotations

import datetime
from typing import Any, Final, Protocol

import msgspec

from gateway import codec
from gateway.trpc import superjson

__all__ = ["JSON", "SUPERJSON", "SUPERJSON_PREFIX", "Transformer", "looks_like_superjson"]

SUPERJSON_PREFIX: Final = b'{"json":'
"""How every superjson input starts, as `JSON.stringify` writes the envelope."""
_BUILTIN_TYPES: Final = (datetime.datetime,)
_RESULT_START: Final = b'{"result":{"data":'
_RESULT_END: Final = b"}}"
_encode: Final = codec.encode


def looks_like_superjson(raw: bytes | memoryview) -> bool:
    """True when a call's raw input is a superjson envelope as the client writes it."""
    if isinstance(raw, bytes):  # a single call's input: compared in place
        return raw.startswith(SUPERJSON_PREFIX)
    return bytes(raw[:8]) == SUPERJSON_PREFIX


class Transformer(Protocol):
    name: str
    undefined_data: bytes
    """`result` for a procedure that returns nothing (JS `undefined`)."""

    def input_value(self, raw: bytes | memoryview | msgspec.Raw) -> object:
        """Decode one call's raw input to builtins (msgspec.UNSET for undefined). Raises DecodeError/SuperjsonError."""
        ...

    def data(self, output: object, has_datetime: bool) -> bytes:
        """Encode a procedure's output as the value of `result.data`; `has_datetime` if it may hold datetimes."""
        ...

    def result(self, output: object, has_datetime: bool) -> bytes:
        """The whole success envelope of an output, `{"result":{"data":…}}` (not for an `undefined` one: see
        `undefined_data`)."""
        ...

    def error(self, shape: dict[str, object]) -> bytes:
        """Encode an error shape as the value of `error`."""
        ...

    def line(self, value: object) -> bytes:
        """Encode one whole JSONL line (superjson transforms each line as a whole)."""
        ...


class _Json:
    name = "json"
    undefined_data = b'{"result":{}}'

    def input_value(self, raw: bytes | memoryview | msgspec.Raw) -> object:
        return codec.decode_any(raw)

    def data(self, output: object, has_datetime: bool) -> bytes:
        return codec.encode_js_dates(output) if has_datetime else codec.encode(output)

    def result(self, output: object, has_datetime: bool) -> bytes:
        # One call, not `data`'s two: every successful call of every request comes here.
        return (
            _RESULT_START + (codec.encode_js_dates(output) if has_datetime else _encode(output)) + _RESULT_END
        )

    def error(self, shape: dict[str, object]) -> bytes:
        return codec.encode(shape)

    def line(self, value: object) -> bytes:
        return codec.encode_js_dates(value)


def _builtins(value: object) -> Any:
    return msgspec.to_builtins(value, builtin_types=_BUILTIN_TYPES)


class _Superjson:
    name = "superjson"
    undefined_data = _RESULT_START + codec.encode(superjson.serialize(msgspec.UNSET)) + _RESULT_END

    def input_value(self, raw: bytes | memoryview | msgspec.Raw) -> object:
        return superjson.deserialize(codec.decode_any(raw))

    def data(self, output: object, has_datetime: bool) -> bytes:
        return codec.encode(superjson.serialize(_builtins(output)))

    def result(self, output: object, has_datetime: bool) -> bytes:
        return _RESULT_START + self.data(output, has_datetime) + _RESULT_END

    def error(self, shape: dict[str, object]) -> bytes:
        return codec.encode(superjson.serialize(_builtins(shape)))

    def line(self, value: object) -> bytes:
        return codec.encode(superjson.serialize(_builtins(value)))


JSON: Final[Transformer] = _Json()
SUPERJSON: Final[Transformer] = _Superjson()
