"""Hugging Face Text Embeddings Inference over real HTTP against a fake TEI server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest

import rerankit
from rerankit import (
    AsyncClient,
    ConfigurationError,
    RerankRequest,
    ResponseValidationError,
    RetryPolicy,
    UnsupportedParameterError,
)
from rerankit.providers import ProviderContext
from rerankit.providers.tei import HuggingFaceTEIProvider
from rerankit.testing import FakeServer, ProviderContract, ReceivedRequest, Reply, overlap_score
from rerankit.testing._vendors import TEIFake, fake_logit, fake_tokens

pytestmark = pytest.mark.anyio

MODEL = "huggingface/BAAI/bge-reranker-v2-m3"
QUERY = "reset password settings"
DOCS = [
    "Invoices are sent monthly.",
    "Open settings to reset your password.",
    "Password rules: twelve characters.",
    "Reset the router settings.",
]
FAST = RetryPolicy(max_retries=1, initial_delay=0.001, max_delay=0.01)
ENV = ("HUGGINGFACE_API_KEY", "HF_TOKEN", "HF_API_BASE", "HUGGINGFACE_API_BASE")


@pytest.fixture(autouse=True)
def _no_vendor_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def order(query: str, texts: list[str]) -> list[int]:
    scores = [overlap_score(query, text) for text in texts]
    return sorted(range(len(texts)), key=lambda i: (-scores[i], i))


@pytest.fixture
def tei() -> Iterator[FakeServer]:
    with FakeServer(TEIFake()) as server:
        yield server


@pytest.fixture
async def client(tei: FakeServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(providers={"huggingface": {"api_base": tei.url}}, retry=FAST) as client:
        yield client


class TestTEIContract(ProviderContract):
    model = MODEL
    api_key = None

    def fake(self) -> TEIFake:
        return TEIFake(self.api_key)


class TestTEIWithKeyContract(ProviderContract):
    model = MODEL

    def fake(self) -> TEIFake:
        return TEIFake(self.api_key)


async def test_sends_texts_without_model_or_cut_off(client: AsyncClient, tei: FakeServer) -> None:
    response = await client.rerank(MODEL, QUERY, DOCS, top_n=2)
    (sent,) = tei.received
    assert sent.path == "/rerank"
    assert "authorization" not in sent.headers
    assert sent.json() == {"query": QUERY, "texts": DOCS, "return_text": False}
    assert [r.index for r in response.results] == order(QUERY, DOCS)[:2]
    assert [r.document for r in response.results] == [
        {"text": DOCS[i]} for i in order(QUERY, DOCS)[:2]
    ]
    assert response.score_kind == "probability"
    tokens = fake_tokens(QUERY) * len(DOCS) + fake_tokens(*DOCS)
    assert response.usage == rerankit.Usage(input_tokens=tokens)
    assert response.id is None


async def test_truncation_options_only_when_set(client: AsyncClient, tei: FakeServer) -> None:
    await client.rerank(MODEL, QUERY, DOCS, truncate=True, truncation_direction="Left")
    body = tei.received[-1].json()
    assert body["truncate"] is True
    assert body["truncation_direction"] == "Left"
    assert "raw_scores" not in body
    await client.rerank(MODEL, QUERY, DOCS, truncate=False)
    assert tei.received[-1].json()["truncate"] is False


async def test_raw_scores_are_logits(client: AsyncClient, tei: FakeServer) -> None:
    response = await client.rerank(MODEL, QUERY, DOCS, raw_scores=True)
    assert tei.received[-1].json()["raw_scores"] is True
    assert response.score_kind == "logit"
    best = order(QUERY, DOCS)[0]
    assert response.results[0].index == best
    assert response.results[0].relevance_score == fake_logit(overlap_score(QUERY, DOCS[best]))
    assert min(r.relevance_score for r in response.results) < 0
    plain = await client.rerank(MODEL, QUERY, DOCS, raw_scores=False)
    assert plain.score_kind == "probability"


async def test_dicts_are_rendered(client: AsyncClient, tei: FakeServer) -> None:
    records = [{"title": "Billing", "body": "Invoices"}, {"title": "Reset", "body": "settings"}]
    response = await client.rerank(MODEL, QUERY, records, rank_fields=["title", "body"])
    assert tei.received[-1].json()["texts"] == [
        "title: Billing\nbody: Invoices",
        "title: Reset\nbody: settings",
    ]
    assert response.results[0].document is records[1]


@pytest.mark.parametrize(
    "parameter",
    [{"instruction": "be strict"}, {"max_tokens_per_doc": 100}, {"max_chunks_per_doc": 2}],
)
async def test_unsupported_parameters_raise_before_sending(
    client: AsyncClient, tei: FakeServer, parameter: dict[str, Any]
) -> None:
    with pytest.raises(UnsupportedParameterError) as info:
        await client.rerank(MODEL, QUERY, DOCS, **parameter)
    assert info.value.provider == "huggingface"
    assert tei.received == []


async def test_more_texts_than_the_batch_size_is_a_bad_request(
    client: AsyncClient, tei: FakeServer
) -> None:
    assert HuggingFaceTEIProvider().capabilities("any").max_documents == 32
    with pytest.raises(rerankit.UnprocessableEntityError, match="batch size 33"):
        await client.rerank(MODEL, QUERY, [f"doc {i}" for i in range(33)])


async def test_base_is_required_and_read_from_env_in_order(
    monkeypatch: pytest.MonkeyPatch, tei: FakeServer
) -> None:
    with pytest.raises(ConfigurationError, match="HF_API_BASE or HUGGINGFACE_API_BASE"):
        await rerankit.arerank(MODEL, QUERY, DOCS)
    monkeypatch.setenv("HUGGINGFACE_API_BASE", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_API_BASE", f"{tei.url}/")
    response = await rerankit.arerank(MODEL, QUERY, DOCS, max_retries=0)
    assert response.results[0].index == order(QUERY, DOCS)[0]
    assert tei.received[0].path == "/rerank"


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
    tei = HuggingFaceTEIProvider()

    def url(base: str) -> str:
        request = RerankRequest(model="m", query=QUERY, documents=DOCS)
        return tei.url(request, ProviderContext(provider="huggingface", model="m", api_base=base))

    assert url("http://localhost:8080") == "http://localhost:8080/rerank"
    assert url("http://localhost:8080/rerank") == "http://localhost:8080/rerank"
    assert url("https://x.endpoints.huggingface.cloud/") == (
        "https://x.endpoints.huggingface.cloud/rerank"
    )
    assert url("http://gw/tei") == "http://gw/tei/rerank"
    assert HuggingFaceTEIProvider.default_api_base is None
    assert HuggingFaceTEIProvider.api_base_required


async def test_prefixed_base(tei: FakeServer) -> None:
    await rerankit.arerank(MODEL, QUERY, DOCS, api_base=f"{tei.url}/models/reranker")
    assert tei.received[0].path == "/models/reranker/rerank"


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
    client: AsyncClient, tei: FakeServer, reply: Reply
) -> None:
    tei.fail(reply)
    with pytest.raises(ResponseValidationError) as info:
        await client.rerank(MODEL, QUERY, DOCS)
    assert info.value.provider == "huggingface"


async def test_missing_or_bad_compute_tokens_header_leaves_usage_unknown(
    client: AsyncClient, tei: FakeServer
) -> None:
    tei.fail(
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
    request = ReceivedRequest(
        method="POST",
        path="/rerank",
        query={},
        headers={"content-type": "application/json", **headers},
        body=msgspec.json.encode(body),
    )
    assert TEIFake()(request).status == status
