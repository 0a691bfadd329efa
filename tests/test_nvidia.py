"""NVIDIA NIM reranking (retrieval and ranking routes) over real HTTP against a fake NIM."""

from __future__ import annotations

from typing import Any

import pytest

import rerankit
from rerankit import (
    AsyncClient,
    ConfigurationError,
    ResponseValidationError,
    UnsupportedParameterError,
)
from rerankit.providers.nvidia import NvidiaNIMProvider, body_model, path_model
from rerankit.testing import FakeServer, ProviderContract, Reply, overlap_score
from rerankit.testing._vendors import NvidiaNIMFake, fake_logit

from .support import (
    DOCS,
    EMULATED,
    QUERY,
    UNSUPPORTED,
    assert_emulated,
    clean_env,
    client_fixture,
    expected_order,
    fake_fixture,
    post,
    provider_url,
    server_fixture,
)

pytestmark = pytest.mark.anyio

KEY = "nvapi-0123456789"
MODEL = "nvidia_nim/nvidia/llama-3.2-nv-rerankqa-1b-v2"
RANKING = "nvidia_nim/ranking/nvidia/llama-3.2-nv-rerankqa-1b-v2"

_clean_provider_env = clean_env(NvidiaNIMProvider)
fake = fake_fixture(lambda: NvidiaNIMFake(KEY))
server = server_fixture()
client = client_fixture(lambda s: {"nvidia_nim": {"api_key": KEY, "api_base": s.url}})


class TestRetrievalRouteContract(ProviderContract):
    model = MODEL
    fake_class = NvidiaNIMFake


class TestRankingRouteSelfHostedContract(ProviderContract):
    model = RANKING
    api_key = None
    fake_class = NvidiaNIMFake


async def test_retrieval_route_writes_underscores_in_path_dots_in_body(
    client: AsyncClient, server: FakeServer
) -> None:
    response = await client.rerank(MODEL, QUERY, DOCS, top_n=2, truncate="END")
    (sent,) = server.received
    assert sent.path == "/v1/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json() == {
        "model": "nvidia/llama-3.2-nv-rerankqa-1b-v2",
        "query": {"text": QUERY},
        "passages": [{"text": d} for d in DOCS],
        "truncate": "END",
    }
    best = expected_order(QUERY, DOCS)
    assert [r.index for r in response.results] == best[:2]
    assert response.results[0].relevance_score == fake_logit(overlap_score(QUERY, DOCS[best[0]]))
    assert response.score_kind == "logit"
    assert response.usage.total_tokens is not None
    assert response.usage.input_tokens is None
    assert [r.document for r in response.results] == [{"text": DOCS[i]} for i in best[:2]]


async def test_underscore_spelling_from_the_caller_is_accepted(
    client: AsyncClient, server: FakeServer
) -> None:
    await client.rerank("nvidia_nim/nvidia/llama-3_2-nv-rerankqa-1b-v2", QUERY, DOCS)
    sent = server.received[-1]
    assert sent.path == "/v1/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking"
    assert sent.json()["model"] == "nvidia/llama-3.2-nv-rerankqa-1b-v2"


async def test_ranking_route_strips_prefix_and_sends_no_top_k(server: FakeServer) -> None:
    async with AsyncClient(providers={"nvidia_nim": {"api_base": f"{server.url}/v1"}}) as client:
        with pytest.raises(rerankit.AuthenticationError):
            await client.rerank(RANKING, QUERY, DOCS, top_n=1, max_retries=0)
    server.handler.api_key = None  # type: ignore[attr-defined]
    async with AsyncClient(providers={"nvidia_nim": {"api_base": f"{server.url}/v1"}}) as client:
        response = await client.rerank(RANKING, QUERY, DOCS, top_n=1)
    sent = server.received[-1]
    assert sent.path == "/v1/ranking"
    assert "authorization" not in sent.headers
    assert sent.json() == {
        "model": "nvidia/llama-3.2-nv-rerankqa-1b-v2",
        "query": {"text": QUERY},
        "passages": [{"text": d} for d in DOCS],
    }
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:1]


