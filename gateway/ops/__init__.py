"""The operators' commands of the seed's runbook, one module each: `gateway check-payments`, `gateway smoke`,
`gateway refund`, `gateway maintenance`. Each module has `add_command(commands)`, which `gateway.cli` calls to
register its sub-command (and the function that runs it, as `run`)."""

from __future__ import annotations
