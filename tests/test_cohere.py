"""The Cohere provider over real HTTP against a fake Cohere server that checks each request."""

from __future__ import annotations

import pytest

import rerankit
from rerankit import AsyncClient, ConfigurationError, UnsupportedParameterError
from rerankit.testing import CohereFake, FakeServer, ProviderContract, ReceivedRequest, Reply

from .conftest import API_KEY
from .support import DOCS_5 as DOCS
from .support import QUERY, expected_order

pytestmark = pytest.mark.anyio


async def test_v2_by_default_sends_the_documented_request(
    client: AsyncClient, cohere_server: FakeServer
) -> None:
    response = await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, top_n=3)

    (sent,) = cohere_server.received
    assert sent.path == "/v2/rerank"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {"model": "rerank-v3.5", "query": QUERY, "documents": DOCS, "top_n": 3}
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:3]
    assert [r.document for r in response.results] == [
        {"text": DOCS[i]} for i in expected_order(QUERY, DOCS)[:3]
    ]
    assert response.provider == "cohere"
    assert response.model == "rerank-v3.5"
    assert response.api_version == "v2"
    assert response.id == "fake-1"
    assert response.score_kind == "probability"
    assert response.usage.search_units == 1
    assert response.usage.input_tokens is None
    assert response.meta == {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}


async def test_litellm_style_call_site_works_unchanged(cohere_server: FakeServer) -> None:
    response = await rerankit.arerank(
        model="cohere/rerank-v3.5",
        query=QUERY,
        documents=DOCS,
        top_n=2,
        return_documents=True,
        api_key=API_KEY,
        api_base=cohere_server.url,
    )
    best = expected_order(QUERY, DOCS)[0]
    assert response.results[0]["index"] == best
    assert response.results[0]["document"]["text"] == DOCS[best]
    assert response.results[0].relevance_score == response.results[0]["relevance_score"]
    assert response["results"][1]["index"] == expected_order(QUERY, DOCS)[1]
    assert response.meta["billed_units"]["search_units"] == 1


async def test_custom_llm_provider_alias_and_bare_model(
    client: AsyncClient, cohere_server: FakeServer
) -> None:
    await client.rerank("rerank-v3.5", QUERY, DOCS, custom_llm_provider="cohere")
    await client.rerank("rerank-v3.5", QUERY, DOCS)
    await client.rerank("rerank-english-v3.0", QUERY, DOCS, provider="cohere")
    assert [r.json()["model"] for r in cohere_server.received] == [
        "rerank-v3.5",
        "rerank-v3.5",
        "rerank-english-v3.0",
    ]


async def test_return_documents_false_gives_no_documents(client: AsyncClient) -> None:
    response = await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, return_documents=False)
    assert all(r.document is None for r in response.results)
    assert "document" not in response.results[0]
    assert sorted(r.index for r in response.results) == list(range(len(DOCS)))


async def test_v1_when_base_url_ends_in_v1_rerank(cohere_server: FakeServer) -> None:
    async with AsyncClient() as client:
        response = await client.rerank(
            "cohere/rerank-v3.5",
            QUERY,
            DOCS,
            api_key=API_KEY,
            api_base=f"{cohere_server.url}/v1/rerank",
        )
    (sent,) = cohere_server.received
    assert sent.path == "/v1/rerank"
    assert sent.json()["return_documents"] is False
    assert response.api_version == "v1"
    assert [r.document["text"] for r in response.results] == [  # type: ignore[index]
        DOCS[i] for i in expected_order(QUERY, DOCS)
    ]


async def test_v1_when_max_chunks_per_doc_is_given(
    client: AsyncClient, cohere_server: FakeServer
) -> None:
    response = await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, max_chunks_per_doc=4)
    (sent,) = cohere_server.received
    assert sent.path == "/v1/rerank"
    assert sent.json()["max_chunks_per_doc"] == 4
    assert response.api_version == "v1"


async def test_v1_when_asked_for_and_contradictions_raise(
    client: AsyncClient, cohere_server: FakeServer
) -> None:
    await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, api_version="v1")
    assert cohere_server.received[-1].path == "/v1/rerank"
    with pytest.raises(ConfigurationError, match="contradicts the base URL"):
        await client.rerank(
            "cohere/rerank-v3.5",
            QUERY,
            DOCS,
            api_version="v2",
            api_base=f"{cohere_server.url}/v1/rerank",
        )
    with pytest.raises(ConfigurationError, match="api_version must be 'v1' or 'v2'"):
        await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, api_version="v3")
    assert len(cohere_server.received) == 1


async def test_what_a_version_lacks_rerankit_chunks_itself(
    client: AsyncClient, cohere_server: FakeServer
) -> None:
    long = " ".join(f"clause{i} about password settings" for i in range(200))
    docs = [*DOCS, long]
    # v2 has no max_chunks_per_doc: rerankit chunks at the model's window (no chunk needed here)
    await client.rerank("cohere/rerank-v3.5", QUERY, docs, api_version="v2", max_chunks_per_doc=3)
    sent = cohere_server.received[-1]
    assert sent.path == "/v2/rerank"
    assert "max_chunks_per_doc" not in sent.json()
    # v1 has no max_tokens_per_doc: rerankit cuts the long document into 100-token windows
    response = await client.rerank(
        "cohere/rerank-v3.5", QUERY, docs, api_version="v1", max_tokens_per_doc=100
    )
    sent = cohere_server.received[-1]
    assert sent.path == "/v1/rerank"
    assert "max_tokens_per_doc" not in sent.json()
    assert len(sent.json()["documents"]) > len(docs)
    assert sorted(r.index for r in response.results) == list(range(len(docs)))
    assert response.results[[r.index for r in response.results].index(len(DOCS))].document == {
        "text": long
    }


