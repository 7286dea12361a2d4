"""Development only: JWT_SECRET and QR_SECRET generated once per checkout when they are not set, so that the
offline demo signs tokens and QR codes with no configuration (`gateway serve` and `gateway token` share them).

They are random, kept in `data/dev-secrets.json` (mode 0600) beside the demo's SQLite file, and never used in
production, where both variables are required (gateway.settings refuses to start without them).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Final

import msgspec
from loguru import logger

from gateway.settings import MIN_APP_SECRET_LENGTH, Settings

__all__ = ["DEV_SECRETS_FILE", "with_development_secrets"]

DEV_SECRETS_FILE: Final = Path("data/dev-secrets.json")


_NAMES: Final = ("jwt_secret", "qr_secret")


def _load(path: Path) -> dict[str, str] | None:
    """The stored secrets, if the file holds usable ones (32+ characters each)."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict):
        return None
    values = {name: stored.get(name) for name in _NAMES}
    if not all(isinstance(value, str) and len(value) >= MIN_APP_SECRET_LENGTH for value in values.values()):
        return None
    return {name: str(value) for name, value in values.items()}


def _load_or_create(path: Path) -> dict[str, str]:
    found = _load(path)
    if found is not None:
        return found
    values = {name: secrets.token_urlsafe(48) for name in _NAMES}
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp: a new file of our own (O_EXCL), mode 0600 from the first byte. It is then linked in place only if no
    # file is there yet, so that two processes starting together (`serve` and `token`) end up with the same pair.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".dev-secrets-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(values, file)
        try:
            os.link(temporary, path)
        except FileExistsError:
            found = _load(path)
            if found is not None:
                return found  # another process was first: use its pair
            os.replace(temporary, path)  # an unusable file (hand-edited, truncated): replaced
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
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
