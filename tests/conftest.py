from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from gateway.logs import configure_logging
from gateway.settings import Settings
from tests.support.fixture_router import fixture_router
from tests.support.server import RunningGateway, running_gateway

pytest_plugins = ["tests.support.stripe_emulator"]


@pytest.fixture(autouse=True, scope="session")
def json_logs() -> None:
    """Logs as in production (JSON lines on stdout), so pytest shows them per test on failure."""
    configure_logging("DEBUG")


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[RunningGateway]:
    """The gateway serving the conformance router on a real port."""
    async with running_gateway(settings, fixture_router()) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
