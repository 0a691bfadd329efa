from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

import rerankit
from rerankit.providers.cohere import AzureAIProvider, CohereProvider
from rerankit.testing import CohereFake, FakeServer

from .support import FAST_RETRY, clear_env, provider_env

API_KEY = "test-key-0123456789"

PROVIDER_ENV = provider_env(CohereProvider, AzureAIProvider, "RERANKIT_DISABLE_PLUGIN_AUTOLOAD")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees credentials from the machine it runs on."""
    clear_env(monkeypatch, *PROVIDER_ENV)


@pytest.fixture
def cohere_server() -> Iterator[FakeServer]:
    with FakeServer(CohereFake(API_KEY)) as server:
        yield server


@pytest.fixture
async def client(cohere_server: FakeServer) -> AsyncIterator[rerankit.AsyncClient]:
    async with rerankit.AsyncClient(
        providers={"cohere": {"api_key": API_KEY, "api_base": cohere_server.url}},
        retry=FAST_RETRY,
        timeout=5,
    ) as client:
        yield client