async def test_dicts_are_rendered_into_passage_text(
    client: AsyncClient, server: FakeServer
) -> None:
    records = [{"title": "Billing", "body": "Invoices"}, {"title": "Reset", "body": "settings"}]
    response = await client.rerank(MODEL, QUERY, records, rank_fields=["title", "body"])
    assert server.received[-1].json()["passages"] == [
        {"text": "title: Billing\nbody: Invoices"},
        {"text": "title: Reset\nbody: settings"},
    ]
    assert [r.document for r in response.results] == [records[1], records[0]]


@pytest.mark.parametrize("parameter", UNSUPPORTED)
async def test_unsupported_parameters_raise_before_sending(
    client: AsyncClient, server: FakeServer, parameter: dict[str, Any]
) -> None:
    with pytest.raises(UnsupportedParameterError) as info:
        await client.rerank(MODEL, QUERY, DOCS, **parameter)
    assert info.value.provider == "nvidia_nim"
    assert server.received == []


@pytest.mark.parametrize("parameter", EMULATED)
async def test_token_limits_and_chunking_are_emulated(
    client: AsyncClient, server: FakeServer, parameter: dict[str, Any]
) -> None:
    await assert_emulated(client, server, MODEL, parameter)


def url(base: str | None, model: str = "nvidia/llama-3.2-nv-rerankqa-1b-v2", key: str = KEY) -> str:
    return provider_url(NvidiaNIMProvider, model, base, api_key=key or None)


def test_url_join_rules() -> None:
    hosted = "https://ai.api.nvidia.com/v1/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking"
    assert url(None) == hosted
    assert url("https://ai.api.nvidia.com") == hosted
    assert url("https://ai.api.nvidia.com/v1/") == hosted
    # LiteLLM's NVIDIA_NIM_API_BASE usually names the chat host, which serves no reranking.
    assert url("https://integrate.api.nvidia.com/v1") == hosted
    full = "https://ai.api.nvidia.com/v1/retrieval/nvidia/nv-rerankqa-mistral-4b-v3/reranking"
    assert url(full) == full
    ranking = "ranking/nvidia/llama-3.2-nv-rerankqa-1b-v2"
    assert url(None, ranking) == "https://ai.api.nvidia.com/v1/ranking"
    assert url("http://nim:8000/v1", ranking, "") == "http://nim:8000/v1/ranking"
    assert url("http://nim:8000/v1/ranking", ranking, "") == "http://nim:8000/v1/ranking"
    assert url("http://nim:8000", "nvidia/nv-rerankqa-mistral-4b-v3", "") == (
        "http://nim:8000/v1/retrieval/nvidia/nv-rerankqa-mistral-4b-v3/reranking"
    )


def test_hosted_api_needs_a_key_self_hosted_does_not() -> None:
    with pytest.raises(ConfigurationError, match="NVIDIA_NIM_API_KEY or NVIDIA_API_KEY"):
        url(None, key="")
    with pytest.raises(ConfigurationError, match="ai.api.nvidia.com"):
        url("https://integrate.api.nvidia.com/v1", key="")
    assert url("http://localhost:8000", key="").startswith("http://localhost:8000/v1/")
    assert not NvidiaNIMProvider.api_key_required


async def test_missing_hosted_key_raises_before_any_request() -> None:
    with pytest.raises(ConfigurationError, match="NVIDIA_NIM_API_KEY"):
        await rerankit.arerank(MODEL, QUERY, DOCS)


async def test_env_key_order_and_base(monkeypatch: pytest.MonkeyPatch, server: FakeServer) -> None:
    monkeypatch.setenv("NVIDIA_NIM_API_BASE", server.url)
    monkeypatch.setenv("NVIDIA_API_KEY", KEY)
    await rerankit.arerank(MODEL, QUERY, DOCS)
    monkeypatch.setenv("NVIDIA_NIM_API_KEY", "nvapi-first-in-order")
    with pytest.raises(rerankit.AuthenticationError):
        await rerankit.arerank(MODEL, QUERY, DOCS, max_retries=0)
    assert [r.headers["authorization"] for r in server.received] == [
        f"Bearer {KEY}",
        "Bearer nvapi-first-in-order",
    ]


