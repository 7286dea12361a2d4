"""Responses sent together: a connection's small writes wait for the end of the event loop's current pass.

Under load the event loop runs many requests' handlers in one pass. Written at once, each response is its own
`send`, and when the peer reading them (the reverse proxy, or the load generator) runs on another CPU of the same
machine and has gone idle between two of them, each `send` also wakes it: on a virtual machine a cross-CPU
wake-up is an inter-processor interrupt, which costs the sender several microseconds in the kernel. Measured on
the 2-core benchmark machine (2026-12-03, `bench/README.md`): 14 µs of the gateway's 91 µs per query went to
those wake-ups. Held until the pass ends, a pass's responses leave back to back, one per connection as before,
and the peer wakes once for all of them: 22-34 % more req/s (relative to the bare aiohttp handler measured in the
same runs) and a lower p99 on every benchmark scenario.

What a response gives up is the rest of its pass (the other handlers that were ready at the same time): nothing
when the gateway is idle, a fraction of the queueing it saves when it is busy.

The rules that keep it correct:
- a connection's bytes leave in the order they were written, whether held or not;
- a write larger than `HELD_BYTES_LIMIT`, or one that would take the held bytes over it, sends what is held
  first and then goes straight to the transport: a large or streamed body is neither held nor kept out of the
  transport's flow control;
- closing (and `write_eof`) sends what is held first, so a `Connection: close` answer is not lost; `abort`
  drops it, as it drops the transport's own buffer;
- a client's half-close (its FIN) makes asyncio close the transport, after which it ignores writes: the
  connection handler sends what is held first (`HeadTimeoutHandler.eof_received`), so the close waits for it;
- what is held at the end of the pass is handed to the transport whatever its state: asyncio sends it, or
  ignores it if the connection is closed or lost, as it would any late write;
- one connection whose write fails at the end of the pass is aborted and reported to the loop's exception
  handler; the other connections' answers still leave;
- a file is never sent with the kernel's `sendfile` (which would overtake the held bytes): asyncio's
  `loop.sendfile` finds no support on this transport and raises `NotImplementedError`, and aiohttp's
  `FileResponse` then writes the file through the transport in chunks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Final, NoReturn

__all__ = ["HELD_BYTES_LIMIT", "CoalescingTransport", "WriteCoalescer"]

HELD_BYTES_LIMIT: Final = 64 * 1024
"""The most a connection holds back: asyncio's own default high-water mark, the point where it would pause a
writer anyway. The gateway's answers are far smaller; larger bodies go straight out."""

_Data = bytes | bytearray | memoryview


class WriteCoalescer:
    """One per event loop: the connections holding writes, sent by one callback at the end of the pass."""

    __slots__ = ("_holding", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._holding: list[CoalescingTransport] = []

    def wrap(self, transport: asyncio.Transport) -> CoalescingTransport:
        """`transport`, with its small writes held until the end of the pass."""
        return CoalescingTransport(transport, self)

    def hold(self, transport: CoalescingTransport) -> None:
        """`transport` holds a first write since the last flush."""
        if not self._holding:
            # Scheduled now, it runs in the loop's next pass, after every callback already ready in this one.
            self._loop.call_soon(self.flush)
        self._holding.append(transport)

    def flush(self) -> None:
        holding, self._holding = self._holding, []
        for transport in holding:
            try:
                transport.send_held()
            except Exception as error:  # one broken connection must not keep the others' answers back
                transport.abort()
                self._loop.call_exception_handler(
                    {
                        "message": "a held write failed; connection aborted",
                        "exception": error,
                        "transport": transport,
                    }
                )


class CoalescingTransport(asyncio.Transport):
    """A connection's transport whose small writes are held by a `WriteCoalescer` until the end of the pass.

    Everything but writing and closing goes to the wrapped transport unchanged."""

    __slots__ = ("_coalescer", "_held", "_held_bytes", "_transport")

    def __init__(self, transport: asyncio.Transport, coalescer: WriteCoalescer) -> None:
        super().__init__()
        self._transport = transport
        self._coalescer = coalescer
        self._held: list[_Data] = []
        self._held_bytes = 0

    def write(self, data: _Data) -> None:
        size = len(data)
        if not size:
            return
        if self._held_bytes + size > HELD_BYTES_LIMIT:
            self.send_held()
            self._transport.write(data)
            return
        if not self._held:
            self._coalescer.hold(self)
        # Bytes are immutable; a buffer the writer may reuse once `write` returns is copied, as asyncio does.
        self._held.append(data if type(data) is bytes else bytes(data))
        self._held_bytes += size

    def writelines(self, list_of_data: Iterable[_Data]) -> None:
        self.write(b"".join(list_of_data))

    def send_held(self) -> None:
        """Send what is held now (the coalescer's flush, or before a write or close that must follow it)."""
        held = self._held
        if not held:
            return
        self._held = []
        self._held_bytes = 0
        self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.send_held()
        self._transport.close()

    def write_eof(self) -> None:
        self.send_held()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = []
        self._held_bytes = 0
        self._transport.abort()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._held_bytes

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    @property
    def _sendfile_compatible(self) -> NoReturn:
        """What `loop.sendfile` reads to choose how to send a file (asyncio's private protocol with its transports).
        Native sendfile would put the file on the socket ahead of held bytes, and asyncio's fallback wants a
        transport of its own classes: neither. `NotImplementedError` is what aiohttp's `FileResponse` answers by
        writing the file itself, through `write`."""
        raise NotImplementedError("sendfile: write through the transport instead")
