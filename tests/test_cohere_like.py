"""Voyage, Mixedbread, Pinecone, ZeroEntropy and Contextual over real HTTP against their fakes."""

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
from rerankit.providers.cohere_like import (
    ContextualProvider,
    MixedbreadProvider,
    PineconeProvider,
    VoyageProvider,
    ZeroEntropyProvider,
)
from rerankit.testing import FakeServer, Handler, ProviderContract, Reply
from rerankit.testing._vendors import (
    ContextualFake,
    MixedbreadFake,
    PineconeFake,
    VoyageFake,
    ZeroEntropyFake,
)

from .support import (
    DOCS,
    EMULATED,
    FAST_RETRY,
    QUERY,
    RECORDS,
    REFUSED,
    RENDERED,
    UNSUPPORTED,
    assert_emulated,
    clean_env,
    client_fixture,
    expected_order,
    post,
    provider_url,
    server_fixture,
)

pytestmark = pytest.mark.anyio

KEY = "vendor-key-0123456789"
PROVIDERS = (
    VoyageProvider,
    MixedbreadProvider,
    PineconeProvider,
    ZeroEntropyProvider,
    ContextualProvider,
)

_clean_provider_env = clean_env(*PROVIDERS)


def url_of(provider: Any, model: str, base: str | None) -> str:
    return provider_url(provider, model, base, api_key=KEY)


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Handler:
    """The fake a test names with ``uses``."""
    fake: Handler = request.param(KEY)
    return fake


server = server_fixture()
client = client_fixture(
    lambda s: {cls.name: {"api_key": KEY, "api_base": s.url} for cls in PROVIDERS}
)


def uses(fake: type) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("fake", [fake], indirect=True)


# --- Voyage -----------------------------------------------------------------------------------


class TestVoyageContract(ProviderContract):
    model = "voyage/rerank-2.5"
    fake_class = VoyageFake


@uses(VoyageFake)
async def test_voyage_sends_top_k_and_no_documents_flag(
    client: AsyncClient, server: FakeServer
) -> None:
    response = await client.rerank("voyage/rerank-2.5", QUERY, DOCS, top_n=2)
    (sent,) = server.received
    assert sent.path == "/v1/rerank"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json() == {
        "model": "rerank-2.5",
        "query": QUERY,
        "documents": DOCS,
        "top_k": 2,
        "return_documents": False,
    }
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:2]
    assert response.results[0].document == {"text": DOCS[expected_order(QUERY, DOCS)[0]]}
    assert response.usage.total_tokens is not None
    assert response.usage.input_tokens is None
    assert response.usage.search_units is None
    assert response.score_kind == "unknown"
    assert response.id is None


@uses(VoyageFake)
async def test_voyage_renders_dicts_and_passes_truncation(
    client: AsyncClient, server: FakeServer
) -> None:
    response = await client.rerank(
        "voyage/rerank-2", QUERY, RECORDS, rank_fields=["title", "body"], truncation=False
    )
    body = server.received[-1].json()
    assert body["documents"] == RENDERED
    assert "rank_fields" not in body
    assert body["truncation"] is False
    assert [r.document for r in response.results] == [RECORDS[1], RECORDS[0]]


@uses(VoyageFake)
@pytest.mark.parametrize("parameter", UNSUPPORTED)
async def test_voyage_unsupported_parameters_raise_before_sending(
    client: AsyncClient, server: FakeServer, parameter: dict[str, Any]
) -> None:
    with pytest.raises(UnsupportedParameterError) as info:
        await client.rerank("voyage/rerank-2.5", QUERY, DOCS, **parameter)
    assert info.value.provider == "voyage"
    assert info.value.parameter in parameter
    assert server.received == []
    with pytest.warns(rerankit.RerankitWarning):
        await client.rerank("voyage/rerank-2.5", QUERY, DOCS, drop_params=True, **parameter)
    assert not set(parameter) & set(server.received[-1].json())


@uses(VoyageFake)
@pytest.mark.parametrize("parameter", EMULATED)
async def test_voyage_emulates_token_limits_and_chunking(
    client: AsyncClient, server: FakeServer, parameter: dict[str, Any]
) -> None:
    await assert_emulated(client, server, "voyage/rerank-2.5", parameter)


