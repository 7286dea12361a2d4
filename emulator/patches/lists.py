# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""Lists newest first, as Stripe pages every list.

localstripe lists most objects in creation order (only refunds, invoices and balance transactions are sorted), so
`customers.list(email=…).data[0]` was the oldest customer, where Stripe gives the newest.
"""

from __future__ import annotations

from typing import Any

from localstripe.resources import StripeObject

from emulator.patches import replace_classmethod

__all__ = ["apply"]


def apply() -> None:
    def _api_list_all(cls: Any, url: str, *args: Any, **params: Any) -> Any:
        listed = original_list.__func__(cls, url, *args, **params)
        listed._list.reverse()  # the store keeps creation order; explicit sorts in subclasses run after this
        return listed

    original_list = replace_classmethod(StripeObject, "_api_list_all", _api_list_all)
