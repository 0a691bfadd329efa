"""Routers, serverless hosts and self-hosted servers over real HTTP against fakes of their APIs."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from rerankit import AsyncClient, ConfigurationError
from rerankit.providers.rerank_hosts import (
    CloudflareProvider,
    LlamaCppProvider,
    LocalAIProvider,
    NovitaProvider,
    OpenRouterProvider,
    SGLangProvider,
    TensorRTLLMProvider,
    XinferenceProvider,
)
from rerankit.testing import (
    CloudflareFake,
    FakeServer,
    LlamaCppFake,
    LocalAIFake,
    NovitaFake,
    OpenRouterFake,
    ProviderContract,
    SGLangFake,
    TensorRTLLMFake,
    XinferenceFake,
)

from .support import (
    DOCS,
    FAST_RETRY,
    QUERY,
    clean_env,
    expected_order,
    provider_url,
)

pytestmark = pytest.mark.anyio

KEY = "contract-key"
_clean_provider_env = clean_env(
    CloudflareProvider,
    LlamaCppProvider,
    LocalAIProvider,
    NovitaProvider,
    OpenRouterProvider,
    SGLangProvider,
    TensorRTLLMProvider,
    XinferenceProvider,
)


# --- the contract ------------------------------------------------------------------------------


class TestOpenRouterContract(ProviderContract):
    model = "openrouter/cohere/rerank-v3.5"
    fake_class = OpenRouterFake

    def settings(self, server: FakeServer) -> dict[str, Any]:
        return {"api_key": self.api_key, "api_base": server.url + "/api/v1"}


class TestNovitaContract(ProviderContract):
    model = "novita/baai/bge-reranker-v2-m3"
    fake_class = NovitaFake


class TestCloudflareContract(ProviderContract):
    model = "cloudflare/@cf/baai/bge-reranker-base"
    fake_class = CloudflareFake

    def settings(self, server: FakeServer) -> dict[str, Any]:
        return {
            "api_key": self.api_key,
            "api_base": server.url + "/client/v4",
            "options": {"account_id": CloudflareFake.account},
        }


class TestXinferenceContract(ProviderContract):
    model = "xinference/bge-reranker-v2-m3"
    fake_class = XinferenceFake


class TestXinferenceWithoutKeyContract(TestXinferenceContract):
    api_key: ClassVar[str | None] = None


class TestLlamaCppContract(ProviderContract):
    model = "llamacpp/bge-reranker-v2-m3"
    fake_class = LlamaCppFake
    api_key: ClassVar[str | None] = None


class TestLocalAIContract(ProviderContract):
    model = "localai/bge-reranker-v2-m3"
    fake_class = LocalAIFake


class TestSGLangContract(ProviderContract):
    model = "sglang/BAAI/bge-reranker-v2-m3"
    fake_class = SGLangFake
    api_key: ClassVar[str | None] = None


class TestTensorRTLLMContract(ProviderContract):
    model = "tensorrt_llm/Qwen/Qwen3-Reranker-0.6B"
    fake_class = TensorRTLLMFake
    api_key: ClassVar[str | None] = None


# --- wire details ------------------------------------------------------------------------------


@pytest.fixture
def served() -> Any:
    servers: list[FakeServer] = []

    def start(fake: Any) -> FakeServer:
        server = FakeServer(fake)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


async def _call(name: str, server: FakeServer, model: str, suffix: str = "", **kwargs: Any) -> Any:
    providers = {name: {"api_key": KEY, "api_base": server.url + suffix}}
    async with AsyncClient(providers=providers, retry=FAST_RETRY, timeout=10) as client:
        return await client.rerank(model, QUERY, DOCS, **kwargs)


async def test_openrouter_sends_the_routed_model_and_keeps_upstream_and_cost(served: Any) -> None:
    server = served(OpenRouterFake(KEY))
    response = await _call(
        "openrouter", server, "openrouter/cohere/rerank-v3.5", top_n=2, routing={"order": ["c"]}
    )
    (sent,) = server.received
    assert sent.path == "/api/v1/rerank"
    assert sent.json() == {
        "model": "cohere/rerank-v3.5",
        "query": QUERY,
        "documents": DOCS,
        "top_n": 2,
        "provider": {"order": ["c"]},
    }
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:2]
    assert response.usage.search_units == 1
    assert response.usage.total_tokens is not None
    assert response.provider_meta == {"provider": "Cohere", "cost": 0.002}


def test_openrouter_and_novita_join_their_routes() -> None:
    assert provider_url(OpenRouterProvider, "cohere/rerank-v3.5", None) == (
        "https://openrouter.ai/api/v1/rerank"
    )
    assert provider_url(OpenRouterProvider, "m", "https://openrouter.ai") == (
        "https://openrouter.ai/api/v1/rerank"
    )
    assert provider_url(NovitaProvider, "m", None) == "https://api.novita.ai/openai/v1/rerank"
    assert provider_url(NovitaProvider, "m", "https://api.novita.ai") == (
        "https://api.novita.ai/openai/v1/rerank"
    )
    assert provider_url(XinferenceProvider, "m", "http://h:9997") == "http://h:9997/v1/rerank"
    assert provider_url(LlamaCppProvider, "m", "http://h:8080/v1") == "http://h:8080/v1/rerank"


async def test_novita_usage_counts_prompt_tokens(served: Any) -> None:
    server = served(NovitaFake(KEY))
    response = await _call("novita", server, "novita/baai/bge-reranker-v2-m3")
    assert server.received[0].json() == {
        "model": "baai/bge-reranker-v2-m3",
        "query": QUERY,
        "documents": DOCS,
    }
    assert response.usage.input_tokens == response.usage.total_tokens is not None


async def test_cloudflare_url_body_and_unordered_answer(
    served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", CloudflareFake.account)
    server = served(CloudflareFake(KEY))
    response = await _call(
        "cloudflare", server, "cloudflare/@cf/baai/bge-reranker-base", "/client/v4"
    )
    (sent,) = server.received
    assert sent.path == "/client/v4/accounts/acct-123/ai/run/@cf/baai/bge-reranker-base"
    assert sent.json() == {"query": QUERY, "contexts": [{"text": d} for d in DOCS]}
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)
    assert response.usage.input_tokens is not None
    assert response.score_kind == "logit"
    assert response.cost == pytest.approx(response.usage.input_tokens * 0.0031 / 1e6)


async def test_cloudflare_needs_an_account_and_non_empty_documents(served: Any) -> None:
    server = served(CloudflareFake(KEY))
    with pytest.raises(ConfigurationError, match="CLOUDFLARE_ACCOUNT_ID"):
        await _call("cloudflare", server, "cloudflare/@cf/baai/bge-reranker-base", "/client/v4")
    providers = {"cloudflare": {"api_key": KEY, "api_base": server.url + "/client/v4"}}
    async with AsyncClient(providers=providers, retry=FAST_RETRY) as client:
        with pytest.raises(ConfigurationError, match="documents"):
            await client.rerank(
                "cloudflare/@cf/baai/bge-reranker-base", QUERY, ["a", " "], account_id="acct-123"
            )
    assert server.received == []


async def test_xinference_return_len_gives_input_tokens(served: Any) -> None:
    server = served(XinferenceFake(KEY))
    response = await _call("xinference", server, "xinference/bge", return_len=True)
    body = server.received[0].json()
    assert body["return_documents"] is False
    assert body["return_len"] is True
    assert response.usage.input_tokens is not None


async def test_sglang_sends_instruct_and_reads_the_bare_array(served: Any) -> None:
    server = served(SGLangFake(KEY))
    response = await _call("sglang", server, "sglang/Qwen/Qwen3-Reranker-8B", instruction="law")
    body = server.received[0].json()
    assert body["instruct"] == "law"
    assert body["return_documents"] is False
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)


async def test_localai_answer_in_input_order_is_sorted_and_cut(served: Any) -> None:
    server = served(LocalAIFake(KEY))
    response = await _call("localai", server, "localai/bge", top_n=2)
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:2]
    assert "return_documents" not in server.received[0].json()


async def test_llamacpp_sends_no_document_flag(served: Any) -> None:
    server = served(LlamaCppFake(None))
    providers = {"llamacpp": {"api_base": server.url}}
    async with AsyncClient(providers=providers, retry=FAST_RETRY) as client:
        response = await client.rerank("llamacpp/bge", QUERY, DOCS)
    assert server.received[0].json() == {"model": "bge", "query": QUERY, "documents": DOCS}
    assert response.usage.input_tokens is not None
    assert response.score_kind == "logit"
