"""Hugging Face Text Embeddings Inference over real HTTP against a fake TEI server."""

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
from rerankit.providers.tei import HuggingFaceTEIProvider
from rerankit.testing import FakeServer, ProviderContract, Reply, overlap_score
from rerankit.testing._vendors import TEIFake, fake_logit, fake_tokens

from .support import (
    DOCS,
    EMULATED,
    QUERY,
    REFUSED,
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

MODEL = "huggingface/BAAI/bge-reranker-v2-m3"

_clean_provider_env = clean_env(HuggingFaceTEIProvider)
fake = fake_fixture(TEIFake)
server = server_fixture()
client = client_fixture(lambda s: {"huggingface": {"api_base": s.url}})


class TestTEIContract(ProviderContract):
    model = MODEL
    api_key = None
    fake_class = TEIFake


class TestTEIWithKeyContract(ProviderContract):
    model = MODEL
    fake_class = TEIFake


async def test_sends_texts_without_model_or_cut_off(
    client: AsyncClient, server: FakeServer
) -> None:
    response = await client.rerank(MODEL, QUERY, DOCS, top_n=2)
    (sent,) = server.received
    assert sent.path == "/rerank"
    assert "authorization" not in sent.headers
    assert sent.json() == {"query": QUERY, "texts": DOCS, "return_text": False}
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:2]
    assert [r.document for r in response.results] == [
        {"text": DOCS[i]} for i in expected_order(QUERY, DOCS)[:2]
    ]
    assert response.score_kind == "probability"
    tokens = fake_tokens(QUERY) * len(DOCS) + fake_tokens(*DOCS)
    assert response.usage == rerankit.Usage(input_tokens=tokens)
    assert response.id is None


async def test_truncation_options_only_when_set(client: AsyncClient, server: FakeServer) -> None:
    await client.rerank(MODEL, QUERY, DOCS, truncate=True, truncation_direction="Left")
    body = server.received[-1].json()
    assert body["truncate"] is True
    assert body["truncation_direction"] == "Left"
    assert "raw_scores" not in body
    await client.rerank(MODEL, QUERY, DOCS, truncate=False)
    assert server.received[-1].json()["truncate"] is False


async def test_raw_scores_are_logits(client: AsyncClient, server: FakeServer) -> None:
    response = await client.rerank(MODEL, QUERY, DOCS, raw_scores=True)
    assert server.received[-1].json()["raw_scores"] is True
    assert response.score_kind == "logit"
    best = expected_order(QUERY, DOCS)[0]
    assert response.results[0].index == best
    assert response.results[0].relevance_score == fake_logit(overlap_score(QUERY, DOCS[best]))
    assert min(r.relevance_score for r in response.results) < 0
    plain = await client.rerank(MODEL, QUERY, DOCS, raw_scores=False)
    assert plain.score_kind == "probability"


async def test_dicts_are_rendered(client: AsyncClient, server: FakeServer) -> None:
    records = [{"title": "Billing", "body": "Invoices"}, {"title": "Reset", "body": "settings"}]
    response = await client.rerank(MODEL, QUERY, records, rank_fields=["title", "body"])
    assert server.received[-1].json()["texts"] == [
        "title: Billing\nbody: Invoices",
        "title: Reset\nbody: settings",
    ]
    assert response.results[0].document is records[1]


@pytest.mark.parametrize("parameter", UNSUPPORTED)
async def test_unsupported_parameters_raise_before_sending(
    client: AsyncClient, server: FakeServer, parameter: dict[str, Any]
) -> None:
    with pytest.raises(UnsupportedParameterError) as info:
        await client.rerank(MODEL, QUERY, DOCS, **parameter)
    assert info.value.provider == "huggingface"
    assert server.received == []


@pytest.mark.parametrize("parameter", EMULATED)
async def test_token_limits_and_chunking_are_emulated(
    client: AsyncClient, server: FakeServer, parameter: dict[str, Any]
) -> None:
    await assert_emulated(client, server, MODEL, parameter)


async def test_more_texts_than_the_batch_size_are_split_into_batches(
    client: AsyncClient, server: FakeServer
) -> None:
    assert HuggingFaceTEIProvider().capabilities("any").max_documents == 32
    docs = [f"doc {i}" for i in range(33)]
    response = await client.rerank(MODEL, QUERY, docs)
    assert [len(r.json()["texts"]) for r in server.received] == [32, 1]
    assert sorted(r.index for r in response.results) == list(range(33))
    server.fail(Reply(status=422, body={"error": "batch size 33 > maximum allowed batch size 32"}))
    with pytest.raises(rerankit.UnprocessableEntityError, match="batch size 33"):
        await client.rerank(MODEL, QUERY, docs, max_retries=0)


