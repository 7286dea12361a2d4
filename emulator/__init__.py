# SPDX-License-Identifier: GPL-3.0-or-later
# Test/demo-only Stripe emulator that patches localstripe (GPL-3.0-or-later); not shipped, no gateway module imports it.
"""A local Stripe emulator for tests and the offline demo: localstripe, patched to answer like Stripe test mode.

Run it as its own process: `python -m emulator --port 0` (see `emulator/README.md`). Nothing in `gateway/`,
`procedures/` or `schemas/` imports this package, and it is not part of the distribution.
"""

__all__: list[str] = []
