"""Development only: JWT_SECRET and QR_SECRET generated once per checkout when they are not set, so that the
offline demo signs tokens and QR codes with no configuration (`gateway serve` and `gateway token` share them).

They are random, kept in `data/dev-secrets.json` (mode 0600) beside the demo's SQLite file, and never used in
production, where both variables are required (gateway.settings refuses to start without them).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Final

import msgspec
from loguru import logger

from gateway.settings import Settings

__all__ = ["DEV_SECRETS_FILE", "with_development_secrets"]

DEV_SECRETS_FILE: Final = Path("data/dev-secrets.json")


def _load_or_create(path: Path) -> dict[str, str]:
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(stored, dict) and all(
            isinstance(stored.get(k), str) for k in ("jwt_secret", "qr_secret")
        ):
            return {"jwt_secret": stored["jwt_secret"], "qr_secret": stored["qr_secret"]}
    except (OSError, ValueError):
        pass
    values = {"jwt_secret": secrets.token_urlsafe(48), "qr_secret": secrets.token_urlsafe(48)}
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created private from the first byte (no window in which another user could read it), then moved in place.
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(values, file)
    os.replace(temporary, path)
    logger.bind(path=str(path)).warning("development_secrets_generated")
    return values


def with_development_secrets(settings: Settings, path: Path = DEV_SECRETS_FILE) -> Settings:
    """`settings` with generated JWT_SECRET / QR_SECRET where they are empty, outside production; unchanged
    otherwise."""
    if settings.is_production or (settings.jwt_secret and settings.qr_secret):
        return settings
    generated = _load_or_create(path)
    return msgspec.structs.replace(
        settings,
        jwt_secret=settings.jwt_secret or generated["jwt_secret"],
        qr_secret=settings.qr_secret or generated["qr_secret"],
    )
