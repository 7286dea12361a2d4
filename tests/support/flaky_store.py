"""`FlakyStore`: a real SqliteStore with one injected fault, for the crash windows no test can provoke from outside
(SQLite on a local file does not fail on demand between a Stripe call and the next statement)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.store import Store, StoreUnavailable
from gateway.store.sqlite import SqliteStore

__all__ = ["FaultTiming", "FlakyStore"]

FaultTiming = Literal["before", "after"]
"""`before`: the write fails and is not applied. `after`: the write is committed, then the caller gets the error."""


@dataclass
class _Fault:
    method: str
    on_call: int
    timing: FaultTiming
    calls: int = 0


@dataclass
class FlakyStore:
    """A real SqliteStore with one injected fault: `inject_fault("update_order", on_call=N)` makes the Nth call of
    `update_order` from now on raise StoreUnavailable, once. Every other call, and every later one, is the real
    store's.

    Methods are delegated through `__getattr__` rather than listed, so the wrapper never lags behind `Store` while it
    grows (refund requests, webhooks); mypy accepts it as a `Store` through that `Any`, and `inject_fault` refuses
    a name that is not a `Store` method."""

    inner: SqliteStore
    faults_raised: list[str] = field(default_factory=list, init=False)
    """`method#call` of each fault raised, so a test can check its fault fired where it meant."""
    _fault: _Fault | None = field(default=None, init=False)

    def inject_fault(self, method: str, *, on_call: int = 1, timing: FaultTiming = "before") -> None:
        if not callable(getattr(Store, method, None)):
            raise ValueError(f"Store has no method {method!r}")
        self._fault = _Fault(method, on_call, timing)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and friends probe these before __init__ ran
            raise AttributeError(name)
        attribute = getattr(self.inner, name)
        fault = self._fault
        if fault is None or name != fault.method:
            return attribute

        async def flaky(*args: Any, **kwargs: Any) -> Any:
            fault.calls += 1
            if fault.calls != fault.on_call:
                return await attribute(*args, **kwargs)
            self._fault = None  # once
            if fault.timing == "after":
                await attribute(*args, **kwargs)
            self.faults_raised.append(f"{name}#{fault.calls}")
            raise StoreUnavailable(f"injected fault: {name} call #{fault.calls} ({fault.timing} the write)")

        return flaky
