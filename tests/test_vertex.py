"""Vertex AI ranking over real HTTP: ready tokens, and real google-auth ADC against a fake."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rerankit
from rerankit import AsyncClient, ConfigurationError, UnsupportedParameterError
from rerankit.providers import _auth, vertex
from rerankit.providers.vertex import VertexAIProvider
from rerankit.testing import FakeServer, ProviderContract, Reply, overlap_score
from rerankit.testing._cloud import VertexFake

from .support import DOCS_5 as DOCS
from .support import (
    DOCUMENTS,
    NO_RETRY,
    QUERY,
    clear_env,
    client_fixture,
    expected_order,
    fake_fixture,
    server_fixture,
)

pytestmark = pytest.mark.anyio

PROJECT = "test-project"
TOKEN = "ya29.ready-token-0123456789"
MODEL = "vertex_ai/semantic-ranker-default@latest"
ROUTE = f"/v1/projects/{PROJECT}/locations/global/rankingConfigs/default_ranking_config:rank"
GOOGLE_ENV = (
    "VERTEXAI_PROJECT",
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_QUOTA_PROJECT",
    "GOOGLE_AUTH_TRUST_BOUNDARY_ENABLED",
    "GCE_METADATA_ROOT",
    "GCE_METADATA_HOST",
    "GCE_METADATA_IP",
)


@pytest.fixture(autouse=True)
def _no_machine_google(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No project, credential file, gcloud login or metadata server of this machine is used."""
    clear_env(monkeypatch, VertexAIProvider, *GOOGLE_ENV)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    # google-auth reads NO_GCE_CHECK once, at import; skip the metadata-server probe directly.
    from google.auth.compute_engine import _metadata

    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", True)


fake = fake_fixture(lambda: VertexFake({TOKEN}, project=PROJECT))
server = server_fixture()
client = client_fixture(
    lambda s: {"vertex_ai": {"api_key": TOKEN, "api_base": s.url, "options": {"project": PROJECT}}},
    timeout=10,
)