async def test_base_is_required_and_read_from_env_in_order(
    monkeypatch: pytest.MonkeyPatch, server: FakeServer
) -> None:
    with pytest.raises(ConfigurationError, match="HF_API_BASE or HUGGINGFACE_API_BASE"):
        await rerankit.arerank(MODEL, QUERY, DOCS)
    monkeypatch.setenv("HUGGINGFACE_API_BASE", REFUSED)
    monkeypatch.setenv("HF_API_BASE", f"{server.url}/")
    response = await rerankit.arerank(MODEL, QUERY, DOCS, max_retries=0)
    assert response.results[0].index == expected_order(QUERY, DOCS)[0]
    assert server.received[0].path == "/rerank"


async def test_key_is_optional_and_read_from_env_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FakeServer(TEIFake("hf-key")) as server:
        monkeypatch.setenv("HF_API_BASE", server.url)
        monkeypatch.setenv("HF_TOKEN", "hf-key")
        await rerankit.arerank(MODEL, QUERY, DOCS)
        monkeypatch.setenv("HUGGINGFACE_API_KEY", "first-in-order")
        with pytest.raises(rerankit.AuthenticationError):
            await rerankit.arerank(MODEL, QUERY, DOCS, max_retries=0)
    assert [r.headers["authorization"] for r in server.received] == [
        "Bearer hf-key",
        "Bearer first-in-order",
    ]


def test_url_join() -> None:
    def url(base: str) -> str:
        return provider_url(HuggingFaceTEIProvider, "m", base)

    assert url("http://localhost:8080") == "http://localhost:8080/rerank"
    assert url("http://localhost:8080/rerank") == "http://localhost:8080/rerank"
    assert url("https://x.endpoints.huggingface.cloud/") == (
        "https://x.endpoints.huggingface.cloud/rerank"
    )
    assert url("http://gw/tei") == "http://gw/tei/rerank"
    assert HuggingFaceTEIProvider.default_api_base is None
    assert HuggingFaceTEIProvider.api_base_required


async def test_prefixed_base(server: FakeServer) -> None:
    await rerankit.arerank(MODEL, QUERY, DOCS, api_base=f"{server.url}/models/reranker")
    assert server.received[0].path == "/models/reranker/rerank"


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body={"results": [{"index": 0, "score": 0.5}]}),
        Reply(body=[{"index": 0}]),
        Reply(body=[{"score": 0.5}]),
        Reply(body=[{"index": 7, "score": 0.5}]),
        Reply(body=[{"index": 0, "score": "high"}]),
    ],
)
async def test_bad_answers_are_response_validation_errors(
    client: AsyncClient, server: FakeServer, reply: Reply
) -> None:
    server.fail(reply)
    with pytest.raises(ResponseValidationError) as info:
        await client.rerank(MODEL, QUERY, DOCS)
    assert info.value.provider == "huggingface"


async def test_missing_or_bad_compute_tokens_header_leaves_usage_unknown(
    client: AsyncClient, server: FakeServer
) -> None:
    server.fail(
        Reply(body=[{"index": 1, "score": 0.9}, {"index": 0, "score": 0.1}]),
        Reply(body=[{"index": 1, "score": 0.9}], headers={"X-Compute-Tokens": "many"}),
    )
    first = await client.rerank(MODEL, QUERY, DOCS)
    second = await client.rerank(MODEL, QUERY, DOCS)
    assert first.usage.input_tokens is None
    assert second.usage.input_tokens is None
    assert [r.index for r in first.results] == [1, 0]


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({"query": "q", "texts": ["a"], "model": "m"}, {}, 422),
        ({"query": "q", "texts": ["a"], "top_n": 1}, {}, 422),
        ({"query": "q", "texts": []}, {}, 422),
        ({"query": "q", "texts": ["a"], "truncation_direction": "Middle"}, {}, 422),
        ({"query": "q", "texts": ["a"]}, {"authorization": "Bearer placeholder"}, 401),
    ],
)
def test_fake_rejects_what_tei_rejects(body: Any, headers: dict[str, str], status: int) -> None:
    assert TEIFake()(post("/rerank", body, headers)).status == status
