# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""The patch layer over localstripe 1.15.10, applied before `localstripe.server` is imported.

Pinned exactly (pyproject's `emulator` extra) because it reaches into localstripe's internals. The order matters:
`localstripe.server` binds the routes of extra actions at import time, so every patch runs before that import.
"""

from __future__ import annotations

import sys

import localstripe

from emulator.errors import patch_errors
from emulator.patches import cards, lists, payment_intents, refunds, store, webhooks

__all__ = ["LOCALSTRIPE_VERSION", "apply_patches"]

LOCALSTRIPE_VERSION = "1.15.10"

_applied = False


def apply_patches(*, api_version: str) -> None:
    """Patch localstripe in this process, once; `api_version` is what the emitted events say they use."""
    global _applied
    if _applied:
        return
    if "localstripe.server" in sys.modules:
        raise RuntimeError(
            "patch localstripe before importing localstripe.server: its routes are bound at import"
        )
    if localstripe.__version__ != LOCALSTRIPE_VERSION:
        raise RuntimeError(
            f"the emulator patches localstripe {LOCALSTRIPE_VERSION}, not {localstripe.__version__}"
        )
    store.apply()
    patch_errors()
    webhooks.apply(api_version)
    payment_intents.apply()
    cards.apply()
    refunds.apply()
    lists.apply()
    _applied = True
