"""The maintenance switch: while it is on, payment mutations are refused (SERVICE_UNAVAILABLE, with the operator's
message); queries, webhooks, metrics and health keep working, so orders in flight still get their outcome.

The switch lives in the store, so every replica sharing it sees the same one. Each process reads it at most once
per `CACHE_SECONDS`: a switch takes effect everywhere within about a second, and a burst of payments costs one
read a second, not one per call. Operators switch it with `gateway maintenance on|off` (gateway.ops.maintenance).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from gateway.errors import ErrorCode, TRPCError
from gateway.services import ServiceKey
from gateway.store import MAINTENANCE_OFF, AuditEntry, Maintenance, Store, StoreError

__all__ = ["CACHE_SECONDS", "DEFAULT_MESSAGE", "MAINTENANCE", "MaintenanceSwitch"]

CACHE_SECONDS: Final = 1.0
DEFAULT_MESSAGE: Final = "Payments are paused for maintenance; please try again later"


class MaintenanceSwitch:
    def __init__(
        self, store: Store, ttl: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._known: tuple[float, Maintenance] | None = None

    @property
    def last_known(self) -> Maintenance | None:
        """The switch as last read (None before the first read): for the metrics, which read nothing."""
        return self._known[1] if self._known is not None else None

    async def current(self) -> Maintenance:
        """The switch, as read from the store within the last `ttl` seconds."""
        now = self._clock()
        if self._known is not None and now - self._known[0] < self._ttl:
            return self._known[1]
        switch = await self._store.get_maintenance()
        self._known = (now, switch)
        return switch

    async def refuse_if_on(self) -> None:
        """Raise SERVICE_UNAVAILABLE (with the operator's message) while the switch is on. If the store cannot
        say, the switch is taken as off: the mutation that follows needs the store too, and fails on its own."""
        try:
            switch = await self.current()
        except StoreError:
            switch = self.last_known or MAINTENANCE_OFF
        if switch.enabled:
            raise TRPCError(ErrorCode.SERVICE_UNAVAILABLE, switch.message or DEFAULT_MESSAGE)

    async def switch(self, enabled: bool, message: str, actor: str) -> Maintenance:
        """Turn it on or off (audited as `maintenance.on|off` by `actor`); this process sees it at once."""
        audit = AuditEntry(
            action="maintenance.on" if enabled else "maintenance.off",
            actor=actor,
            request_id=None,
            order_id=None,
            details={"message": message} if enabled else {},
        )
        switched = await self._store.set_maintenance(enabled, message if enabled else "", audit)
        self._known = (self._clock(), switched)
        return switched


MAINTENANCE: Final = ServiceKey[MaintenanceSwitch]("maintenance")