def test_voyage_url_join() -> None:
    voyage = VoyageProvider()
    assert url_of(voyage, "rerank-2.5", None) == "https://api.voyageai.com/v1/rerank"
    assert url_of(voyage, "rerank-2.5", "https://gw.example/v1") == "https://gw.example/v1/rerank"
    assert url_of(voyage, "rerank-2.5", "https://gw.example") == "https://gw.example/v1/rerank"
    assert url_of(voyage, "rerank-2.5", "https://gw.example/v1/rerank") == (
        "https://gw.example/v1/rerank"
    )
    assert url_of(voyage, "rerank-2.5", "https://gw.example/voyage") == (
        "https://gw.example/voyage/v1/rerank"
    )


async def test_voyage_key_and_base_from_env_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeServer(VoyageFake(KEY)) as server:
        monkeypatch.setenv("VOYAGE_API_BASE", server.url)
        monkeypatch.setenv("VOYAGE_AI_API_KEY", KEY)
        async with AsyncClient(retry=FAST_RETRY) as client:
            await client.rerank("voyage/rerank-2.5", QUERY, DOCS)
            monkeypatch.setenv("VOYAGE_API_KEY", "first-in-order")
            with pytest.raises(rerankit.AuthenticationError):
                await client.rerank("voyage/rerank-2.5", QUERY, DOCS)
    assert [r.headers["authorization"] for r in server.received] == [
        f"Bearer {KEY}",
        "Bearer first-in-order",
    ]


async def test_voyage_missing_key_names_both_variables() -> None:
    with pytest.raises(ConfigurationError, match="VOYAGE_API_KEY or VOYAGE_AI_API_KEY"):
        await rerankit.arerank("voyage/rerank-2.5", QUERY, DOCS, api_base=REFUSED)


def test_voyage_capabilities_per_model() -> None:
    voyage = VoyageProvider()
    caps = voyage.capabilities("rerank-2.5")
    assert (caps.max_documents, caps.max_query_tokens, caps.max_pair_tokens) == (
        1_000,
        8_000,
        32_000,
    )
    assert caps.max_request_tokens == 600_000
    assert voyage.capabilities("rerank-2").max_pair_tokens == 16_000
    assert voyage.capabilities("rerank-1").max_request_tokens == 100_000
    assert voyage.capabilities("rerank-lite-1").max_query_tokens == 1_000
    assert voyage.capabilities("rerank-9").max_documents == 1_000
    assert voyage.capabilities("rerank-2.5").parameters == frozenset()
    assert VoyageProvider.example_model == "voyage/rerank-2.5"


@uses(VoyageFake)
@pytest.mark.parametrize(
    "body",
    [
        {"object": "list", "results": [{"index": 0, "relevance_score": 0.5}]},
        {"object": "list", "data": [{"relevance_score": 0.5}]},
        {"object": "list", "data": [{"index": 0}]},
        {"object": "list", "data": [{"index": 9, "relevance_score": 0.5}]},
    ],
)
async def test_voyage_bad_answers_are_response_validation_errors(
    client: AsyncClient, server: FakeServer, body: dict[str, Any]
) -> None:
    server.fail(Reply(body=body))
    with pytest.raises(ResponseValidationError) as info:
        await client.rerank("voyage/rerank-2.5", QUERY, DOCS)
    assert info.value.provider == "voyage"


# --- Mixedbread -------------------------------------------------------------------------------

MXBAI = "mixedbread/mixedbread-ai/mxbai-rerank-large-v2"


class TestMixedbreadContract(ProviderContract):
    model = MXBAI
    fake_class = MixedbreadFake


@uses(MixedbreadFake)
async def test_mixedbread_wire_and_usage(client: AsyncClient, server: FakeServer) -> None:
    response = await client.rerank(MXBAI, QUERY, DOCS, top_n=3, rewrite_query=True)
    (sent,) = server.received
    assert sent.path == "/v1/reranking"
    assert sent.json() == {
        "model": "mixedbread-ai/mxbai-rerank-large-v2",
        "query": QUERY,
        "input": DOCS,
        "top_k": 3,
        "return_input": False,
        "rewrite_query": True,
    }
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:3]
    assert response.usage.total_tokens is not None
    assert response.usage.input_tokens == response.usage.total_tokens
    assert response.usage.search_units is None


