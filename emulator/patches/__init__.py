# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""The patches to localstripe, one module per concern; `emulator.patch.apply_patches` applies them in order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from localstripe.resources import extra_apis

__all__ = ["replace_classmethod"]


def replace_classmethod(cls: Any, name: str, function: Callable[..., Any]) -> Any:
    """Make `function(cls, ...)` the classmethod `cls.<name>`; return the original, bound to `cls`.

    The routes of extra actions (`/confirm`, `/cancel`, `/capture`, …) were bound to the original bound methods
    when `localstripe.resources` was imported (its `extra_apis` list), so those entries are swapped too: patching
    the class alone leaves the route calling the old method. `localstripe.server` must be imported afterwards.
    """
    original = getattr(cls, name)
    original_function = getattr(original, "__func__", original)
    setattr(cls, name, classmethod(function))
    replacement = getattr(cls, name)
    for index, (method, url, func) in enumerate(extra_apis):
        if getattr(func, "__func__", None) is original_function and getattr(func, "__self__", None) is cls:
            extra_apis[index] = (method, url, replacement)
    return original
