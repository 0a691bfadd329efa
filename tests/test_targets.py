"""A client resolves each model string once and reuses it, without going stale."""

from __future__ import annotations

from typing import ClassVar

import pytest

import rerankit
from rerankit import AsyncClient, RerankRequest, RerankResponse, RerankResult
from rerankit.providers import Provider, ProviderContext

pytestmark = pytest.mark.anyio


class Echo(Provider):
    """Scores each document by its position, and remembers what it was given."""

    name = "echo_target"
    api_key_env: ClassVar[tuple[str, ...]] = ("ECHO_TARGET_KEY",)
    seen: ClassVar[list[tuple[str, str | None, object]]] = []

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        type(self).seen.append((type(self).__name__, ctx.api_key, ctx.extra_headers))
        scores = [float(i) for i in range(len(request.documents))]
        return RerankResponse(
            results=[RerankResult(index=i, relevance_score=s) for i, s in enumerate(scores)]
        )


class Reversed(Echo):
    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        response = await super().rerank(request, ctx)
        for result in response.results:
            result.relevance_score = -result.relevance_score
        return response


@pytest.fixture(autouse=True)
def registered() -> object:
    Echo.seen = []
    rerankit.register_provider("echo_target", Echo)
    yield
    rerankit.unregister_provider("echo_target")


async def test_a_provider_registered_again_is_used_from_the_next_call() -> None:
    async with AsyncClient() as client:
        first = await client.rerank("echo_target/m", "q", ["a", "b"])
        rerankit.register_provider("echo_target", Reversed)
        second = await client.rerank("echo_target/m", "q", ["a", "b"])
        rerankit.unregister_provider("echo_target")
        with pytest.raises(rerankit.UnknownProviderError):
            await client.rerank("echo_target/m", "q", ["a", "b"])
    assert [r.index for r in first.results] == [1, 0]
    assert [r.index for r in second.results] == [0, 1]
    assert [name for name, _, _ in Echo.seen] == ["Echo", "Reversed"]


async def test_keys_from_the_environment_are_read_on_every_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with AsyncClient() as client:
        monkeypatch.setenv("ECHO_TARGET_KEY", "first-key")
        await client.rerank("echo_target/m", "q", ["a"])
        monkeypatch.setenv("ECHO_TARGET_KEY", "second-key")
        await client.rerank("echo_target/m", "q", ["a"])
        await client.rerank("echo_target/m", "q", ["a"], api_key="call-key")
    assert [key for _, key, _ in Echo.seen] == ["first-key", "second-key", "call-key"]


async def test_client_settings_and_call_arguments_both_apply() -> None:
    settings = {"api_key": "client-key", "extra_headers": {"X-Team": "search"}}
    async with AsyncClient(providers={"echo_target": settings}) as client:
        await client.rerank("echo_target/m", "q", ["a"])
        await client.rerank("echo_target/m", "q", ["a"], extra_headers={"X-Call": "1"})
        await client.rerank("echo_target/m", "q", ["a"], api_key="call-key")
    assert Echo.seen == [
        ("Echo", "client-key", {"X-Team": "search"}),
        ("Echo", "client-key", {"X-Team": "search", "X-Call": "1"}),
        ("Echo", "call-key", {"X-Team": "search"}),
    ]