@uses(MixedbreadFake)
async def test_mixedbread_sends_dicts_natively_with_rank_fields(
    client: AsyncClient, server: FakeServer
) -> None:
    response = await client.rerank(MXBAI, QUERY, RECORDS, rank_fields=["title", "body"])
    body = server.received[-1].json()
    assert body["input"] == RECORDS
    assert body["rank_fields"] == ["title", "body"]
    assert response.results[0].document is RECORDS[1]

    await client.rerank(MXBAI, QUERY, [{"text": "Reset settings"}, {"body": "Invoices"}])
    body = server.received[-1].json()
    assert body["input"] == ["Reset settings", "body: Invoices"]
    assert "rank_fields" not in body


async def test_mixedbread_env_order_and_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeServer(MixedbreadFake(KEY)) as server:
        monkeypatch.setenv("MIXEDBREAD_API_BASE", f"{server.url}/v1")
        monkeypatch.setenv("MIXEDBREAD_API_KEY", KEY)
        await rerankit.arerank(MXBAI, QUERY, DOCS)
        monkeypatch.setenv("MXBAI_API_KEY", "mxbai-first")
        with pytest.raises(rerankit.AuthenticationError):
            await rerankit.arerank(MXBAI, QUERY, DOCS, max_retries=0)
    assert [r.path for r in server.received] == ["/v1/reranking"] * 2
    mixedbread = MixedbreadProvider()
    assert url_of(mixedbread, "m", None) == "https://api.mixedbread.com/v1/reranking"
    assert url_of(mixedbread, "m", "https://api.mixedbread.ai") == (
        "https://api.mixedbread.ai/v1/reranking"
    )


@uses(MixedbreadFake)
async def test_mixedbread_refuses_instruction(client: AsyncClient, server: FakeServer) -> None:
    with pytest.raises(UnsupportedParameterError, match="instruction"):
        await client.rerank(MXBAI, QUERY, DOCS, instruction="prefer recent")
    assert server.received == []
    caps = MixedbreadProvider().capabilities("mixedbread-ai/mxbai-rerank-large-v2")
    assert caps.max_documents == 1_000
    assert caps.structured_documents


# --- Pinecone ---------------------------------------------------------------------------------


class TestPineconeContract(ProviderContract):
    model = "pinecone/bge-reranker-v2-m3"
    fake_class = PineconeFake


class TestPineconeCohereContract(ProviderContract):
    model = "pinecone/cohere-rerank-3.5"
    fake_class = PineconeFake


@uses(PineconeFake)
async def test_pinecone_headers_body_and_rerank_units(
    client: AsyncClient, server: FakeServer
) -> None:
    response = await client.rerank("pinecone/bge-reranker-v2-m3", QUERY, DOCS, top_n=2)
    (sent,) = server.received
    assert sent.path == "/rerank"
    assert sent.headers["api-key"] == KEY
    assert sent.headers["x-pinecone-api-version"] == PineconeProvider.api_version == "2025-04"
    assert "authorization" not in sent.headers
    assert sent.json() == {
        "model": "bge-reranker-v2-m3",
        "query": QUERY,
        "documents": [{"text": d} for d in DOCS],
        "top_n": 2,
        "return_documents": False,
    }
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:2]
    assert response.usage.search_units == 1
    assert response.usage.total_tokens is None
    assert response.score_kind == "probability"


@uses(PineconeFake)
async def test_pinecone_dicts_native_or_rendered_by_model(
    client: AsyncClient, server: FakeServer
) -> None:
    fields = ["title", "body"]
    response = await client.rerank("pinecone/cohere-rerank-3.5", QUERY, RECORDS, rank_fields=fields)
    body = server.received[-1].json()
    assert body["documents"] == RECORDS
    assert body["rank_fields"] == fields
    assert [r.document for r in response.results] == [RECORDS[1], RECORDS[0]]

    # bge-reranker-v2-m3 ranks on one field only: several are rendered into ``text``.
    response = await client.rerank(
        "pinecone/bge-reranker-v2-m3", QUERY, RECORDS, rank_fields=fields
    )
    body = server.received[-1].json()
    assert body["documents"] == [{"text": text} for text in RENDERED]
    assert "rank_fields" not in body
    assert [r.document for r in response.results] == [RECORDS[1], RECORDS[0]]

    await client.rerank("pinecone/pinecone-rerank-v0", QUERY, RECORDS, rank_fields=["body"])
    body = server.received[-1].json()
    assert body["documents"] == RECORDS
    assert body["rank_fields"] == ["body"]

    # A dict without ``text`` and no rank_fields is rendered, not sent to fail.
    await client.rerank("pinecone/bge-reranker-v2-m3", QUERY, [{"body": "Reset settings"}])
    assert server.received[-1].json()["documents"] == [{"text": "body: Reset settings"}]