async def test_usage_unknown_when_not_reported(client: AsyncClient, server: FakeServer) -> None:
    server.handler.usage = False  # type: ignore[attr-defined]
    response = await client.rerank(MODEL, QUERY, DOCS)
    assert response.usage == rerankit.Usage()


@pytest.mark.parametrize(
    "body",
    [
        {"results": [{"index": 0, "relevance_score": 0.5}]},
        {"rankings": [{"index": 0}]},
        {"rankings": [{"logit": 1.5}]},
        {"rankings": [{"index": 0, "logit": 1.0}, {"index": 0, "logit": 0.5}]},
    ],
)
async def test_bad_answers_are_response_validation_errors(
    client: AsyncClient, server: FakeServer, body: dict[str, Any]
) -> None:
    server.fail(Reply(body=body))
    with pytest.raises(ResponseValidationError) as info:
        await client.rerank(MODEL, QUERY, DOCS)
    assert info.value.provider == "nvidia_nim"


def test_model_spelling_and_capabilities() -> None:
    assert body_model("nvidia/llama-3_2-nv-rerankqa-1b-v2") == "nvidia/llama-3.2-nv-rerankqa-1b-v2"
    assert body_model("ranking/nvidia/llama-3.2-nv-rerankqa-1b-v2") == (
        "nvidia/llama-3.2-nv-rerankqa-1b-v2"
    )
    assert body_model("vendor/my_model-1") == "vendor/my_model-1"
    assert path_model("nvidia/llama-3.2-nv-rerankqa-1b-v2") == "nvidia/llama-3_2-nv-rerankqa-1b-v2"
    provider = NvidiaNIMProvider()
    for spelling in (
        "nvidia/llama-3.2-nv-rerankqa-1b-v2",
        "nvidia/llama-3_2-nv-rerankqa-1b-v2",
        "ranking/nvidia/llama-3.2-nv-rerankqa-1b-v2",
    ):
        assert provider.capabilities(spelling).max_pair_tokens == 8_192
    assert provider.capabilities("nvidia/nv-rerankqa-mistral-4b-v3").max_pair_tokens == 512
    assert provider.capabilities("nvidia/anything").score_kind == "logit"
    assert provider.capabilities("nvidia/anything").parameters == frozenset()


PASSAGES = {"query": {"text": "q"}, "passages": [{"text": "a"}]}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/ranking", {"model": "nvidia/m-1.2", **PASSAGES, "top_k": 1}, 422),
        ("/v1/ranking", {"model": "nvidia/m-1_2", **PASSAGES}, 422),
        ("/v1/retrieval/nvidia/m-1.2/reranking", {"model": "nvidia/m-1.2", **PASSAGES}, 422),
        ("/v1/retrieval/nvidia/m-1_2/reranking", {"model": "nvidia/m-2.2", **PASSAGES}, 422),
        ("/v1/ranking", {"model": "m", "query": "q", "passages": [{"text": "a"}]}, 422),
        ("/v1/ranking", {"model": "m", "query": {"text": "q"}, "passages": ["a"]}, 422),
        ("/v1/ranking", {"model": "m", **PASSAGES, "truncate": "START"}, 422),
        ("/v1/rerank", {"model": "m", **PASSAGES}, 404),
    ],
)
def test_fake_rejects_what_nim_rejects(path: str, body: Any, status: int) -> None:
    assert NvidiaNIMFake()(post(path, body)).status == status


def test_llama_nemotron_rerankers_have_their_documented_windows() -> None:
    provider = NvidiaNIMProvider()
    for model in (
        "nvidia/llama-nemotron-rerank-1b-v2",
        "nvidia/llama-nemotron-rerank-500m-v2",
        "ranking/nvidia/llama-nemotron-rerank-vl-1b-v2",
    ):
        caps = provider.capabilities(model)
        assert (caps.max_pair_tokens, caps.score_kind) == (8_192, "logit")
    assert provider.capabilities("nvidia/Nemotron-3.5-Rerank-8B-BF16").max_pair_tokens == 10_240
