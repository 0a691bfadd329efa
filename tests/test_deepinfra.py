"""DeepInfra's inference API over real HTTP against a fake that answers scores in input order."""

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
from rerankit.providers.deepinfra import DeepInfraProvider
from rerankit.testing import FakeServer, ProviderContract, Reply
from rerankit.testing._vendors import DeepInfraFake, fake_tokens

from .support import (
    DOCS,
    QUERY,
    REFUSED,
    clean_env,
    client_fixture,
    expected_order,
    fake_fixture,
    post,
    provider_url,
    server_fixture,
)

pytestmark = pytest.mark.anyio

KEY = "deepinfra-key-0123456789"
MODEL = "deepinfra/Qwen/Qwen3-Reranker-8B"

_clean_provider_env = clean_env(DeepInfraProvider)
fake = fake_fixture(lambda: DeepInfraFake(KEY))
server = server_fixture()
client = client_fixture(lambda s: {"deepinfra": {"api_key": KEY, "api_base": s.url}})


class TestDeepInfraContract(ProviderContract):
    model = MODEL
    fake_class = DeepInfraFake


class TestDeepInfraCrossEncoderContract(ProviderContract):
    model = "deepinfra/BAAI/bge-reranker-v2-m3"
    fake_class = DeepInfraFake


async def test_model_in_path_query_repeated_per_document(
    client: AsyncClient, server: FakeServer
) -> None:
    response = await client.rerank(MODEL, QUERY, DOCS, top_n=2)
    (sent,) = server.received
    assert sent.path == "/v1/inference/Qwen/Qwen3-Reranker-8B"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json() == {"queries": [QUERY] * len(DOCS), "documents": DOCS}
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:2]
    assert [r.document for r in response.results] == [
        {"text": DOCS[i]} for i in expected_order(QUERY, DOCS)[:2]
    ]
    assert response.id == "di-1"
    assert response.usage == rerankit.Usage(input_tokens=fake_tokens(*[QUERY] * 4, *DOCS))
    assert response.provider_meta == {"cost": 0.0001}
    assert response.score_kind == "unknown"


async def test_input_order_scores_are_mapped_sorted_and_cut(
    client: AsyncClient, server: FakeServer
) -> None:
    server.fail(Reply(body={"scores": [0.2, 0.9, 0.2, 0.5], "request_id": "r-7"}))
    response = await client.rerank(MODEL, QUERY, DOCS, top_n=3, return_documents=False)
    assert [(r.index, r.relevance_score) for r in response.results] == [
        (1, 0.9),
        (3, 0.5),
        (0, 0.2),
    ]
    assert all(r.document is None for r in response.results)
    assert response.id == "r-7"
    assert response.usage.input_tokens is None
    assert response.provider_meta == {}


async def test_instruction_for_qwen3_models_only(client: AsyncClient, server: FakeServer) -> None:
    await client.rerank(MODEL, QUERY, DOCS, instruction="Find the how-to", service_tier="priority")
    body = server.received[-1].json()
    assert body["instruction"] == "Find the how-to"
    assert body["service_tier"] == "priority"
    await client.rerank("deepinfra/Qwen/Qwen3-Reranker-4B-tuned", QUERY, DOCS, instruction="x")
    assert server.received[-1].json()["instruction"] == "x"
    sent = len(server.received)
    with pytest.raises(UnsupportedParameterError, match="instruction") as info:
        await client.rerank("deepinfra/BAAI/bge-reranker-v2-m3", QUERY, DOCS, instruction="x")
    assert info.value.model == "BAAI/bge-reranker-v2-m3"
    assert len(server.received) == sent
    for parameter in ({"max_tokens_per_doc": 10}, {"max_chunks_per_doc": 2}):  # rerankit chunks
        await client.rerank(MODEL, QUERY, DOCS, **parameter)  # type: ignore[arg-type]
        assert not set(parameter) & set(server.received[-1].json())
    with pytest.warns(rerankit.RerankitWarning, match="instruction"):
        await client.rerank(
            "deepinfra/BAAI/bge-reranker-v2-m3", QUERY, DOCS, instruction="x", drop_params=True
        )
    assert "instruction" not in server.received[-1].json()


async def test_dicts_are_rendered(client: AsyncClient, server: FakeServer) -> None:
    records = [{"title": "Billing", "body": "Invoices"}, {"title": "Reset", "body": "settings"}]
    response = await client.rerank(MODEL, QUERY, records, rank_fields=["body"])
    body = server.received[-1].json()
    assert body["documents"] == ["Invoices", "settings"]
    assert body["queries"] == [QUERY, QUERY]
    assert response.results[0].document is records[1]