@uses(PineconeFake)
async def test_pinecone_parameters_and_max_chunks_per_doc(
    client: AsyncClient, server: FakeServer
) -> None:
    await client.rerank("pinecone/bge-reranker-v2-m3", QUERY, DOCS, parameters={"truncate": "END"})
    assert server.received[-1].json()["parameters"] == {"truncate": "END"}
    await client.rerank(
        "pinecone/cohere-rerank-3.5",
        QUERY,
        DOCS,
        max_chunks_per_doc=4,
        parameters={"truncate": "END"},
    )
    assert server.received[-1].json()["parameters"] == {
        "truncate": "END",
        "max_chunks_per_doc": 4,
    }
    await client.rerank("pinecone/bge-reranker-v2-m3", QUERY, DOCS, max_chunks_per_doc=4)
    body = server.received[-1].json()  # bge chunks nothing itself: rerankit does
    assert "max_chunks_per_doc" not in body
    assert "max_chunks_per_doc" not in body.get("parameters", {})
    sent = len(server.received)
    with pytest.raises(UnsupportedParameterError, match="instruction"):
        await client.rerank("pinecone/cohere-rerank-3.5", QUERY, DOCS, instruction="x")
    with pytest.raises(ConfigurationError, match="parameters must be a dict"):
        await client.rerank(
            "pinecone/cohere-rerank-3.5", QUERY, DOCS, max_chunks_per_doc=2, parameters="END"
        )
    assert len(server.received) == sent


async def test_pinecone_env_key_base_and_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="PINECONE_API_KEY"):
        await rerankit.arerank("pinecone/bge-reranker-v2-m3", QUERY, DOCS, api_base=REFUSED)
    with FakeServer(PineconeFake(KEY)) as server:
        monkeypatch.setenv("PINECONE_API_KEY", KEY)
        monkeypatch.setenv("PINECONE_API_BASE", server.url)
        response = await rerankit.arerank("pinecone/bge-reranker-v2-m3", QUERY, DOCS, top_n=1)
    assert response.results[0].index == expected_order(QUERY, DOCS)[0]
    pinecone = PineconeProvider()
    assert url_of(pinecone, "m", None) == "https://api.pinecone.io/rerank"
    assert url_of(pinecone, "m", "https://proxy.example/pc") == "https://proxy.example/pc/rerank"
    assert url_of(pinecone, "m", "https://proxy.example/rerank") == "https://proxy.example/rerank"


def test_pinecone_capabilities() -> None:
    pinecone = PineconeProvider()
    bge = pinecone.capabilities("bge-reranker-v2-m3")
    assert (bge.max_documents, bge.max_pair_tokens, bge.score_kind) == (100, 1_024, "probability")
    cohere = pinecone.capabilities("cohere-rerank-3.5")
    assert (cohere.max_documents, cohere.max_pair_tokens) == (200, 40_000)
    assert cohere.parameters == frozenset({"max_chunks_per_doc"})
    assert pinecone.capabilities("pinecone-rerank-v0").max_pair_tokens == 512
    assert pinecone.capabilities("some-new-model").structured_documents


# --- ZeroEntropy ------------------------------------------------------------------------------


class TestZeroEntropyContract(ProviderContract):
    model = "zeroentropy/zerank-2"
    fake_class = ZeroEntropyFake


@uses(ZeroEntropyFake)
async def test_zeroentropy_wire_usage_and_byte_figures(
    client: AsyncClient, server: FakeServer
) -> None:
    response = await client.rerank("zeroentropy/zerank-2", QUERY, DOCS, top_n=2)
    (sent,) = server.received
    assert sent.path == "/v1/models/rerank"
    assert sent.json() == {"model": "zerank-2", "query": QUERY, "documents": DOCS, "top_n": 2}
    expected_bytes = sum(150 + len(QUERY.encode()) + len(d.encode()) for d in DOCS)
    assert response.provider_meta == {"total_bytes": expected_bytes, "actual_latency_mode": "fast"}
    assert response.usage.total_tokens is not None
    assert response.usage.input_tokens is None
    assert response.score_kind == "probability"
    assert [r.document for r in response.results] == [
        {"text": DOCS[i]} for i in expected_order(QUERY, DOCS)[:2]
    ]


