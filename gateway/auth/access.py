"""Who may call a procedure: every procedure declares one rule when it is registered.

* `PUBLIC`: anybody (the app's configuration, wallet availability).
* `USER`: a signed-in user (a valid bearer token); with `GATEWAY_GUEST_CHECKOUT`, also a guest without a token,
  who then reaches an order only with its client secret (the procedures check ownership on the data).
* `role("staff")`, `ADMIN`: a signed-in user whose token carries that role; `admin` holds every role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["ADMIN", "ADMIN_ROLE", "PUBLIC", "STAFF", "STAFF_ROLE", "USER", "Access", "role"]

ADMIN_ROLE: Final = "admin"
STAFF_ROLE: Final = "staff"


@dataclass(frozen=True, slots=True)
class Access:
    """A procedure's access rule."""

    kind: Literal["public", "user", "role"]
    role: str | None = None

    def __str__(self) -> str:
        return self.role if self.kind == "role" and self.role else self.kind


def role(name: str) -> Access:
    """Callers whose token carries role `name` (or `admin`)."""
    if not name:
        raise ValueError("a role needs a name")
    return Access("role", name)


PUBLIC: Final = Access("public")
USER: Final = Access("user")
STAFF: Final = role(STAFF_ROLE)
ADMIN: Final = role(ADMIN_ROLE)
