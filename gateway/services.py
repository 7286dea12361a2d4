"""Typed slots for what procedures use beyond their input (the payment service, say), created once at start-up.

The call context carries one `Services` map, so procedures reach the application's objects without importing
aiohttp or module globals, and tests hand in their own: `ctx.services[PAYMENTS]` is typed by its key.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

__all__ = ["ServiceKey", "Services"]

T = TypeVar("T")


class ServiceKey(Generic[T]):
    """A typed key: `PAYMENTS: ServiceKey[PaymentService] = ServiceKey("payments")`."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"ServiceKey({self.name!r})"


class Services:
    """The application's services, by typed key."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[ServiceKey[Any], Any] = {}

    def __setitem__(self, key: ServiceKey[T], value: T) -> None:
        self._items[key] = value

    def __getitem__(self, key: ServiceKey[T]) -> T:
        try:
            value: T = self._items[key]
        except KeyError:
            raise LookupError(f"service {key.name!r} is not configured in this application") from None
        return value

    def __contains__(self, key: ServiceKey[Any]) -> bool:
        return key in self._items