async def test_max_tokens_per_doc_and_priority_go_on_the_v2_wire(
    client: AsyncClient, cohere_server: FakeServer
) -> None:
    await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, max_tokens_per_doc=512, priority=3)
    body = cohere_server.received[-1].json()
    assert body["max_tokens_per_doc"] == 512
    assert body["priority"] == 3


async def test_drop_params_drops_with_a_warning(
    client: AsyncClient, cohere_server: FakeServer
) -> None:
    with pytest.warns(rerankit.RerankitWarning, match="instruction"):
        await client.rerank(
            "cohere/rerank-v3.5", QUERY, DOCS, instruction="be strict", drop_params=True
        )
    with pytest.raises(UnsupportedParameterError, match="instruction"):
        await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, instruction="be strict")
    with pytest.raises(ConfigurationError, match="unknown argument 'temperature'"):
        await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, temperature=0.2)
    with pytest.warns(rerankit.RerankitWarning, match="temperature"):
        await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, temperature=0.2, drop_params=True)
    assert all("instruction" not in r.json() for r in cohere_server.received)
    assert all("temperature" not in r.json() for r in cohere_server.received)


async def test_dict_documents_are_rendered_on_v2_and_native_on_v1(
    client: AsyncClient, cohere_server: FakeServer
) -> None:
    docs = [
        {"title": "Billing", "body": "Invoices are sent monthly.", "id": 1},
        {"title": "Password reset", "body": "Open settings to reset it.", "id": 2},
    ]
    response = await client.rerank("cohere/rerank-v3.5", QUERY, docs, rank_fields=["title", "body"])
    sent = cohere_server.received[-1].json()
    assert sent["documents"] == [
        "title: Billing\nbody: Invoices are sent monthly.",
        "title: Password reset\nbody: Open settings to reset it.",
    ]
    assert "rank_fields" not in sent
    assert [r.document for r in response.results] == [docs[1], docs[0]]
    assert response.results[0].document is docs[1]

    await client.rerank(
        "cohere/rerank-v3.5", QUERY, docs, rank_fields=["title", "body"], api_version="v1"
    )
    sent = cohere_server.received[-1].json()
    assert sent["documents"] == docs
    assert sent["rank_fields"] == ["title", "body"]


async def test_key_and_base_from_environment_in_order(
    cohere_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COHERE_API_BASE", cohere_server.url)
    monkeypatch.setenv("CO_API_KEY", API_KEY)
    async with AsyncClient() as client:
        await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)
        monkeypatch.setenv("COHERE_API_KEY", "wrong-key-first-in-order")
        with pytest.raises(rerankit.AuthenticationError):
            await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)
        await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, api_key=API_KEY)
    keys = [r.headers["authorization"] for r in cohere_server.received]
    assert keys == [f"Bearer {API_KEY}", "Bearer wrong-key-first-in-order", f"Bearer {API_KEY}"]


async def test_missing_key_names_the_variables_before_any_request(
    cohere_server: FakeServer,
) -> None:
    async with AsyncClient() as client:
        with pytest.raises(ConfigurationError, match="COHERE_API_KEY or CO_API_KEY"):
            await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, api_base=cohere_server.url)
    assert cohere_server.received == []


async def test_unsorted_provider_answer_is_sorted_and_cut(cohere_server: FakeServer) -> None:
    cohere_server.handler.sort = False  # type: ignore[attr-defined]
    docs = ["b", "a b", "a", "a b", "c"]
    async with AsyncClient(
        providers={"cohere": {"api_key": API_KEY, "api_base": cohere_server.url}}
    ) as client:
        response = await client.rerank("cohere/rerank-v3.5", "a b", docs, top_n=3)
    assert [r.index for r in response.results] == [1, 3, 0]
    assert [r.relevance_score for r in response.results] == [1.0, 1.0, 0.5]


class TestCohereContract(ProviderContract):
    model = "cohere/rerank-v3.5"
    fake_class = CohereFake


class TestCohereV1Contract(ProviderContract):
    model = "cohere/rerank-english-v3.0"
    fake_class = CohereFake

    def settings(self, server: FakeServer) -> dict[str, object]:
        return {"api_key": self.api_key, "api_base": server.url, "options": {"api_version": "v1"}}


class TestAzureAIContract(ProviderContract):
    model = "azure_ai/Cohere-rerank-v3.5"
    fake_class = CohereFake


def test_azure_ai_uses_v1_its_env_and_keeps_the_model_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class GroupedFake(CohereFake):
        def __call__(self, request: ReceivedRequest) -> Reply:
            reply = super().__call__(request)
            reply.headers["azureml-model-group"] = "offer-cohere-rerank-paygo"
            return reply

    with FakeServer(GroupedFake("azure-key")) as server:
        monkeypatch.setenv("AZURE_AI_API_KEY", "azure-key")
        monkeypatch.setenv("AZURE_AI_API_BASE", server.url)
        response = rerankit.rerank("azure_ai/Cohere-rerank-v3.5", QUERY, DOCS, top_n=1)
        v2 = rerankit.rerank("azure_ai/Cohere-rerank-v3.5", QUERY, DOCS, api_version="v2")
    assert [r.path for r in server.received] == ["/v1/rerank", "/v2/rerank"]
    assert response.results[0].index == expected_order(QUERY, DOCS)[0]
    assert response.provider_meta == {"model_group": "offer-cohere-rerank-paygo"}
    assert v2.api_version == "v2"
    monkeypatch.delenv("AZURE_AI_API_BASE")
    with pytest.raises(
        ConfigurationError, match="no base URL for provider 'azure_ai'.*AZURE_AI_API_BASE"
    ):
        rerankit.rerank("azure_ai/Cohere-rerank-v3.5", QUERY, DOCS)