@pytest.mark.parametrize(
    "reply_body",
    [
        {"scores": [0.1, 0.2], "request_id": "short-1"},
        {"scores": [0.1, 0.2, 0.3, 0.4, 0.5], "request_id": "long-1"},
        {"request_id": "none-1"},
    ],
)
async def test_score_count_mismatch_is_a_response_validation_error(
    client: AsyncClient, server: FakeServer, reply_body: dict[str, Any]
) -> None:
    server.fail(Reply(body=reply_body))
    with pytest.raises(ResponseValidationError, match="for 4 documents") as info:
        await client.rerank(MODEL, QUERY, DOCS)
    assert info.value.provider == "deepinfra"
    assert info.value.request_id == reply_body["request_id"]


@pytest.mark.parametrize(
    "body", [{"scores": [0.1, None, 0.3, 0.4]}, {"scores": "high"}, [0.1, 0.2, 0.3, 0.4]]
)
async def test_malformed_scores_are_response_validation_errors(
    client: AsyncClient, server: FakeServer, body: Any
) -> None:
    server.fail(Reply(body=body))
    with pytest.raises(ResponseValidationError):
        await client.rerank(MODEL, QUERY, DOCS)


def test_url_join() -> None:
    def url(base: str | None, model: str = "Qwen/Qwen3-Reranker-8B") -> str:
        return provider_url(DeepInfraProvider, model, base)

    expected = "https://api.deepinfra.com/v1/inference/Qwen/Qwen3-Reranker-8B"
    assert url(None) == expected
    assert url("https://api.deepinfra.com/v1/inference") == expected
    assert url("https://api.deepinfra.com/v1/openai") == expected
    assert url("https://api.deepinfra.com/v1/openai/") == expected
    assert url("https://api.deepinfra.com/v1") == expected
    assert url("https://api.deepinfra.com") == expected
    assert url("https://gw.example/di/v1/openai", "BAAI/bge-reranker-v2-m3") == (
        "https://gw.example/di/v1/inference/BAAI/bge-reranker-v2-m3"
    )
    assert DeepInfraProvider.default_api_base == "https://api.deepinfra.com/v1/inference"


async def test_openai_base_from_env_and_key_order(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeServer(DeepInfraFake(KEY)) as server:
        monkeypatch.setenv("DEEPINFRA_API_BASE", f"{server.url}/v1/openai")
        monkeypatch.setenv("DEEPINFRA_TOKEN", KEY)
        await rerankit.arerank(MODEL, QUERY, DOCS)
        monkeypatch.setenv("DEEPINFRA_API_KEY", "first-in-order")
        with pytest.raises(rerankit.AuthenticationError):
            await rerankit.arerank(MODEL, QUERY, DOCS, max_retries=0)
    assert [r.path for r in server.received] == ["/v1/inference/Qwen/Qwen3-Reranker-8B"] * 2
    assert server.received[1].headers["authorization"] == "Bearer first-in-order"


async def test_missing_key_names_both_variables() -> None:
    with pytest.raises(ConfigurationError, match="DEEPINFRA_API_KEY or DEEPINFRA_TOKEN"):
        await rerankit.arerank(MODEL, QUERY, DOCS, api_base=REFUSED)


def test_capabilities() -> None:
    provider = DeepInfraProvider()
    qwen = provider.capabilities("Qwen/Qwen3-Reranker-0.6B")
    assert qwen.parameters == frozenset({"instruction"})
    assert qwen.max_pair_tokens == 32_768
    assert provider.capabilities("BAAI/bge-reranker-v2-m3").parameters == frozenset()
    assert provider.capabilities("BAAI/bge-reranker-v2-m3").score_kind == "unknown"
    assert set(provider.model_table()) >= {"Qwen/Qwen3-Reranker-8B"}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/inference/BAAI/bge-reranker-v2-m3", {"queries": ["q"], "documents": ["a", "b"]}, 422),
        ("/v1/inference/BAAI/bge-reranker-v2-m3", {"query": "q", "documents": ["a"]}, 422),
        (
            "/v1/inference/BAAI/bge-reranker-v2-m3",
            {"queries": ["q"], "documents": ["a"], "instruction": "x"},
            422,
        ),
        ("/v1/openai/rerank", {"queries": ["q"], "documents": ["a"]}, 404),
    ],
)
def test_fake_rejects_what_deepinfra_rejects(path: str, body: Any, status: int) -> None:
    request = post(path, body, {"authorization": f"Bearer {KEY}"})
    assert DeepInfraFake(KEY)(request).status == status
