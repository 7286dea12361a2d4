"""Reading a tRPC HTTP request: procedure paths, batch and stream flags, content type, input source.

Everything here is a pure function of the request's method, raw path, query and headers, so the rules can be tested
exhaustively without a server. Messages match @trpc/server v11.25 byte for byte where clients or people see them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import unquote

import msgspec

from gateway.errors import ErrorCode, TRPCError

__all__ = [
    "StreamMode",
    "check_content_type",
    "parse_connection_params",
    "parse_paths",
    "stream_mode",
]

_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_JSON_MEDIA_TYPE: Final = "application/json"


class StreamMode(enum.Enum):
    """How the client wants a batch answered."""

    NONE = "none"
    JSONL = "jsonl"  # v11 httpBatchStreamLink: `trpc-accept: application/jsonl` (or `Accept`)
    V10 = "v10"  # v10 unstable_httpBatchStreamLink: `trpc-batch-mode: stream`


def _whole(code: ErrorCode, message: str) -> TRPCError:
    return TRPCError(code, message, whole_request=True)


def parse_paths(raw_path: str, is_batch: bool) -> list[str]:
    """Split the part of the URL path after the prefix into procedure paths.

    Like @trpc/server, the whole path is percent-decoded before splitting on `,` (so `a%2Cb` is a batch of two),
    the one slash after the prefix and any trailing ones are dropped (`/trpc//greet` names the path `/greet`). A malformed escape is a 400 for the whole request. Without `batch=1` the
    whole path is one procedure name, commas included.
    """
    path = raw_path.removeprefix("/").rstrip("/")
    if "%" in path:
        if _BAD_ESCAPE.search(path):
            raise _whole(ErrorCode.BAD_REQUEST, f'Invalid URL-encoding in path "{path}"')
        try:
            path = unquote(path, errors="strict")
        except UnicodeDecodeError:
            raise _whole(ErrorCode.BAD_REQUEST, f'Invalid URL-encoding in path "{path}"') from None
    return path.split(",") if is_batch else [path]


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def check_content_type(method: str, content_type: str | None) -> None:
    """Refuse bodies the server cannot read. GET is read as JSON whatever its content-type says (v10 sends one)."""
    if method == "GET":
        return
    if content_type is None:
        raise _whole(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Missing content-type header")
    if _media_type(content_type) != _JSON_MEDIA_TYPE:
        # The reference server's message really lacks the closing quote; clients only ever show it.
        raise _whole(ErrorCode.UNSUPPORTED_MEDIA_TYPE, f'Unsupported content-type "{content_type}')


def stream_mode(headers: Mapping[str, str]) -> StreamMode:
    """`trpc-accept` decides when present; else an `Accept` entry equal to `application/jsonl`; else v10's header."""
    trpc_accept = headers.get("trpc-accept")
    if trpc_accept is not None:
        return StreamMode.JSONL if trpc_accept.strip() == "application/jsonl" else StreamMode.NONE
    accept = headers.get("accept")
    if (
        accept
        and "application/jsonl" in accept
        and any(part.strip() == "application/jsonl" for part in accept.split(","))
    ):
        return StreamMode.JSONL
    if headers.get("trpc-batch-mode") == "stream":
        return StreamMode.V10
    return StreamMode.NONE


_params_decoder: Final[msgspec.json.Decoder[dict[str, str] | None]] = msgspec.json.Decoder(
    dict[str, str] | None
)


def parse_connection_params(raw: str | None) -> dict[str, str] | None:
    """The `connectionParams` query parameter: a JSON object of strings (or null), accepted on any request.
    Present but empty is not JSON, as for @trpc/server."""
    if raw is None:
        return None
    try:
        return _params_decoder.decode(raw)
    except msgspec.ValidationError:
        raise _whole(ErrorCode.PARSE_ERROR, "Invalid connection params shape") from None
    except msgspec.DecodeError:
        raise _whole(ErrorCode.PARSE_ERROR, "Not JSON-parsable query params") from None
