"""The cohere-compatible family over real HTTP against fakes that check each request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import rerankit
from rerankit import (
    AsyncClient,
    ConfigurationError,
    ResponseValidationError,
    UnsupportedParameterError,
)
from rerankit.providers._rest import RestProvider
from rerankit.providers.cohere_compatible import (
    CohereCompatibleProvider,
    FireworksAIProvider,
    HostedVLLMProvider,
    InfinityProvider,
    JinaAIProvider,
    LiteLLMProxyProvider,
    SiliconFlowProvider,
    TogetherAIProvider,
)
from rerankit.testing import FakeServer, ProviderContract, Reply
from rerankit.testing._cohere_compatible import (
    CohereCompatibleFake,
    CohereShapedFake,
    FireworksFake,
    InfinityFake,
    JinaFake,
    LiteLLMProxyFake,
    SiliconFlowFake,
    TogetherFake,
    VLLMFake,
)

from .support import (
    DOCS,
    EMULATED,
    QUERY,
    RECORDS,
    RENDERED,
    assert_emulated,
    clean_env,
    expected_order,
    last_body,
    provider_url,
    rerank,
)

pytestmark = pytest.mark.anyio

KEY = "sk-test-0123456789"
PROVIDERS: list[type[RestProvider]] = [
    CohereCompatibleProvider,
    LiteLLMProxyProvider,
    TogetherAIProvider,
    JinaAIProvider,
    InfinityProvider,
    HostedVLLMProvider,
    FireworksAIProvider,
    SiliconFlowProvider,
]

_clean_provider_env = clean_env(*PROVIDERS)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[FakeServer] = []

    def start(fake: CohereShapedFake) -> FakeServer:
        server = FakeServer(fake)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def url_of(cls: type[RestProvider], model: str, base: str | None) -> str:
    """The URL the provider builds for ``base`` (``None``: its default), without a request."""
    return provider_url(cls, model, base if base is not None else cls.default_api_base)


# --- contracts ------------------------------------------------------------------------------


class TestCohereCompatibleContract(ProviderContract):
    model = "cohere_compatible/BAAI/bge-reranker-v2-m3"
    fake_class = CohereCompatibleFake


class TestCohereCompatibleKeylessContract(ProviderContract):
    model = "cohere_compatible/rerank"
    api_key = None

    def fake(self) -> CohereCompatibleFake:
        return CohereCompatibleFake(None, results_key="", score_key="score")


class TestLiteLLMProxyContract(ProviderContract):
    model = "litellm_proxy/my-rerank"
    fake_class = LiteLLMProxyFake


class TestTogetherContract(ProviderContract):
    model = "together_ai/Salesforce/Llama-Rank-V1"
    fake_class = TogetherFake

    def settings(self, server: FakeServer) -> dict[str, Any]:
        return {"api_key": self.api_key, "api_base": f"{server.url}/v1"}


class TestJinaContract(ProviderContract):
    model = "jina_ai/jina-reranker-v2-base-multilingual"
    fake_class = JinaFake


class TestInfinityContract(ProviderContract):
    model = "infinity/mixedbread-ai/mxbai-rerank-xsmall-v1"
    api_key = None
    fake_class = InfinityFake


class TestHostedVLLMContract(ProviderContract):
    model = "hosted_vllm/BAAI/bge-reranker-v2-m3"
    api_key = None
    fake_class = VLLMFake

    def settings(self, server: FakeServer) -> dict[str, Any]:
        return {"api_base": f"{server.url}/v1"}


class TestFireworksContract(ProviderContract):
    model = "fireworks_ai/qwen3-reranker-8b"
    fake_class = FireworksFake


class TestSiliconFlowContract(ProviderContract):
    model = "siliconflow/BAAI/bge-reranker-v2-m3"
    fake_class = SiliconFlowFake


# --- cohere_compatible ----------------------------------------------------------------------


async def test_cohere_compatible_sends_the_documented_request(serve: Any) -> None:
    server = serve(CohereCompatibleFake(None))
    response = await rerank("cohere_compatible/bge", api_base=f"{server.url}/v1", top_n=2)
    request = server.received[-1]
    assert request.path == "/v1/rerank"
    assert "authorization" not in request.headers
    assert request.json() == {
        "model": "bge",
        "query": QUERY,
        "documents": DOCS,
        "top_n": 2,
        "return_documents": False,
    }
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:2]
    assert [r.document for r in response.results] == [
        {"text": DOCS[i]} for i in expected_order(QUERY, DOCS)[:2]
    ]
    assert response.id == "fake-1"
    assert response.score_kind == "unknown"
    tokens = 3 * len(DOCS) + sum(len(d.replace(":", "").replace(".", "").split()) for d in DOCS)
    assert response.usage.input_tokens == response.usage.total_tokens == tokens
    assert response.usage.search_units is None


async def test_cohere_compatible_key_and_base_from_env(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(CohereCompatibleFake(KEY))
    with pytest.raises(ConfigurationError, match="COHERE_COMPATIBLE_API_BASE"):
        await rerank("cohere_compatible/m")
    monkeypatch.setenv("COHERE_COMPATIBLE_API_BASE", server.url)
    monkeypatch.setenv("COHERE_COMPATIBLE_API_KEY", KEY)
    monkeypatch.setenv("COHERE_API_KEY", "not-this-one")
    await rerank("cohere_compatible/m")
    assert server.received[-1].headers["authorization"] == f"Bearer {KEY}"
    assert len(server.received) == 1


@pytest.mark.parametrize("results_key", ["results", "data", ""])
@pytest.mark.parametrize("score_key", ["relevance_score", "score"])
async def test_cohere_compatible_parses_leniently(
    serve: Any, results_key: str, score_key: str
) -> None:
    server = serve(CohereCompatibleFake(None, results_key=results_key, score_key=score_key))
    response = await rerank("cohere_compatible/m", api_base=server.url, top_n=3)
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:3]
    if results_key == "":
        assert response.usage == rerankit.Usage()
        assert response.id is None


async def test_cohere_compatible_forwards_optional_parameters_and_extra_body(serve: Any) -> None:
    server = serve(CohereCompatibleFake(None))
    await rerank(
        "cohere_compatible/m",
        api_base=server.url,
        instruction="Rank support answers",
        max_tokens_per_doc=256,
        max_chunks_per_doc=4,
        extra_body={"truncate": "END"},
    )
    body = last_body(server)
    assert body["instruction"] == "Rank support answers"
    assert body["max_tokens_per_doc"] == 256
    assert body["max_chunks_per_doc"] == 4
    assert body["truncate"] == "END"
    with pytest.raises(ConfigurationError, match="unknown argument 'truncate'"):
        await rerank("cohere_compatible/m", api_base=server.url, truncate="END")


async def test_cohere_compatible_renders_dicts(serve: Any) -> None:
    server = serve(CohereCompatibleFake(None))
    response = await rerank(
        "cohere_compatible/m", RECORDS, api_base=server.url, rank_fields=["title", "body"]
    )
    body = last_body(server)
    assert body["documents"] == RENDERED
    assert "rank_fields" not in body
    assert [r.document for r in response.results] == [RECORDS[1], RECORDS[0]]


async def test_cohere_compatible_usage_from_meta(serve: Any) -> None:
    server = serve(CohereCompatibleFake(None))
    server.fail(
        Reply(
            body={
                "id": "abc",
                "results": [{"index": 0, "relevance_score": 0.2}],
                "meta": {"billed_units": {"search_units": 2}, "tokens": {"input_tokens": 40}},
            }
        )
    )
    response = await rerank("cohere_compatible/m", api_base=server.url)
    assert response.usage == rerankit.Usage(search_units=2, input_tokens=40)
    assert response.id == "abc"


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        ({"results": [{"relevance_score": 0.5}]}, r"without index.*relevance_score"),
        ({"results": [{"index": 0}]}, "without relevance_score or score"),
        ({"object": "list"}, "without a result list"),
        ([{"index": 0, "relevance_score": "high"}], "cannot read"),
        ({"results": [{"index": 9, "relevance_score": 0.1}]}, "out of range"),
    ],
)
async def test_cohere_compatible_bad_answers_raise(serve: Any, answer: Any, match: str) -> None:
    server = serve(CohereCompatibleFake(None))
    server.fail(Reply(body=answer))
    with pytest.raises(ResponseValidationError, match=match) as info:
        await rerank("cohere_compatible/m", api_base=server.url)
    assert info.value.provider == "cohere_compatible"


# --- litellm_proxy --------------------------------------------------------------------------


async def test_litellm_proxy_forwards_every_parameter_and_reports_meta_usage(serve: Any) -> None:
    server = serve(LiteLLMProxyFake(KEY))
    response = await rerank(
        "litellm_proxy/my-rerank",
        api_base=server.url,
        api_key=KEY,
        top_n=2,
        instruction="Prefer how-to answers",
        max_tokens_per_doc=512,
        max_chunks_per_doc=3,
    )
    request = server.received[-1]
    assert request.path == "/v1/rerank"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.json() == {
        "model": "my-rerank",
        "query": QUERY,
        "documents": DOCS,
        "top_n": 2,
        "return_documents": False,
        "instruction": "Prefer how-to answers",
        "max_tokens_per_doc": 512,
        "max_chunks_per_doc": 3,
    }
    assert response.usage.search_units == 1
    assert response.usage.total_tokens == response.usage.input_tokens
    assert response.usage.input_tokens is not None
    assert response.id == "fake-1"
    assert response.score_kind == "unknown"


async def test_litellm_proxy_sends_dicts_with_rank_fields(serve: Any) -> None:
    server = serve(LiteLLMProxyFake(KEY))
    response = await rerank(
        "litellm_proxy/m", RECORDS, api_base=server.url, api_key=KEY, rank_fields=["title"]
    )
    body = last_body(server)
    assert body["documents"] == RECORDS
    assert body["rank_fields"] == ["title"]
    assert response.results[0].document == RECORDS[1]


@pytest.mark.parametrize("route", ["/rerank", "/v1/rerank", "/v2/rerank"])
async def test_litellm_proxy_base_ending_in_a_route_is_used_as_is(serve: Any, route: str) -> None:
    server = serve(LiteLLMProxyFake(KEY))
    await rerank("litellm_proxy/m", api_base=server.url + route, api_key=KEY)
    assert server.received[-1].path == route


def test_litellm_proxy_join_rule() -> None:
    assert (
        url_of(LiteLLMProxyProvider, "m", "http://proxy:4000/v1") == "http://proxy:4000/v1/rerank"
    )
    assert url_of(LiteLLMProxyProvider, "m", "http://proxy/lm") == "http://proxy/lm/v1/rerank"


async def test_litellm_proxy_env_and_no_cohere_fallback(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(LiteLLMProxyFake(KEY))
    monkeypatch.setenv("LITELLM_PROXY_API_BASE", server.url)
    monkeypatch.setenv("COHERE_API_KEY", KEY)
    with pytest.raises(ConfigurationError, match="LITELLM_PROXY_API_KEY"):
        await rerank("litellm_proxy/m")
    monkeypatch.setenv("LITELLM_PROXY_API_KEY", KEY)
    await rerank("litellm_proxy/m")
    monkeypatch.delenv("LITELLM_PROXY_API_BASE")
    with pytest.raises(ConfigurationError, match="LITELLM_PROXY_API_BASE"):
        await rerank("litellm_proxy/m")
    assert len(server.received) == 1


# --- together_ai ----------------------------------------------------------------------------


async def test_together_sends_the_documented_request(serve: Any) -> None:
    server = serve(TogetherFake(KEY))
    response = await rerank(
        "together_ai/Salesforce/Llama-Rank-V1", api_base=f"{server.url}/v1", api_key=KEY, top_n=3
    )
    request = server.received[-1]
    assert request.path == "/v1/rerank"
    assert request.json() == {
        "model": "Salesforce/Llama-Rank-V1",
        "query": QUERY,
        "documents": DOCS,
        "top_n": 3,
        "return_documents": False,
    }
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:3]
    assert response.id == "fake-1"
    assert response.usage.input_tokens == response.usage.total_tokens
    assert response.usage.input_tokens is not None
    assert response.usage.search_units is None


async def test_together_sends_dicts_natively_with_rank_fields(serve: Any) -> None:
    server = serve(TogetherFake(KEY))
    response = await rerank(
        "together_ai/m",
        RECORDS,
        api_base=f"{server.url}/v1",
        api_key=KEY,
        rank_fields=["title", "body"],
    )
    body = last_body(server)
    assert body["documents"] == RECORDS
    assert body["rank_fields"] == ["title", "body"]
    assert [r.document for r in response.results] == [RECORDS[1], RECORDS[0]]
    assert TogetherAIProvider().capabilities("m").structured_documents


@pytest.mark.parametrize("parameter", EMULATED)
async def test_together_emulates_token_limits_and_chunking(
    serve: Any, parameter: dict[str, Any]
) -> None:
    server = serve(TogetherFake(KEY))
    async with AsyncClient(
        providers={"together_ai": {"api_key": KEY, "api_base": f"{server.url}/v1"}}
    ) as client:
        await assert_emulated(client, server, "together_ai/m", parameter)


@pytest.mark.parametrize("parameter", [{"instruction": "be strict"}])
async def test_together_refuses_unsupported_parameters(
    serve: Any, parameter: dict[str, Any]
) -> None:
    server = serve(TogetherFake(KEY))
    base = f"{server.url}/v1"
    with pytest.raises(UnsupportedParameterError) as info:
        await rerank("together_ai/m", api_base=base, api_key=KEY, **parameter)
    assert info.value.parameter == next(iter(parameter))
    assert server.received == []
    with pytest.warns(rerankit.RerankitWarning, match=next(iter(parameter))):
        await rerank("together_ai/m", api_base=base, api_key=KEY, drop_params=True, **parameter)
    assert next(iter(parameter)) not in last_body(server)


async def test_together_key_env_order(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(TogetherFake(KEY))
    monkeypatch.setenv("TOGETHER_AI_API_BASE", f"{server.url}/v1")
    monkeypatch.setenv("TOGETHER_AI_TOKEN", KEY)
    await rerank("together_ai/m")
    monkeypatch.setenv("TOGETHERAI_API_KEY", "third")
    monkeypatch.setenv("TOGETHER_AI_API_KEY", "second")
    monkeypatch.setenv("TOGETHER_API_KEY", "first")
    with pytest.raises(rerankit.AuthenticationError):
        await rerank("together_ai/m")
    assert [r.headers["authorization"] for r in server.received] == [
        f"Bearer {KEY}",
        "Bearer first",
    ]


# --- jina_ai --------------------------------------------------------------------------------


async def test_jina_sends_return_documents_false_and_reads_total_tokens(serve: Any) -> None:
    server = serve(JinaFake(KEY))
    response = await rerank(
        "jina_ai/jina-reranker-v2-base-multilingual", api_base=server.url, api_key=KEY, top_n=2
    )
    request = server.received[-1]
    assert request.path == "/v1/rerank"
    assert request.json() == {
        "model": "jina-reranker-v2-base-multilingual",
        "query": QUERY,
        "documents": DOCS,
        "top_n": 2,
        "return_documents": False,
    }
    assert response.usage.total_tokens is not None
    assert response.usage.input_tokens is None
    assert response.id is None
    assert [r.document for r in response.results] == [
        {"text": DOCS[i]} for i in expected_order(QUERY, DOCS)[:2]
    ]


async def test_jina_renders_dicts_and_refuses_unsupported(serve: Any) -> None:
    server = serve(JinaFake(KEY))
    await rerank(
        "jina_ai/m", RECORDS, api_base=server.url, api_key=KEY, rank_fields=["title", "body"]
    )
    assert last_body(server)["documents"] == RENDERED
    with pytest.raises(UnsupportedParameterError, match="instruction"):
        await rerank("jina_ai/m", api_base=server.url, api_key=KEY, instruction="x")
    assert len(server.received) == 1
    for parameter in EMULATED:
        response = await rerank("jina_ai/m", api_base=server.url, api_key=KEY, **parameter)
        assert not set(parameter) & set(last_body(server))
        assert len(response.results) == len(DOCS)


def test_jina_reranker_v3_is_listwise() -> None:
    provider = JinaAIProvider()
    assert provider.capabilities("jina-reranker-v3").listwise
    assert not provider.capabilities("jina-reranker-v2-base-multilingual").listwise
    assert not provider.capabilities("some-new-model").listwise


@pytest.mark.parametrize("variable", ["JINA_AI_API_KEY", "JINA_AI_TOKEN", "JINA_API_KEY"])
async def test_jina_reads_each_key_variable(
    serve: Any, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    server = serve(JinaFake(KEY))
    monkeypatch.setenv("JINA_AI_API_BASE", server.url)
    monkeypatch.setenv(variable, KEY)
    await rerank("jina_ai/m")
    assert server.received[-1].headers["authorization"] == f"Bearer {KEY}"


async def test_jina_key_order_and_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert JinaAIProvider.api_key_env == ("JINA_AI_API_KEY", "JINA_AI_TOKEN", "JINA_API_KEY")
    with pytest.raises(
        ConfigurationError, match="JINA_AI_API_KEY or JINA_AI_TOKEN or JINA_API_KEY"
    ):
        await rerank("jina_ai/m")


# --- infinity -------------------------------------------------------------------------------


async def test_infinity_keyless_probability_by_default(serve: Any) -> None:
    server = serve(InfinityFake(None))
    response = await rerank("infinity/mxbai", api_base=server.url)
    request = server.received[-1]
    assert request.path == "/rerank"
    assert "authorization" not in request.headers
    assert request.json() == {
        "model": "mxbai",
        "query": QUERY,
        "documents": DOCS,
        "return_documents": False,
    }
    assert response.score_kind == "probability"
    assert response.id == "fake-1"
    assert response.usage.input_tokens == response.usage.total_tokens


async def test_infinity_raw_scores_are_logits(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(InfinityFake(KEY))
    monkeypatch.setenv("INFINITY_API_BASE", server.url)
    monkeypatch.setenv("INFINITY_API_KEY", KEY)
    response = await rerank("infinity/mxbai", raw_scores=True)
    assert last_body(server)["raw_scores"] is True
    assert server.received[-1].headers["authorization"] == f"Bearer {KEY}"
    assert response.score_kind == "logit"
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)
    assert response.results[-1].relevance_score < 0


async def test_infinity_needs_a_base_and_refuses_unsupported(serve: Any) -> None:
    with pytest.raises(ConfigurationError, match="INFINITY_API_BASE"):
        await rerank("infinity/m")
    server = serve(InfinityFake(None))
    with pytest.raises(UnsupportedParameterError, match="instruction"):
        await rerank("infinity/m", api_base=server.url, instruction="x")
    assert server.received == []
    await rerank("infinity/m", api_base=server.url, max_tokens_per_doc=10)
    assert "max_tokens_per_doc" not in last_body(server)
    assert (
        url_of(InfinityProvider, "m", "http://h:7997/infinity") == "http://h:7997/infinity/rerank"
    )


# --- hosted_vllm ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/", "/rerank", "/v1/rerank"])
async def test_vllm_always_calls_root_rerank(serve: Any, suffix: str) -> None:
    server = serve(VLLMFake(None))
    await rerank("hosted_vllm/bge", api_base=server.url + suffix)
    assert server.received[-1].path == "/rerank"


async def test_vllm_forwards_instruction_and_extras_not_return_documents(serve: Any) -> None:
    server = serve(VLLMFake(None))
    response = await rerank(
        "hosted_vllm/Qwen/Qwen3-Reranker-0.6B",
        api_base=server.url,
        top_n=2,
        instruction="Judge relevance",
        max_tokens_per_doc=128,
        truncate_prompt_tokens=512,
        priority=1,
    )
    assert last_body(server) == {
        "model": "Qwen/Qwen3-Reranker-0.6B",
        "query": QUERY,
        "documents": DOCS,
        "top_n": 2,
        "instruction": "Judge relevance",
        "max_tokens_per_doc": 128,
        "truncate_prompt_tokens": 512,
        "priority": 1,
    }
    assert response.score_kind == "unknown"
    assert response.usage.total_tokens is not None
    assert response.usage.input_tokens is None
    await rerank("hosted_vllm/m", api_base=server.url, max_chunks_per_doc=2)
    assert "max_chunks_per_doc" not in last_body(server)  # vLLM has no such field: rerankit chunks


async def test_vllm_use_activation_false_gives_logits(serve: Any) -> None:
    server = serve(VLLMFake(None))
    response = await rerank("hosted_vllm/m", api_base=server.url, use_activation=False)
    assert last_body(server)["use_activation"] is False
    assert response.score_kind == "logit"
    response = await rerank("hosted_vllm/m", api_base=server.url, use_activation=True)
    assert response.score_kind == "unknown"


async def test_vllm_reads_a_bare_list_answer(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(VLLMFake(None))
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", server.url)
    server.fail(Reply(body=[{"index": 2, "score": 0.9}, {"index": 0, "score": 0.1}]))
    response = await rerank("hosted_vllm/m")
    assert [(r.index, r.relevance_score) for r in response.results] == [(2, 0.9), (0, 0.1)]
    assert "authorization" not in server.received[-1].headers
    monkeypatch.setenv("HOSTED_VLLM_API_KEY", KEY)
    with pytest.raises(rerankit.AuthenticationError):
        await rerank("hosted_vllm/m")


# --- fireworks_ai ---------------------------------------------------------------------------


async def test_fireworks_sends_the_documented_request(serve: Any) -> None:
    server = serve(FireworksFake(KEY))
    response = await rerank(
        "fireworks_ai/qwen3-reranker-8b",
        api_base=server.url,
        api_key=KEY,
        top_n=2,
        instruction="Given a web search query, retrieve relevant passages",
    )
    request = server.received[-1]
    assert request.path == "/inference/v1/rerank"
    assert request.json() == {
        "model": "fireworks/qwen3-reranker-8b",
        "query": QUERY,
        "documents": DOCS,
        "top_n": 2,
        "return_documents": False,
        "task": "Given a web search query, retrieve relevant passages",
    }
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:2]
    assert response.usage.input_tokens == response.usage.total_tokens
    assert response.usage.input_tokens is not None
    assert response.usage.search_units is None
    assert response.id is None


async def test_fireworks_keeps_full_model_ids(serve: Any) -> None:
    server = serve(FireworksFake(KEY))
    model = "accounts/fireworks/models/qwen3-reranker-8b"
    response = await rerank(f"fireworks_ai/{model}", api_base=server.url, api_key=KEY)
    assert last_body(server)["model"] == model
    assert response.model == model
    assert FireworksAIProvider().wire_model("fireworks/x") == "fireworks/x"


async def test_fireworks_refuses_unsupported_and_misplaced_results(serve: Any) -> None:
    server = serve(FireworksFake(KEY))
    for parameter in EMULATED:
        await rerank("fireworks_ai/m", api_base=server.url, api_key=KEY, **parameter)
        assert not set(parameter) & set(last_body(server))
    server.fail(Reply(body={"results": [{"index": 0, "relevance_score": 0.3}]}))
    with pytest.raises(ResponseValidationError, match="'data'"):
        await rerank("fireworks_ai/m", api_base=server.url, api_key=KEY)


async def test_fireworks_env_order(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(FireworksFake(KEY))
    other = serve(FireworksFake(KEY))
    monkeypatch.setenv("FIREWORKS_API_BASE", other.url)
    monkeypatch.setenv("FIREWORKS_AI_TOKEN", KEY)
    await rerank("fireworks_ai/m")
    monkeypatch.setenv("FIREWORKS_AI_API_BASE", server.url)
    monkeypatch.setenv("FIREWORKS_API_KEY", "wrong-first")
    monkeypatch.setenv("FIREWORKS_AI_API_KEY", KEY)
    with pytest.raises(rerankit.AuthenticationError):
        await rerank("fireworks_ai/m")
    assert len(other.received) == 1
    assert server.received[-1].headers["authorization"] == "Bearer wrong-first"
    assert FireworksAIProvider.api_key_env == (
        "FIREWORKS_API_KEY",
        "FIREWORKS_AI_API_KEY",
        "FIREWORKSAI_API_KEY",
        "FIREWORKS_AI_TOKEN",
    )


# --- siliconflow ----------------------------------------------------------------------------


async def test_siliconflow_chunking_models_take_chunks_and_overlap(serve: Any) -> None:
    server = serve(SiliconFlowFake(KEY))
    await rerank(
        "siliconflow/BAAI/bge-reranker-v2-m3",
        api_base=server.url,
        api_key=KEY,
        max_chunks_per_doc=8,
        overlap_tokens=40,
    )
    assert last_body(server) == {
        "model": "BAAI/bge-reranker-v2-m3",
        "query": QUERY,
        "documents": DOCS,
        "return_documents": False,
        "max_chunks_per_doc": 8,
        "overlap_tokens": 40,
    }
    with pytest.raises(UnsupportedParameterError, match="instruction"):
        await rerank(
            "siliconflow/BAAI/bge-reranker-v2-m3",
            api_base=server.url,
            api_key=KEY,
            instruction="x",
        )
    assert len(server.received) == 1


async def test_siliconflow_qwen3_takes_instruction_only(serve: Any) -> None:
    server = serve(SiliconFlowFake(KEY))
    model = "siliconflow/Qwen/Qwen3-Reranker-8B"
    await rerank(model, api_base=server.url, api_key=KEY, instruction="Find answers")
    assert last_body(server)["instruction"] == "Find answers"
    await rerank(model, api_base=server.url, api_key=KEY, max_chunks_per_doc=2)
    assert "max_chunks_per_doc" not in last_body(server)  # Qwen3 does not chunk: rerankit does
    with pytest.raises(UnsupportedParameterError, match="overlap_tokens") as info:
        await rerank(model, api_base=server.url, api_key=KEY, overlap_tokens=20)
    assert info.value.parameter == "overlap_tokens"
    assert len(server.received) == 2
    with pytest.warns(rerankit.RerankitWarning, match="overlap_tokens"):
        await rerank(model, api_base=server.url, api_key=KEY, overlap_tokens=20, drop_params=True)
    assert "overlap_tokens" not in last_body(server)


async def test_siliconflow_unknown_models_refuse_instructions_and_rerankit_chunks(
    serve: Any,
) -> None:
    server = serve(SiliconFlowFake(KEY))
    with pytest.raises(UnsupportedParameterError):
        await rerank("siliconflow/new/model", api_base=server.url, api_key=KEY, instruction="x")
    assert server.received == []
    for model, parameter in (
        ("siliconflow/new/model", {"max_chunks_per_doc": 2}),
        ("siliconflow/BAAI/bge-reranker-v2-m3", {"max_tokens_per_doc": 100}),
        ("siliconflow/Qwen/Qwen3-Reranker-4B", {"max_tokens_per_doc": 100}),
    ):
        await rerank(model, api_base=server.url, api_key=KEY, **parameter)
        assert not set(parameter) & set(last_body(server))


async def test_siliconflow_usage_sums_input_and_output(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = SiliconFlowFake(KEY)
    fake.output_tokens = 3
    server = serve(fake)
    monkeypatch.setenv("SILICONFLOW_API_KEY", KEY)
    monkeypatch.setenv("SILICONFLOW_API_BASE", f"{server.url}/v1")
    response = await rerank("siliconflow/BAAI/bge-reranker-v2-m3", top_n=1)
    assert server.received[-1].path == "/v1/rerank"
    assert response.usage.input_tokens is not None
    assert response.usage.total_tokens == response.usage.input_tokens + 3
    assert response.id == "fake-1"
    assert response.results[0].index == expected_order(QUERY, DOCS)[0]


# --- the family as a whole ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "base", "url"),
    [
        (CohereCompatibleProvider, "http://host:8000/v1", "http://host:8000/v1/rerank"),
        (CohereCompatibleProvider, "http://host:7997", "http://host:7997/rerank"),
        (CohereCompatibleProvider, "http://host:7997/", "http://host:7997/rerank"),
        (CohereCompatibleProvider, "http://gw/v1/rerank", "http://gw/v1/rerank"),
        (CohereCompatibleProvider, "http://gw/custom/rerank/", "http://gw/custom/rerank"),
        (TogetherAIProvider, None, "https://api.together.xyz/v1/rerank"),
        (TogetherAIProvider, "https://api.together.ai/v1", "https://api.together.ai/v1/rerank"),
        (
            TogetherAIProvider,
            "https://api.together.xyz/v1/rerank",
            "https://api.together.xyz/v1/rerank",
        ),
        (JinaAIProvider, None, "https://api.jina.ai/v1/rerank"),
        (JinaAIProvider, "https://api.jina.ai/v1", "https://api.jina.ai/v1/rerank"),
        (JinaAIProvider, "https://gw.example/jina", "https://gw.example/jina/v1/rerank"),
        (JinaAIProvider, "https://gw.example/jina/v1/", "https://gw.example/jina/v1/rerank"),
        (JinaAIProvider, "https://gw.example/custom/rerank", "https://gw.example/custom/rerank"),
        (FireworksAIProvider, None, "https://api.fireworks.ai/inference/v1/rerank"),
        (
            FireworksAIProvider,
            "https://api.fireworks.ai",
            "https://api.fireworks.ai/inference/v1/rerank",
        ),
        (
            FireworksAIProvider,
            "https://api.fireworks.ai/inference",
            "https://api.fireworks.ai/inference/v1/rerank",
        ),
        (FireworksAIProvider, "https://gw.example/v1", "https://gw.example/v1/rerank"),
        (
            FireworksAIProvider,
            "https://gw.example/fw/inference/v1/",
            "https://gw.example/fw/inference/v1/rerank",
        ),
        (SiliconFlowProvider, None, "https://api.siliconflow.cn/v1/rerank"),
        (
            SiliconFlowProvider,
            "https://api.siliconflow.com",
            "https://api.siliconflow.com/v1/rerank",
        ),
        (
            SiliconFlowProvider,
            "https://api.siliconflow.com/v1",
            "https://api.siliconflow.com/v1/rerank",
        ),
    ],
)
def test_join_rules(cls: type[RestProvider], base: str | None, url: str) -> None:
    assert url_of(cls, "m", base) == url


@pytest.mark.parametrize("cls", PROVIDERS)
def test_providers_are_registered_and_documented(cls: type[RestProvider]) -> None:
    from rerankit._registry import load_provider

    assert load_provider(cls.name) is cls
    assert cls.__doc__
    assert cls.example_model.startswith(f"{cls.name}/")
    assert cls.api_key_required == (
        cls.name not in ("cohere_compatible", "infinity", "hosted_vllm")
    )
    assert cls.api_base_required == (cls.default_api_base is None)


def test_fake_parameters_are_checked() -> None:
    with pytest.raises(TypeError, match="unknown fake parameter"):
        CohereCompatibleFake(None, result_key="data")


async def test_jina_reranker_v3_5_is_never_split_across_requests(serve: Any) -> None:
    server = serve(JinaFake(KEY))
    settings = {"api_key": KEY, "api_base": server.url, "capabilities": {"max_documents": 2}}
    async with AsyncClient(providers={"jina_ai": settings}) as client:
        with pytest.raises(ConfigurationError, match="listwise"):
            await client.rerank("jina_ai/jina-reranker-v3.5", QUERY, DOCS)
        response = await client.rerank("jina_ai/jina-reranker-v3.5", QUERY, DOCS[:2])
    assert len(server.received) == 1
    assert sorted(r.index for r in response.results) == [0, 1]
