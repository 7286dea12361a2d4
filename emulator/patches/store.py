# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""localstripe's object store, kept in memory only, and one reset that also clears the emulator's own state.

localstripe pickles its whole store to the fixed file `/tmp/localstripe.pickle` on every write (7x slower, and
shared by every instance on the machine) and reloads it at start. Tests rely on `DELETE /_config/data` (which calls
`store.clear()`) to start from nothing, so the state the patches keep (idempotency cache, domains, ephemeral keys,
pending webhook deliveries) registers here to be cleared with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from localstripe.resources import Store

__all__ = ["apply", "on_reset"]

_reset_hooks: list[Callable[[], None]] = []


def on_reset(hook: Callable[[], None]) -> None:
    """Run `hook` whenever localstripe's store is cleared."""
    _reset_hooks.append(hook)


def _no_disk(_self: Any) -> None:
    """Neither write nor read `/tmp/localstripe.pickle`."""


def _clear(self: Any) -> None:
    dict.clear(self)
    for hook in _reset_hooks:
        hook()


def apply() -> None:
    Store.dump_to_disk = _no_disk
    Store.try_load_from_disk = _no_disk
    Store.clear = _clear
