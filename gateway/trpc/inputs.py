"""Reading each call's input, lazily, the way @trpc/server does.

A batch carries `{"0": in0, "1": in1, …}`; a key left out means `undefined`. The dict is decoded at most once (in
`auto` mode as soon as the request arrives, to tell superjson from plain JSON), and its errors are raised only when
a procedure that takes input asks for it, so a bad input never fails a call that ignores input.
"""

from __future__ import annotations

import json
from typing import Final

import msgspec

from gateway import codec
from gateway.codec import Issue
from gateway.errors import ErrorCode, TRPCError
from gateway.registry import InputSpec
from gateway.trpc import superjson
from gateway.trpc.transformers import JSON, SUPERJSON, SUPERJSON_PREFIX, Transformer, looks_like_superjson

__all__ = ["InputReader", "validation_error"]

UNDEFINED: Final = msgspec.UNSET
_batch_decoder: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
_NOT_AN_OBJECT: Final = '"input" needs to be an object when doing a batch call'
MAX_INPUT_DEPTH: Final = 100
"""Untyped inputs (superjson payloads, `Any` procedures) nested deeper are refused: no real input comes close,
and it bounds every later walk over the value (superjson, validation, echoing it back)."""
_TOO_DEEP: Final = f"Input is nested more than {MAX_INPUT_DEPTH} levels deep"
_KEY_COUNT: Final = 256
_KEYS: Final = tuple(str(index) for index in range(_KEY_COUNT))
"""A batch's input keys as strings, made once: `str(index)` for every call of every batch costs 0.5k instructions."""


def _key(index: int) -> str:
    return _KEYS[index] if index < _KEY_COUNT else str(index)


def validation_error(issues: list[Issue]) -> TRPCError:
    """BAD_REQUEST for invalid input. Like zod, the message is the JSON list of issues; `data` adds them as a list
    with field paths and in the `zodError.flatten()` shape that create-t3-app style formatters send."""
    plain = msgspec.to_builtins(issues)
    field_errors: dict[str, list[str]] = {}
    form_errors: list[str] = []
    for issue in issues:
        if issue.path:
            field_errors.setdefault(str(issue.path[0]), []).append(issue.message)
        else:
            form_errors.append(issue.message)
    return TRPCError(
        ErrorCode.BAD_REQUEST,
        json.dumps(plain, indent=2, ensure_ascii=False),
        data={"issues": plain, "zodError": {"formErrors": form_errors, "fieldErrors": field_errors}},
    )


def _is_superjson_input(raw: bytes | memoryview) -> bool:
    """A superjson envelope: it starts as the client writes one (a cheap check that rules out almost every plain
    input), and has no keys but `json` and `meta` (so a plain input with a `json` field stays plain)."""
    if not looks_like_superjson(raw):
        return False
    try:
        return superjson.is_envelope(codec.decode_any(raw))
    except (msgspec.DecodeError, RecursionError):
        return True  # malformed either way: answered as the superjson client it looks like


