"""Structured JSON logs through loguru: one object per line, `event` names what happened.

Call sites log `logger.bind(**fields).info("event_name")`. A patcher turns each record into
`{"timestamp": …, "level": …, "event": …, **fields}` once, with msgspec; every sink (stdout, the optional
rotating file) just writes that line.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
import time
import traceback
from contextvars import ContextVar
from typing import TYPE_CHECKING, Final, TextIO

import msgspec
from loguru import logger

from gateway.codec import js_iso
from gateway.redaction import scrub

if TYPE_CHECKING:
    from loguru import Record

__all__ = ["CURRENT_REQUEST_ID", "BufferedLog", "anonymized_ip", "configure_logging", "now_iso"]

_encoder: Final = msgspec.json.Encoder()

CURRENT_REQUEST_ID: Final[ContextVar[str | None]] = ContextVar("request_id", default=None)
"""The id of the request being served; every log line written while it is set names it (`requestId`).
A plain context variable costs a fraction of loguru's `contextualize`, and it flows into the calls' tasks."""
_LINE: Final = "_json_line"
_PREFORMATTED: Final = "_preformatted"
_batch_logger: Final = logger.bind(**{_PREFORMATTED: True})
_FORMAT: Final = "{extra[" + _LINE + "]}\n"


def _format(_record: Record) -> str:
    # A callable format stops loguru from appending its own traceback after our JSON line.
    return _FORMAT


def _to_json_line(record: Record) -> None:
    if record["extra"].get(_PREFORMATTED):
        record["extra"][_LINE] = ""  # a batch of lines already encoded; raw records are written as they are
        return
    line: dict[str, object] = {
        "timestamp": js_iso(record["time"]),  # the seed's `2024-01-15T10:30:00.000Z`
        "level": record["level"].name,
        "event": record["message"],
    }
    request_id = CURRENT_REQUEST_ID.get()
    if request_id is not None:
        line["requestId"] = request_id
    line.update(record["extra"])
    exception = record["exception"]
    if exception is not None and exception.value is not None:
        line["error"] = f"{type(exception.value).__name__}: {exception.value}"
        line["traceback"] = "".join(traceback.format_exception(exception.value)).rstrip()
    # The last line of defence: whatever slipped into a field or an exception's text is redacted here.
    record["extra"][_LINE] = scrub(_encoder.encode(line).decode())


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


class BufferedLog:
    """Hot-path log lines (one or more per request), handed to loguru in batches.

    A loguru call costs ~14 µs, as much as aiohttp's whole handling of a small request. Each line is still encoded
    when it happens, with its own timestamp, but the lines reach loguru's sinks (stdout, the rotating file) as one
    raw record per `max_delay` seconds or `max_lines` lines. Warnings and errors flush at once, as does shutdown,
    so what an on-call engineer greps for is never held back.
    """

    __slots__ = ("_handle", "_level", "_lines", "_max_delay", "_max_lines", "_min_level")

    def __init__(self, level: str = "INFO", max_lines: int = 256, max_delay: float = 0.05) -> None:
        self._lines: list[bytes] = []
        self._level = _INFO  # the most severe pending line: the batch goes to loguru at that level
        self._max_lines = max_lines
        self._max_delay = max_delay
        self._handle: asyncio.TimerHandle | None = None
        self._min_level = _LEVELS.get(level.upper(), 20)

    def emit(self, level: str, line: object) -> None:
        """Record one line now. `line` is encoded as it is: a struct or dict whose first fields are `timestamp`
        (from `now_iso()`), `level` (INFO, WARNING or ERROR, as given here) and `event`."""
        severity = _LEVELS[level]
        if severity < self._min_level:
            return
        lines = self._lines
        lines.append(_encoder.encode(line))
        if severity > self._level:
            self._level = severity
        if severity > _INFO or len(lines) >= self._max_lines:
            self.flush()
        elif self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self._max_delay, self.flush)

    def flush(self) -> None:
        """Hand every pending line to loguru now."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._lines:
            text = b"\n".join(self._lines).decode() + "\n"
            self._lines.clear()
            level, self._level = self._level, _INFO
            _batch_logger.opt(raw=True).log(_LEVEL_NAMES[level], text)


_LEVELS: Final = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
_INFO: Final = _LEVELS["INFO"]
_LEVEL_NAMES: Final = {number: name for name, number in _LEVELS.items()}
_MILLISECONDS: Final = [f"{ms:03d}Z" for ms in range(1000)]
_cached_second = -1
_cached_second_text = ""
_cached_ms = -1
_cached_ms_text = ""


def now_iso() -> str:
    """Now as `2024-01-15T10:30:00.000Z`, formatting the date and time once per second and the whole once per
    millisecond (every request's log line has one; under load, several requests share a millisecond)."""
    global _cached_second, _cached_second_text, _cached_ms, _cached_ms_text  # the caches
    now_ms = time.time_ns() // 1_000_000
    if now_ms != _cached_ms:
        second = now_ms // 1000
        if second != _cached_second:
            _cached_second = second
            _cached_second_text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        _cached_ms = now_ms
        _cached_ms_text = f"{_cached_second_text}{_MILLISECONDS[now_ms % 1000]}"
    return _cached_ms_text


def anonymized_ip(address: str | None) -> str | None:
    """An IP address a log line may hold (GDPR): IPv4 without its last byte (`203.0.113.0/24`), IPv6 without its
    last 80 bits (`2001:db8:1::/48`), as analytics tools anonymise them. Anything else is dropped."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # `::ffff:203.0.113.77`, as dual-stack sockets report IPv4 peers
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
