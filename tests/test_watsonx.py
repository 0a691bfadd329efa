"""watsonx.ai text rerank over real HTTP, with the IBM Cloud IAM token exchange faked too."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

import rerankit
from rerankit import AsyncClient, ConfigurationError, UnsupportedParameterError
from rerankit.providers import _auth
from rerankit.providers.watsonx import API_VERSION, WatsonxProvider
from rerankit.testing import FakeServer, ProviderContract, ReceivedRequest, Reply
from rerankit.testing._cloud import WatsonxFake

from .support import DOCS_5 as DOCS
from .support import (
    DOCUMENTS,
    FAST_RETRY,
    QUERY,
    clean_env,
    client_fixture,
    expected_order,
    fake_fixture,
    server_fixture,
)

pytestmark = pytest.mark.anyio

API_KEY = "ibm-cloud-api-key-0123456789"
ZEN = "zen-api-key-0123456789"
READY = "ready-bearer-token-0123456789"
PROJECT = "proj-1234"
MODEL = "watsonx/cross-encoder/ms-marco-minilm-l-12-v2"

_clean_provider_env = clean_env(
    WatsonxProvider,
    "WATSONX_TOKEN",
    "WATSONX_ZENAPIKEY",
    "WATSONX_PROJECT_ID",
    "WATSONX_SPACE_ID",
    "WATSONX_IAM_URL",
)

fake = fake_fixture(lambda: WatsonxFake({READY}, api_keys={API_KEY}, zen_api_keys={ZEN}))
server = server_fixture()


def settings(server: FakeServer, **options: Any) -> dict[str, Any]:
    return {
        "api_key": API_KEY,
        "api_base": server.url,
        "options": {"project_id": PROJECT, "iam_url": f"{server.url}/identity/token", **options},
    }


client = client_fixture(lambda s: {"watsonx": settings(s)}, timeout=10)


def reranks(server: FakeServer) -> list[ReceivedRequest]:
    return [r for r in server.received if r.path == "/ml/v1/text/rerank"]


async def test_exchanges_the_api_key_and_sends_the_documented_request(
    client: AsyncClient, server: FakeServer
) -> None:
    response = await client.rerank(MODEL, QUERY, DOCS, top_n=3)

    iam, sent = server.received
    assert iam.path == "/identity/token"
    assert iam.headers["content-type"] == "application/x-www-form-urlencoded"
    assert iam.body == (
        b"grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey=" + API_KEY.encode()
    )
    assert sent.path == "/ml/v1/text/rerank"
    assert sent.query == {"version": API_VERSION}
    assert sent.headers["authorization"] == "Bearer iam-token-1"
    assert sent.json() == {
        "model_id": "cross-encoder/ms-marco-minilm-l-12-v2",
        "query": QUERY,
        "inputs": [{"text": d} for d in DOCS],
        "parameters": {"return_options": {"inputs": False, "top_n": 3}},
        "project_id": PROJECT,
    }
    assert API_KEY not in str(sent.headers) + sent.body.decode()
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:3]
    assert [r.document for r in response.results] == [
        {"text": DOCS[i]} for i in expected_order(QUERY, DOCS)[:3]
    ]
    assert response.score_kind == "logit"
    assert response.usage.input_tokens == sum(len(d.split()) + 3 for d in DOCS)
    assert response.usage.search_units is None
    assert response.usage.total_tokens is None
    assert response.meta == {"tokens": {"input_tokens": response.usage.input_tokens}}


async def test_the_iam_token_is_cached_and_renewed_before_expiry(
    client: AsyncClient, fake: WatsonxFake, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        await client.rerank(MODEL, QUERY, DOCS)
    assert fake.iam_requests == 1

    later = time.time() + 3400  # within five minutes of the one-hour expiry
    monkeypatch.setattr(_auth, "now", lambda: later)
    await client.rerank(MODEL, QUERY, DOCS)
    await client.rerank(MODEL, QUERY, DOCS)
    assert fake.iam_requests == 2
    assert [r.headers["authorization"] for r in reranks(server)] == [
        *["Bearer iam-token-1"] * 3,
        *["Bearer iam-token-2"] * 2,
    ]


async def test_concurrent_calls_share_one_exchange(server: FakeServer) -> None:
    fake = WatsonxFake(api_keys={API_KEY}, iam_delay=0.2)
    server.handler = fake
    async with AsyncClient(providers={"watsonx": settings(server)}) as client:
        await asyncio.gather(*(client.rerank(MODEL, QUERY, DOCS) for _ in range(8)))
    assert fake.iam_requests == 1
    assert len(reranks(server)) == 8


async def test_each_api_key_gets_its_own_token(server: FakeServer, fake: WatsonxFake) -> None:
    fake.api_keys.add("second-key-0123")
    async with AsyncClient(providers={"watsonx": settings(server)}) as client:
        await client.rerank(MODEL, QUERY, DOCS)
        await client.rerank(MODEL, QUERY, DOCS, api_key="second-key-0123")
        await client.rerank(MODEL, QUERY, DOCS)
    assert fake.iam_requests == 2
    assert [r.headers["authorization"] for r in reranks(server)] == [
        "Bearer iam-token-1",
        "Bearer iam-token-2",
        "Bearer iam-token-1",
    ]


async def test_authentication_order(
    server: FakeServer, fake: WatsonxFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.tokens.add("other-token")
    fake.zen_api_keys.add("zen-2")
    monkeypatch.setenv("WATSONX_APIKEY", API_KEY)
    monkeypatch.setenv("WATSONX_ZENAPIKEY", ZEN)
    monkeypatch.setenv("WATSONX_TOKEN", READY)
    monkeypatch.setenv("WATSONX_IAM_URL", f"{server.url}/identity/token")
    base = {"api_base": server.url, "options": {"project_id": PROJECT}}
    async with AsyncClient(providers={"watsonx": base}) as client:
        await client.rerank(MODEL, QUERY, DOCS, token="other-token", zen_api_key="zen-2")
        await client.rerank(MODEL, QUERY, DOCS, zen_api_key="zen-2")
        monkeypatch.delenv("WATSONX_TOKEN")
        await client.rerank(MODEL, QUERY, DOCS, zen_api_key="zen-2")
        await client.rerank(MODEL, QUERY, DOCS)
        monkeypatch.delenv("WATSONX_ZENAPIKEY")
        await client.rerank(MODEL, QUERY, DOCS)
    assert [
        r.headers.get("authorization") for r in server.received if r.path != "/identity/token"
    ] == [
        "Bearer other-token",
        f"Bearer {READY}",
        "ZenApiKey zen-2",
        f"ZenApiKey {ZEN}",
        "Bearer iam-token-1",
    ]


async def test_api_key_and_base_environment_variables_in_order(
    server: FakeServer, fake: WatsonxFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATSONX_PROJECT_ID", PROJECT)
    monkeypatch.setenv("WATSONX_IAM_URL", f"{server.url}/identity/token")
    monkeypatch.setenv("WATSONX_API_KEY", "second-in-order")
    monkeypatch.setenv("WATSONX_APIKEY", API_KEY)
    for name in ("WML_URL", "WX_URL", "WATSONX_URL"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("WATSONX_API_BASE", server.url)
    async with AsyncClient() as client:
        await client.rerank(MODEL, QUERY, DOCS)
        monkeypatch.delenv("WATSONX_API_BASE")
        monkeypatch.setenv("WATSONX_URL", server.url)
        await client.rerank(MODEL, QUERY, DOCS)
        for name in ("WATSONX_URL", "WX_URL", "WML_URL"):
            monkeypatch.delenv(name)
        with pytest.raises(
            ConfigurationError, match="WATSONX_API_BASE or WATSONX_URL or WX_URL or WML_URL"
        ):
            await client.rerank(MODEL, QUERY, DOCS)
    assert fake.iam_requests == 1
    assert len(reranks(server)) == 2


async def test_project_or_space(
    client: AsyncClient, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.rerank(MODEL, QUERY, DOCS, project_id=None, space_id="space-1")
    assert server.received[-1].json()["space_id"] == "space-1"
    assert "project_id" not in server.received[-1].json()
    with pytest.raises(ConfigurationError, match="not both"):
        await client.rerank(MODEL, QUERY, DOCS, space_id="space-1")
    monkeypatch.setenv("WATSONX_SPACE_ID", "space-env")
    await client.rerank(MODEL, QUERY, DOCS, project_id=None)
    assert server.received[-1].json()["space_id"] == "space-env"
    monkeypatch.setenv("WATSONX_PROJECT_ID", "project-env")
    await client.rerank(MODEL, QUERY, DOCS, project_id=None)
    assert server.received[-1].json()["project_id"] == "project-env"
    await client.rerank(MODEL, QUERY, DOCS)
    assert server.received[-1].json()["project_id"] == PROJECT
    monkeypatch.delenv("WATSONX_PROJECT_ID")
    monkeypatch.delenv("WATSONX_SPACE_ID")
    count = len(server.received)
    with pytest.raises(ConfigurationError, match="WATSONX_PROJECT_ID or WATSONX_SPACE_ID"):
        await client.rerank(MODEL, QUERY, DOCS, project_id=None)
    assert len(server.received) == count


async def test_api_version_and_url_joining(client: AsyncClient, server: FakeServer) -> None:
    await client.rerank(MODEL, QUERY, DOCS, api_version="2025-02-06")
    assert server.received[-1].query == {"version": "2025-02-06"}
    with pytest.raises(ConfigurationError, match="api_version must be a date"):
        await client.rerank(MODEL, QUERY, DOCS, api_version="v1")
    for base in (f"{server.url}/", f"{server.url}/ml/v1", f"{server.url}/ml/v1/text/rerank"):
        await client.rerank(MODEL, QUERY, DOCS, api_base=base)
        assert server.received[-1].path == "/ml/v1/text/rerank"
        assert server.received[-1].query == {"version": API_VERSION}


async def test_max_tokens_per_doc_is_truncate_input_tokens(
    client: AsyncClient, server: FakeServer
) -> None:
    response = await client.rerank(MODEL, QUERY, DOCS, max_tokens_per_doc=2)
    assert server.received[-1].json()["parameters"] == {
        "truncate_input_tokens": 2,
        "return_options": {"inputs": False},
    }
    assert response.results[0].document == {"text": DOCS[response.results[0].index]}
    with pytest.raises(UnsupportedParameterError, match="instruction"):
        await client.rerank(MODEL, QUERY, DOCS, instruction="x")
    with pytest.warns(rerankit.RerankitWarning, match="instruction"):
        await client.rerank(MODEL, QUERY, DOCS, instruction="x", drop_params=True)
    await client.rerank(MODEL, QUERY, DOCS, max_chunks_per_doc=3)  # rerankit chunks instead
    assert "max_chunks_per_doc" not in str(server.received[-1].json())


async def test_dicts_are_rendered_into_text(client: AsyncClient, server: FakeServer) -> None:
    docs = [
        {"title": "Billing", "body": "Invoices are sent monthly.", "id": 1},
        {"title": "Password reset", "body": "Open settings to reset it.", "id": 2},
    ]
    response = await client.rerank(MODEL, QUERY, docs, rank_fields=["title", "body"])
    assert server.received[-1].json()["inputs"] == [
        {"text": "title: Billing\nbody: Invoices are sent monthly."},
        {"text": "title: Password reset\nbody: Open settings to reset it."},
    ]
    assert [r.document for r in response.results] == [docs[1], docs[0]]


async def test_return_options_and_extra_body_pass_through(
    client: AsyncClient, server: FakeServer
) -> None:
    await client.rerank(
        MODEL, QUERY, DOCS, top_n=2, return_options={"query": True, "inputs": True, "top_n": 9}
    )
    assert server.received[-1].json()["parameters"]["return_options"] == {
        "query": True,
        "inputs": False,
        "top_n": 2,
    }
    with pytest.raises(rerankit.BadRequestError, match="unknown fields"):
        await client.rerank(MODEL, QUERY, DOCS, extra_body={"moderations": {}})
    with pytest.raises(ConfigurationError, match="return_options must be a dict"):
        await client.rerank(MODEL, QUERY, DOCS, return_options=True)


async def test_a_rejected_api_key_is_an_authentication_error(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with AsyncClient(providers={"watsonx": settings(server)}, retry=FAST_RETRY) as client:
        with pytest.raises(rerankit.AuthenticationError, match="IBM Cloud IAM") as info:
            await client.rerank(MODEL, QUERY, DOCS, api_key="wrong-key-0123456789")
    assert info.value.status_code == 400
    assert "could not be found" in str(info.value)
    assert reranks(server) == []
    for text in (str(info.value), repr(info.value), info.value.body or "", caplog.text):
        assert "wrong-key-0123456789" not in text


async def test_iam_outages_are_retried(client: AsyncClient, server: FakeServer) -> None:
    server.fail(Reply(status=503, body={"errorMessage": "busy"}))
    response = await client.rerank(MODEL, QUERY, DOCS)
    assert response.results
    assert [r.path for r in server.received] == ["/identity/token"] * 2 + ["/ml/v1/text/rerank"]


async def test_a_rejected_iam_token_is_dropped_and_exchanged_again(
    client: AsyncClient, fake: WatsonxFake, server: FakeServer
) -> None:
    await client.rerank(MODEL, QUERY, DOCS)
    fake.tokens.clear()  # revoked
    with pytest.raises(rerankit.AuthenticationError):
        await client.rerank(MODEL, QUERY, DOCS)
    await client.rerank(MODEL, QUERY, DOCS)
    assert fake.iam_requests == 2


async def test_no_credentials_names_every_variable(server: FakeServer) -> None:
    async with AsyncClient() as client:
        with pytest.raises(ConfigurationError) as info:
            await client.rerank(MODEL, QUERY, DOCS, api_base=server.url, project_id=PROJECT)
    for name in ("WATSONX_TOKEN", "WATSONX_ZENAPIKEY", "WATSONX_APIKEY", "WATSONX_API_KEY"):
        assert name in str(info.value)
    assert server.received == []


async def test_answers_that_do_not_fit_raise(client: AsyncClient, server: FakeServer) -> None:
    await client.rerank(MODEL, QUERY, DOCS)  # the token is cached: faults hit the rerank call
    server.fail(Reply(body={"results": [{"index": 0}], "model_id": "m"}))
    with pytest.raises(rerankit.ResponseValidationError, match="score"):
        await client.rerank(MODEL, QUERY, DOCS)
    server.fail(Reply(body={"model_id": "m"}))
    with pytest.raises(rerankit.ResponseValidationError, match="results"):
        await client.rerank(MODEL, QUERY, DOCS)
    server.fail(Reply(body={"results": [{"index": 9, "score": 1.5}]}))
    with pytest.raises(rerankit.ResponseValidationError, match="out of range"):
        await client.rerank(MODEL, QUERY, DOCS)


async def test_warnings_and_model_version_are_kept(client: AsyncClient, server: FakeServer) -> None:
    await client.rerank(MODEL, QUERY, DOCS)
    server.fail(
        Reply(
            body={
                "model_id": "m",
                "model_version": "2.0.0",
                "results": [{"index": 1, "score": -0.92}, {"index": 0, "score": 2.93}],
                "input_token_count": 12,
                "system": {"warnings": [{"message": "model deprecated"}]},
            }
        )
    )
    response = await client.rerank(MODEL, QUERY, DOCS[:2])
    assert [(r.index, r.relevance_score) for r in response.results] == [(0, 2.93), (1, -0.92)]
    assert response.provider_meta == {
        "model_version": "2.0.0",
        "warnings": [{"message": "model deprecated"}],
    }
    assert response.usage.input_tokens == 12


def test_capabilities_and_class_data() -> None:
    provider = WatsonxProvider()
    caps = provider.capabilities("cross-encoder/ms-marco-minilm-l-12-v2")
    assert caps.score_kind == "logit"
    assert caps.parameters == frozenset({"max_tokens_per_doc"})
    assert caps.max_pair_tokens == 512
    assert provider.capabilities("ibm/other").score_kind == "logit"
    assert WatsonxProvider.api_base_required
    assert not WatsonxProvider.api_key_required
    assert (WatsonxProvider.__doc__ or "").startswith("``watsonx/")


class TestWatsonxContract(ProviderContract):
    model = "watsonx/cross-encoder/ms-marco-minilm-l-12-v2"
    api_key = "contract-bearer-token"
    """A ready bearer token (the ``token`` option)."""

    def fake(self) -> WatsonxFake:
        return WatsonxFake({self.api_key or ""})

    def settings(self, server: FakeServer) -> dict[str, Any]:
        return {"api_base": server.url, "options": {"token": self.api_key, "project_id": "p"}}


class TestWatsonxZenApiKeyContract(ProviderContract):
    model = "watsonx/cross-encoder/ms-marco-minilm-l-12-v2"
    api_key = "contract-zen-api-key"

    def fake(self) -> WatsonxFake:
        return WatsonxFake(zen_api_keys={self.api_key or ""})

    def settings(self, server: FakeServer) -> dict[str, Any]:
        return {"api_base": server.url, "options": {"zen_api_key": self.api_key, "space_id": "s"}}


class TestWatsonxIAMContract(ProviderContract):
    """The same contract with the API key exchanged at a separate fake IAM server."""

    model = "watsonx/cross-encoder/ms-marco-minilm-l-12-v2"
    api_key = "contract-ibm-cloud-api-key"

    @pytest.fixture(autouse=True)
    def _iam_server(self) -> Iterator[None]:
        self.iam = WatsonxFake(api_keys={self.api_key or ""})
        with FakeServer(self.iam) as server:
            self.iam_url = f"{server.url}/identity/token"
            yield

    def fake(self) -> WatsonxFake:
        return WatsonxFake(self.iam.tokens)

    def settings(self, server: FakeServer) -> dict[str, Any]:
        return {
            "api_key": self.api_key,
            "api_base": server.url,
            "options": {"iam_url": self.iam_url, "project_id": "p"},
        }

    def test_contract_key_is_sent_only_when_set(self) -> None:
        """The API gets the IAM token the key was exchanged for, never the key itself."""
        with self.serve() as (server, client):
            client.rerank(self.model, QUERY, DOCUMENTS[:2])
        (sent,) = server.received
        assert sent.headers["authorization"] == "Bearer iam-token-1"
        assert (self.api_key or "") not in str(sent.headers) + sent.body.decode()
        assert self.iam.iam_requests == 1


async def test_token_cache_renews_early_and_shares_one_fetch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1_000.0]
    monkeypatch.setattr(_auth, "now", lambda: clock[0])
    cache: _auth.TokenCache[str] = _auth.TokenCache(margin=300)
    fetched: list[str] = []

    async def fetch(lifetime: float | None) -> tuple[str, float | None]:
        await asyncio.sleep(0.01)
        fetched.append(f"t{len(fetched) + 1}")
        return fetched[-1], None if lifetime is None else clock[0] + lifetime

    values = await asyncio.gather(*(cache.get("k", lambda: fetch(3600)) for _ in range(5)))
    assert values == ["t1"] * 5
    clock[0] += 3600 - 301
    assert await cache.get("k", lambda: fetch(3600)) == "t1"
    clock[0] += 2  # inside the five-minute margin
    assert await cache.get("k", lambda: fetch(60)) == "t2"
    clock[0] += 29  # a short-lived value renews halfway through its life
    assert await cache.get("k", lambda: fetch(60)) == "t2"
    clock[0] += 2
    assert await cache.get("k", lambda: fetch(None)) == "t3"
    clock[0] += 10**9
    assert await cache.get("k", lambda: fetch(None)) == "t3"
    cache.forget("k")
    assert await cache.get("k", lambda: fetch(None)) == "t4"
    assert await cache.get("other", lambda: fetch(None)) == "t5"
    assert "t5" not in repr(cache)


def test_token_cache_works_across_event_loops() -> None:
    cache: _auth.TokenCache[int] = _auth.TokenCache()
    calls = iter(range(10))

    async def use() -> list[int]:
        async def fetch() -> tuple[int, float | None]:
            await asyncio.sleep(0.01)
            return next(calls), _auth.now() + 3600

        cache.forget("k")
        return list(await asyncio.gather(*(cache.get("k", fetch) for _ in range(3))))

    assert asyncio.run(use()) == [0, 0, 0]
    assert asyncio.run(use()) == [1, 1, 1]