class InputReader:
    """The raw input of one request (query parameter or body) and the transformer chosen for it."""

    __slots__ = ("_batch", "_batch_error", "_body_error", "_is_batch", "_raw", "transformer")
    transformer: Transformer

    def __init__(
        self,
        raw: bytes | None,
        is_batch: bool,
        mode: str,
        body_error: TRPCError | None = None,
    ) -> None:
        self._raw = raw
        self._is_batch = is_batch
        self._body_error = body_error
        self._batch: dict[str, msgspec.Raw] | None = None
        self._batch_error: TRPCError | None = None
        if mode == "json":
            self.transformer = JSON
        elif mode == "superjson":
            self.transformer = SUPERJSON
        elif not is_batch:  # `auto`, one call (most requests): its input is checked in place, no call between
            superjson_input = (
                raw is not None and raw.startswith(SUPERJSON_PREFIX) and _is_superjson_input(raw)
            )
            self.transformer = SUPERJSON if superjson_input else JSON
        elif raw is None or SUPERJSON_PREFIX not in raw:
            # `auto`, a batch none of whose inputs can be superjson: no need to find its first input now.
            self.transformer = JSON
        else:
            first = self._first_raw()
            self.transformer = SUPERJSON if first is not None and _is_superjson_input(first) else JSON

    def _first_raw(self) -> bytes | memoryview | None:
        if not self._raw:
            return None
        if not self._is_batch:
            return self._raw
        batch = self._decoded_batch()
        if not batch:
            return None
        return memoryview(next(iter(batch.values())))

    def _decoded_batch(self) -> dict[str, msgspec.Raw] | None:
        if self._batch is None and self._batch_error is None:
            if not self._raw:
                self._batch = {}
            else:
                try:
                    self._batch = _batch_decoder.decode(self._raw)
                except msgspec.ValidationError:
                    self._batch_error = TRPCError(ErrorCode.BAD_REQUEST, _NOT_AN_OBJECT)
                except msgspec.DecodeError as error:
                    self._batch_error = TRPCError(ErrorCode.BAD_REQUEST, str(error))
                except RecursionError:
                    self._batch_error = TRPCError(ErrorCode.BAD_REQUEST, _TOO_DEEP)
        return self._batch

    def _raw_for(self, index: int) -> bytes | msgspec.Raw | None:
        if self._body_error is not None:
            raise self._body_error
        if not self._is_batch:
            return self._raw or None
        batch = self._decoded_batch()
        if batch is None:
            assert self._batch_error is not None
            raise self._batch_error
        return batch.get(_key(index))  # a Raw: msgspec decodes it as it is

    def read(self, index: int, spec: InputSpec) -> object:
        """The validated input of call `index`. Raises TRPCError(BAD_REQUEST) with issues when it is not valid."""
        batch = self._batch
        raw: bytes | msgspec.Raw | None
        # Every call of every request reads here: the usual cases (a single call's input, a batch decoded without
        # error) are answered in place, the others by `_raw_for`.
        if self._body_error is not None:
            raw = self._raw_for(index)  # raises it
        elif batch is not None:
            raw = batch.get(_KEYS[index] if index < _KEY_COUNT else str(index))
        elif not self._is_batch:
            raw = self._raw or None
        else:
            raw = self._raw_for(index)
        if raw is not None and self.transformer is JSON and not spec.passthrough:
            # Fast path: straight from bytes into the typed value.
            try:
                return spec.decoder.decode(raw)
            except msgspec.ValidationError:
                pass  # decoded again below, to list the issues
            except msgspec.DecodeError as error:
                raise TRPCError(ErrorCode.BAD_REQUEST, str(error)) from None
            except RecursionError:
                raise TRPCError(ErrorCode.BAD_REQUEST, _TOO_DEEP) from None
        return self._read_slowly(raw, spec)

    def _read_slowly(self, raw: bytes | msgspec.Raw | None, spec: InputSpec) -> object:
        value: object
        try:
            if raw is None:
                value = UNDEFINED
            elif self.transformer is JSON and not spec.passthrough:
                value = codec.decode_any(raw)
            else:
                value = self.transformer.input_value(raw)
            if value is not UNDEFINED and codec.nested_deeper_than(value, MAX_INPUT_DEPTH):
                raise TRPCError(ErrorCode.BAD_REQUEST, _TOO_DEEP)
            return self._validate(value, spec)
        except (msgspec.DecodeError, superjson.SuperjsonError) as error:
            raise TRPCError(ErrorCode.BAD_REQUEST, str(error)) from None
        except RecursionError:
            raise TRPCError(ErrorCode.BAD_REQUEST, _TOO_DEEP) from None

    @staticmethod
    def _validate(value: object, spec: InputSpec) -> object:
        if spec.passthrough:
            return value
        if value is UNDEFINED:
            if spec.accepts_none:
                return None
            raise validation_error([Issue("invalid_type", [], "Required", received="undefined")])
        try:
            return msgspec.convert(value, spec.type)
        except msgspec.ValidationError:
            issues = codec.validation_issues(value, spec.type)
            raise validation_error(issues or [Issue("custom", [], "Invalid input")]) from None