async def test_zeroentropy_latency_option_and_throttling() -> None:
    with FakeServer(ZeroEntropyFake(KEY, latency_mode="slow")) as server:
        async with AsyncClient(
            providers={"zeroentropy": {"api_key": KEY, "api_base": f"{server.url}/v1"}}
        ) as client:
            throttled = await client.rerank("zeroentropy/zerank-1", QUERY, DOCS)
            fast = await client.rerank("zeroentropy/zerank-1", QUERY, DOCS, latency="fast")
    assert throttled.provider_meta["actual_latency_mode"] == "slow"
    assert fast.provider_meta["actual_latency_mode"] == "fast"
    assert "latency" not in server.received[0].json()
    assert server.received[1].json()["latency"] == "fast"
    assert [r.path for r in server.received] == ["/v1/models/rerank"] * 2


async def test_zeroentropy_env_order_and_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeServer(ZeroEntropyFake(KEY)) as server:
        monkeypatch.setenv("ZEROENTROPY_API_BASE", server.url)
        monkeypatch.setenv("ZERO_ENTROPY_API_KEY", KEY)
        await rerankit.arerank("zeroentropy/zerank-2", QUERY, DOCS)
        monkeypatch.setenv("ZEROENTROPY_API_KEY", "sdk-name-first")
        with pytest.raises(rerankit.AuthenticationError):
            await rerankit.arerank("zeroentropy/zerank-2", QUERY, DOCS, max_retries=0)
    zeroentropy = ZeroEntropyProvider()
    assert url_of(zeroentropy, "zerank-2", None) == "https://api.zeroentropy.dev/v1/models/rerank"
    assert url_of(zeroentropy, "zerank-2", "https://gw.example/v1") == (
        "https://gw.example/v1/models/rerank"
    )


@uses(ZeroEntropyFake)
async def test_zeroentropy_limits_and_unsupported(client: AsyncClient, server: FakeServer) -> None:
    caps = ZeroEntropyProvider().capabilities("zerank-2")
    assert (caps.max_request_bytes, caps.request_byte_overhead) == (5_000_000, 150)
    with pytest.raises(UnsupportedParameterError, match="instruction"):
        await client.rerank("zeroentropy/zerank-2", QUERY, DOCS, instruction="x")
    assert server.received == []


@uses(ZeroEntropyFake)
async def test_zeroentropy_meta_ignores_a_body_without_figures(
    client: AsyncClient, server: FakeServer
) -> None:
    server.fail(Reply(body={"results": [{"index": 1, "relevance_score": 0.9}]}))
    response = await client.rerank("zeroentropy/zerank-2", QUERY, DOCS)
    assert response.provider_meta == {}
    assert response.usage.total_tokens is None
    assert [r.index for r in response.results] == [1]


# --- Contextual AI ----------------------------------------------------------------------------

CTXL = "contextual/ctxl-rerank-v2-instruct-multilingual"


class TestContextualContract(ProviderContract):
    model = CTXL
    fake_class = ContextualFake


@uses(ContextualFake)
async def test_contextual_sends_instruction_and_metadata(
    client: AsyncClient, server: FakeServer
) -> None:
    metadata = [f"date: 2024-0{i + 1}" for i in range(len(DOCS))]
    response = await client.rerank(
        CTXL, QUERY, DOCS, top_n=2, instruction="prefer recent documents", metadata=metadata
    )
    (sent,) = server.received
    assert sent.path == "/v1/rerank"
    assert sent.json() == {
        "model": "ctxl-rerank-v2-instruct-multilingual",
        "query": QUERY,
        "documents": DOCS,
        "top_n": 2,
        "instruction": "prefer recent documents",
        "metadata": metadata,
    }
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:2]
    assert response.usage == rerankit.Usage()
    assert response.score_kind == "unknown"