@pytest.fixture
def adc(
    fake: VertexFake, server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A service-account key file as Application Default Credentials; tokens from the fake."""
    path = tmp_path / "service-account.json"
    info = fake.service_account_info(f"{server.url}/token", project_id=PROJECT)
    path.write_text(json.dumps(info))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    return path


def rank_requests(server: FakeServer) -> list[Any]:
    return [r for r in server.received if r.path.endswith(":rank")]


async def test_sends_the_documented_request_with_a_ready_token(
    client: AsyncClient, server: FakeServer
) -> None:
    response = await client.rerank(MODEL, QUERY, DOCS, top_n=3)

    (sent,) = server.received
    assert sent.path == ROUTE
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["x-goog-user-project"] == PROJECT
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {
        "model": "semantic-ranker-default@latest",
        "query": QUERY,
        "records": [{"id": str(i), "content": d} for i, d in enumerate(DOCS)],
        "ignoreRecordDetailsInResponse": True,
        "topN": 3,
    }
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:3]
    assert [r.document for r in response.results] == [
        {"text": DOCS[i]} for i in expected_order(QUERY, DOCS)[:3]
    ]
    assert response.score_kind == "unknown"
    assert response.usage == rerankit.Usage()
    assert response.id is None


async def test_missing_scores_are_zero_and_every_record_maps_back(
    client: AsyncClient, server: FakeServer
) -> None:
    response = await client.rerank(MODEL, QUERY, DOCS, return_documents=False)
    assert "topN" not in server.received[-1].json()
    scores = {r.index: r.relevance_score for r in response.results}
    assert scores == {i: overlap_score(QUERY, d) for i, d in enumerate(DOCS)}
    assert scores[0] == 0.0  # the fake, like proto3 JSON, left this score out


async def test_answers_that_do_not_map_back_raise(client: AsyncClient, server: FakeServer) -> None:
    server.fail(Reply(body={"records": [{"id": "9", "score": 0.5}]}))
    with pytest.raises(rerankit.ResponseValidationError, match="record id '9'"):
        await client.rerank(MODEL, QUERY, DOCS)
    server.fail(Reply(body={}))
    with pytest.raises(rerankit.ResponseValidationError, match="records"):
        await client.rerank(MODEL, QUERY, DOCS)
    server.fail(Reply(body={"records": [{"id": "1", "score": "high"}]}))
    with pytest.raises(rerankit.ResponseValidationError):
        await client.rerank(MODEL, QUERY, DOCS)
    server.fail(Reply(body={"records": [{"id": "1", "score": 0.2}, {"id": "1", "score": 0.1}]}))
    with pytest.raises(rerankit.ResponseValidationError, match="more than once"):
        await client.rerank(MODEL, QUERY, DOCS)


async def test_dicts_become_records_with_titles(client: AsyncClient, server: FakeServer) -> None:
    docs: list[Any] = [
        {"title": "Billing", "content": "Invoices are sent monthly.", "url": "https://x"},
        {"title": "Password reset", "body": "Open settings to reset it."},
        {"text": "Reset the router settings.", "id": 3},
        "The app works offline.",
        {"id": 4, "body": "Settings sync across devices."},
    ]
    response = await client.rerank(MODEL, QUERY, docs)
    assert server.received[-1].json()["records"] == [
        {"id": "0", "title": "Billing", "content": "Invoices are sent monthly."},
        {"id": "1", "title": "Password reset", "content": "Open settings to reset it."},
        {"id": "2", "content": "Reset the router settings."},
        {"id": "3", "content": "The app works offline."},
        {"id": "4", "content": "id: 4\nbody: Settings sync across devices."},
    ]
    assert {r.index: r.document for r in response.results}[1] is docs[1]

    records = [
        {"title": "Billing", "body": "Invoices.", "n": 1},
        {"title": "Reset", "body": "x", "n": 2},
    ]
    await client.rerank(MODEL, QUERY, records, rank_fields=["title", "body"])
    assert server.received[-1].json()["records"][0] == {
        "id": "0",
        "title": "Billing",
        "content": "Invoices.",
    }
    await client.rerank(MODEL, QUERY, records, rank_fields=["body", "n"])
    assert server.received[-1].json()["records"][1] == {"id": "1", "content": "body: x\nn: 2"}


async def test_project_option_and_environment_in_order(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AsyncClient(
        providers={"vertex_ai": {"api_key": TOKEN, "api_base": server.url}}
    ) as c:
        with pytest.raises(ConfigurationError, match="VERTEXAI_PROJECT or GOOGLE_CLOUD_PROJECT"):
            await c.rerank(MODEL, QUERY, DOCS)
        assert server.received == []
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
        await c.rerank(MODEL, QUERY, DOCS)
        monkeypatch.setenv("VERTEXAI_PROJECT", "other-project")
        with pytest.raises(rerankit.NotFoundError):
            await c.rerank(MODEL, QUERY, DOCS)
        await c.rerank(MODEL, QUERY, DOCS, project=PROJECT)
        await c.rerank(MODEL, QUERY, DOCS, vertex_project=PROJECT)
    assert [r.path for r in server.received] == [
        ROUTE,
        ROUTE.replace(PROJECT, "other-project"),
        ROUTE,
        ROUTE,
    ]
    assert server.received[1].headers["x-goog-user-project"] == "other-project"


async def test_location_and_base_url_variants(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = VertexFake({TOKEN}, project=PROJECT, location="eu")
    with FakeServer(fake) as server:
        async with AsyncClient() as client:
            for base in (server.url, f"{server.url}/", f"{server.url}/v1"):
                await client.rerank(
                    MODEL, QUERY, DOCS, api_key=TOKEN, api_base=base, project=PROJECT, location="eu"
                )
            full = f"{server.url}{ROUTE.replace('global', 'eu')}"
            await client.rerank(MODEL, QUERY, DOCS, api_key=TOKEN, api_base=full, project=PROJECT)
            await client.rerank(
                MODEL,
                QUERY,
                DOCS,
                access_token=TOKEN,
                api_base=server.url,
                project=PROJECT,
                vertex_location="eu",
            )
    assert {r.path for r in server.received} == {ROUTE.replace("global", "eu")}
    assert len(server.received) == 5
    assert VertexAIProvider.default_api_base == "https://discoveryengine.googleapis.com"


async def test_access_token_option_comes_before_api_key(
    client: AsyncClient, server: FakeServer
) -> None:
    server.handler.tokens.add("ya29.other")  # type: ignore[attr-defined]
    await client.rerank(MODEL, QUERY, DOCS, access_token="ya29.other")
    assert server.received[-1].headers["authorization"] == "Bearer ya29.other"


async def test_unsupported_parameters_raise_before_any_request(
    client: AsyncClient, server: FakeServer
) -> None:
    for parameter in ("max_tokens_per_doc", "max_chunks_per_doc"):  # rerankit chunks instead
        await client.rerank(MODEL, QUERY, DOCS, **{parameter: 100})
        assert parameter not in str(server.received[-1].json())
    server.received.clear()
    with pytest.raises(UnsupportedParameterError, match="instruction"):
        await client.rerank(MODEL, QUERY, DOCS, instruction="be strict")
    assert server.received == []
    with pytest.warns(rerankit.RerankitWarning, match="instruction"):
        await client.rerank(MODEL, QUERY, DOCS, instruction="be strict", drop_params=True)
    assert "instruction" not in server.received[-1].json()


async def test_extras_and_extra_body_pass_through(client: AsyncClient, server: FakeServer) -> None:
    await client.rerank(MODEL, QUERY, DOCS, userLabels={"team": "search"})
    assert server.received[-1].json()["userLabels"] == {"team": "search"}
    with pytest.raises(rerankit.BadRequestError, match="Unknown name"):
        await client.rerank(MODEL, QUERY, DOCS, extra_body={"rankingConfig": "x"})
    assert server.received[-1].json()["rankingConfig"] == "x"
    with pytest.raises(ConfigurationError, match="unknown argument 'user_labels'"):
        await client.rerank(MODEL, QUERY, DOCS, user_labels={})


async def test_a_ready_token_needs_no_google_auth(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "google.auth", None)
    response = await client.rerank(MODEL, QUERY, DOCS)
    assert response.results


async def test_missing_google_auth_names_the_extra(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "google.auth", None)
    async with AsyncClient() as client:
        with pytest.raises(
            ConfigurationError,
            match=r"pip install 'rerankit\[vertex\]' .*pip install '\.\[vertex\]'",
        ):
            await client.rerank(MODEL, QUERY, DOCS, api_base=server.url, project=PROJECT)
    assert server.received == []


async def test_application_default_credentials_for_real(
    fake: VertexFake, server: FakeServer, adc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []
    refresh = vertex._refresh

    def recording_refresh(*args: Any) -> Any:
        threads.append(threading.current_thread())
        return refresh(*args)

    monkeypatch.setattr(vertex, "_refresh", recording_refresh)
    async with AsyncClient(providers={"vertex_ai": {"api_base": server.url}}) as client:
        first = await client.rerank(MODEL, QUERY, DOCS)
        await client.rerank(MODEL, QUERY, DOCS, top_n=1)
        assert fake.tokens_issued == 1  # cached across calls
        assert [r.path for r in server.received] == ["/token", ROUTE, ROUTE]
        assert server.received[1].headers["authorization"] == "Bearer ya29.fake-1"
        assert server.received[1].headers["x-goog-user-project"] == PROJECT  # from the key file

        later = time.time() + 3400  # past the refresh point, before expiry
        monkeypatch.setattr(_auth, "now", lambda: later)
        await client.rerank(MODEL, QUERY, DOCS)
        await client.rerank(MODEL, QUERY, DOCS)
    assert fake.tokens_issued == 2
    assert [r.headers["authorization"] for r in rank_requests(server)[2:]] == [
        "Bearer ya29.fake-2",
        "Bearer ya29.fake-2",
    ]
    assert len(threads) == 2
    assert all(t is not threading.main_thread() for t in threads)
    assert [r.index for r in first.results] == expected_order(QUERY, DOCS)


async def test_concurrent_calls_share_one_token_fetch(
    fake: VertexFake, server: FakeServer, adc: Path
) -> None:
    async with AsyncClient(providers={"vertex_ai": {"api_base": server.url}}) as client:
        await asyncio.gather(*(client.rerank(MODEL, QUERY, DOCS) for _ in range(6)))
    assert fake.tokens_issued == 1
    assert len(rank_requests(server)) == 6


async def test_a_rejected_token_is_dropped_and_fetched_again(
    fake: VertexFake, server: FakeServer, adc: Path
) -> None:
    async with AsyncClient(providers={"vertex_ai": {"api_base": server.url}}) as client:
        await client.rerank(MODEL, QUERY, DOCS)
        server.fail(Reply(status=401, body={"error": {"message": "token revoked"}}))
        with pytest.raises(rerankit.AuthenticationError):
            await client.rerank(MODEL, QUERY, DOCS)
        await client.rerank(MODEL, QUERY, DOCS)
    assert fake.tokens_issued == 2


async def test_project_option_beats_the_credentials_project(
    fake: VertexFake, server: FakeServer, adc: Path
) -> None:
    server.handler = _Both(fake, VertexFake(fake.tokens, project="billing-project"))
    async with AsyncClient(providers={"vertex_ai": {"api_base": server.url}}) as client:
        await client.rerank(MODEL, QUERY, DOCS, project="billing-project")
    assert rank_requests(server)[0].headers["x-goog-user-project"] == "billing-project"


class _Both:
    """Token requests to one fake, rank requests to another."""

    def __init__(self, tokens: VertexFake, rank: VertexFake) -> None:
        self.tokens, self.rank = tokens, rank

    def __call__(self, request: Any) -> Reply:
        return (self.tokens if request.path == "/token" else self.rank)(request)


@pytest.mark.parametrize("form", ["dict", "json", "path"])
async def test_service_account_key_as_an_option(
    form: str, fake: VertexFake, server: FakeServer, tmp_path: Path
) -> None:
    info = fake.service_account_info(f"{server.url}/token", project_id=PROJECT)
    path = tmp_path / "key.json"
    path.write_text(json.dumps(info))
    credentials = {"dict": info, "json": json.dumps(info), "path": str(path)}[form]
    async with AsyncClient() as client:
        await client.rerank(MODEL, QUERY, DOCS, api_base=server.url, vertex_credentials=credentials)
        await client.rerank(MODEL, QUERY, DOCS, api_base=server.url, credentials=credentials)
    assert fake.tokens_issued == 1
    assert len(rank_requests(server)) == 2


async def test_credential_failures(fake: VertexFake, server: FakeServer, tmp_path: Path) -> None:
    stale = fake.service_account_info(f"{server.url}/token", project_id=PROJECT)
    fake.service_account_info(f"{server.url}/token", project_id=PROJECT)  # rotates the key
    unreachable = {**stale, "token_uri": "http://127.0.0.1:9/token"}
    async with AsyncClient(retry=NO_RETRY) as client:
        with pytest.raises(rerankit.AuthenticationError, match="Invalid JWT Signature") as info:
            await client.rerank(MODEL, QUERY, DOCS, api_base=server.url, credentials=stale)
        assert "PRIVATE KEY" not in str(info.value)
        with pytest.raises(rerankit.APIConnectionError, match="token endpoint"):
            await client.rerank(MODEL, QUERY, DOCS, api_base=server.url, credentials=unreachable)
        with pytest.raises(ConfigurationError, match="takes a service-account key"):
            await client.rerank(
                MODEL, QUERY, DOCS, api_base=server.url, credentials={"type": "authorized_user"}
            )
        with pytest.raises(ConfigurationError, match="could not load Google credentials"):
            await client.rerank(
                MODEL, QUERY, DOCS, api_base=server.url, credentials=str(tmp_path / "missing.json")
            )
        with pytest.raises(ConfigurationError, match="must be a service-account key"):
            await client.rerank(MODEL, QUERY, DOCS, api_base=server.url, credentials=42)
        with pytest.raises(ConfigurationError, match="could not load Google credentials"):
            await client.rerank(MODEL, QUERY, DOCS, api_base=server.url, project=PROJECT)
    assert rank_requests(server) == []


def test_capabilities_and_class_data() -> None:
    provider = VertexAIProvider()
    assert provider.capabilities("semantic-ranker-default-004").max_tokens_per_doc == 1_024
    assert provider.capabilities("semantic-ranker-512@latest").max_tokens_per_doc == 512
    unknown = provider.capabilities("semantic-ranker-next")
    assert unknown.max_documents == 200
    assert unknown.parameters == frozenset()
    assert unknown.score_kind == "unknown"
    assert all(c.max_documents == 200 for c in provider.model_table().values())
    assert VertexAIProvider.example_model == "vertex_ai/semantic-ranker-default@latest"
    assert (VertexAIProvider.__doc__ or "").startswith("``vertex_ai/")


class TestVertexContract(ProviderContract):
    model = "vertex_ai/semantic-ranker-default@latest"
    api_key = "ya29.contract-token"
    """A ready OAuth2 access token."""

    def fake(self) -> VertexFake:
        return VertexFake({self.api_key or ""}, project="contract-project")

    def settings(self, server: FakeServer) -> dict[str, Any]:
        return {
            "api_key": self.api_key,
            "api_base": server.url,
            "options": {"project": "contract-project"},
        }


class TestVertexServiceAccountContract(ProviderContract):
    """The same contract with google-auth fetching tokens from a separate OAuth server."""

    model = "vertex_ai/semantic-ranker-fast-004"
    api_key = None

    @pytest.fixture(autouse=True)
    def _oauth_server(self) -> Iterator[None]:
        self.tokens: set[str] = set()
        oauth = VertexFake(self.tokens, project="sa-project")
        with FakeServer(oauth) as server:
            self.key = oauth.service_account_info(f"{server.url}/token", project_id="sa-project")
            yield

    def fake(self) -> VertexFake:
        return VertexFake(self.tokens, project="sa-project")

    def settings(self, server: FakeServer) -> dict[str, Any]:
        return {"api_base": server.url, "options": {"credentials": self.key}}

    def test_contract_key_is_sent_only_when_set(self) -> None:
        """The API gets the access token the key was exchanged for, never the key itself."""
        with self.serve() as (server, client):
            client.rerank(self.model, QUERY, DOCUMENTS[:2])
        (sent,) = server.received
        assert sent.headers["authorization"] == "Bearer ya29.fake-1"
        assert b"PRIVATE KEY" not in sent.body


def test_token_refresh_errors_and_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth.exceptions as google_errors

    from rerankit.providers import ProviderContext

    class Credentials:
        token = "ya29.x"
        expiry = None

        def __init__(self, error: Exception | None = None) -> None:
            self.error = error

        def refresh(self, request: Any) -> None:
            if self.error is not None:
                raise self.error

    ctx = ProviderContext(provider="vertex_ai", model="m")
    busy = google_errors.RefreshError("busy", retryable=True)
    with pytest.raises(rerankit.APIConnectionError, match="could not refresh"):
        vertex._refresh(Credentials(busy), ctx)
    with pytest.raises(rerankit.AuthenticationError, match="rejected") as info:
        vertex._refresh(Credentials(google_errors.RefreshError("invalid_grant")), ctx)
    assert info.value.provider == "vertex_ai"
    with pytest.raises(rerankit.APIConnectionError, match="token endpoint"):
        vertex._refresh(Credentials(google_errors.TransportError("down")), ctx)
    monkeypatch.setattr(vertex, "now", lambda: 1_000.0)
    assert vertex._refresh(Credentials(), ctx) == ("ya29.x", 1_000.0 + 1800)
