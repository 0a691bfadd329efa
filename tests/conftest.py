from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

import rerankit
from rerankit import RetryPolicy
from rerankit.testing import CohereFake, FakeServer

API_KEY = "test-key-0123456789"

PROVIDER_ENV = (
    "COHERE_API_KEY",
    "CO_API_KEY",
    "COHERE_API_BASE",
    "AZURE_AI_API_KEY",
    "AZURE_AI_API_BASE",
    "RERANKIT_DISABLE_PLUGIN_AUTOLOAD",
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees credentials from the machine it runs on."""
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cohere_server() -> Iterator[FakeServer]:
    with FakeServer(CohereFake(API_KEY)) as server:
        yield server


FAST_RETRY = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)


@pytest.fixture
async def client(cohere_server: FakeServer) -> AsyncIterator[rerankit.AsyncClient]:
    async with rerankit.AsyncClient(
        providers={"cohere": {"api_key": API_KEY, "api_base": cohere_server.url}},
        retry=FAST_RETRY,
        timeout=5,
    ) as client:
        yield client