@uses(ContextualFake)
async def test_contextual_checks_metadata_and_refuses_token_limits(
    client: AsyncClient, server: FakeServer
) -> None:
    with pytest.raises(ConfigurationError, match="one per document"):
        await client.rerank(CTXL, QUERY, DOCS, metadata=["only one"])
    with pytest.raises(ConfigurationError, match="one per document"):
        await client.rerank(CTXL, QUERY, DOCS[:1], metadata=[1])
    assert server.received == []
    await assert_emulated(client, server, CTXL, {"max_tokens_per_doc": 100})
    response = await client.rerank(CTXL, QUERY, RECORDS, rank_fields=["title", "body"])
    assert server.received[-1].json()["documents"] == RENDERED
    assert "return_documents" not in server.received[-1].json()
    assert [r.document for r in response.results] == [RECORDS[1], RECORDS[0]]


async def test_contextual_env_and_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeServer(ContextualFake(KEY)) as server:
        monkeypatch.setenv("CONTEXTUAL_API_KEY", KEY)
        monkeypatch.setenv("CONTEXTUAL_API_BASE", f"{server.url}/v1")
        await rerankit.arerank(CTXL, QUERY, DOCS)
    assert server.received[0].path == "/v1/rerank"
    contextual = ContextualProvider()
    assert url_of(contextual, "m", None) == "https://api.contextual.ai/v1/rerank"
    caps = contextual.capabilities("ctxl-rerank-v1-instruct")
    assert caps.parameters == frozenset({"instruction"})
    assert (caps.max_request_tokens, caps.max_pair_tokens) == (400_000, 8_000)


def test_every_provider_here_declares_docs_data() -> None:
    for cls in PROVIDERS:
        assert cls.example_model.startswith(f"{cls.name}/")
        assert (cls.__doc__ or "").startswith(f"``{cls.name}/<model>``")
        assert cls.name in rerankit.available_providers()


BEARER = {"authorization": f"Bearer {KEY}"}
PINECONE_HEADERS = {"api-key": KEY, "x-pinecone-api-version": "2025-04"}
PINECONE_BODY = {"model": "bge-reranker-v2-m3", "query": "q", "documents": [{"text": "a"}]}


@pytest.mark.parametrize(
    ("fake", "path", "body", "headers", "status"),
    [
        (VoyageFake, "/v1/rerank", {"query": "q", "documents": ["a"]}, BEARER, 400),
        (VoyageFake, "/v1/rerank", {"model": "m", "query": "q", "documents": [{}]}, BEARER, 400),
        (
            VoyageFake,
            "/v1/rerank",
            {"model": "m", "query": "q", "documents": ["a"], "top_n": 1},
            BEARER,
            400,
        ),
        (VoyageFake, "/v1/rerank", {"model": "m", "query": "q", "documents": ["a"]}, {}, 401),
        (VoyageFake, "/v2/rerank", {"model": "m", "query": "q", "documents": ["a"]}, BEARER, 404),
        (
            MixedbreadFake,
            "/v1/reranking",
            {"model": "m", "query": "q", "input": ["a"], "top_k": 0},
            BEARER,
            400,
        ),
        (PineconeFake, "/rerank", PINECONE_BODY, {"api-key": KEY}, 400),
        (PineconeFake, "/rerank", PINECONE_BODY, {**PINECONE_HEADERS, **BEARER}, 401),
        (
            PineconeFake,
            "/rerank",
            {**PINECONE_BODY, "documents": ["a"]},
            PINECONE_HEADERS,
            400,
        ),
        (
            PineconeFake,
            "/rerank",
            {**PINECONE_BODY, "rank_fields": ["title", "text"]},
            PINECONE_HEADERS,
            400,
        ),
        (
            ZeroEntropyFake,
            "/v1/models/rerank",
            {"model": "zerank-2", "query": "q", "documents": ["a"], "latency": "auto"},
            BEARER,
            400,
        ),
        (
            ZeroEntropyFake,
            "/v1/models/rerank",
            {"model": "zerank-2", "query": "q", "documents": ["a" * 2_500_000] * 2},
            BEARER,
            400,
        ),
        (
            ContextualFake,
            "/v1/rerank",
            {"model": "m", "query": "q", "documents": ["a", "b"], "metadata": ["x"]},
            BEARER,
            400,
        ),
    ],
)
def test_fakes_reject_what_the_vendors_reject(
    fake: type, path: str, body: Any, headers: dict[str, str], status: int
) -> None:
    reply = fake(KEY)(post(path, body, headers))
    assert reply.status == status
