"""Structured JSON logs through loguru: one object per line, `event` names what happened.

Call sites log `logger.bind(**fields).info("event_name")`. A patcher turns each record into
`{"timestamp": …, "level": …, "event": …, **fields}` once, with msgspec; every sink (stdout, the optional
rotating file) just writes that line.
"""

from __future__ import annotations

import sys
import traceback
from typing import TYPE_CHECKING, Final, TextIO

import msgspec
from loguru import logger

from gateway.codec import js_iso

if TYPE_CHECKING:
    from loguru import Record

__all__ = ["configure_logging"]

_encoder: Final = msgspec.json.Encoder()
_LINE: Final = "_json_line"
_FORMAT: Final = "{extra[" + _LINE + "]}\n"


def _format(_record: Record) -> str:
    # A callable format stops loguru from appending its own traceback after our JSON line.
    return _FORMAT


def _to_json_line(record: Record) -> None:
    line: dict[str, object] = {
        "timestamp": js_iso(record["time"]),  # the seed's `2024-01-15T10:30:00.000Z`
        "level": record["level"].name,
        "event": record["message"],
    }
    line.update(record["extra"])
    exception = record["exception"]
    if exception is not None and exception.value is not None:
        line["error"] = f"{type(exception.value).__name__}: {exception.value}"
        line["traceback"] = "".join(traceback.format_exception(exception.value)).rstrip()
    record["extra"][_LINE] = _encoder.encode(line).decode()


def configure_logging(level: str = "INFO", log_file: str = "", stream: TextIO | None = None) -> None:
    """Send JSON lines to stdout (and to a file rotated at 50 MB, 10 kept, if asked)."""
    logger.remove()
    logger.configure(patcher=_to_json_line)
    logger.add(stream or sys.stdout, level=level.upper(), format=_format, backtrace=False, diagnose=False)
    if log_file:
        logger.add(
            log_file,
            level=level.upper(),
            format=_format,
            rotation="50 MB",
            retention=10,
            backtrace=False,
            diagnose=False,
        )
