"""``rerankit serve`` with real clients: the official Cohere SDK (v1 and v2), rerankit's own
``cohere_compatible`` and ``cohere`` providers, and raw HTTP for bad input.

The server runs in a background thread on 127.0.0.1 with one ``AsyncClient``, in front of a
local BM25 model and a fake Cohere upstream. Nothing here leaves the loopback interface.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import cohere
import httpx
import msgspec
import pytest

import rerankit
from rerankit.server import ServerConfig, parse_config, serve
from rerankit.testing import FakeServer, Reply

from .conftest import API_KEY
from .support import DOCUMENTS, QUERY, RECORDS

CLIENT_KEY = "client-key-0123456789"
DOCS = DOCUMENTS[:6]

CONFIG = """
[server]
api_keys = ["{client_key}"]
max_documents = 20
max_body_bytes = 20000
default_model = "rerank-english-v3.0"
max_retries = 0

[models."rerank-english-v3.0"]
model = "local/bm25"

[models."rerank-v3.5"]
model = "cohere/rerank-v3.5"
fallbacks = ["local/bm25"]

[models."cohere-only"]
model = "cohere/rerank-v3.5"

[models.small]
model = "local/bm25"
max_documents = 3
max_body_bytes = 600

[providers.cohere]
api_base = "{upstream}"
timeout = 1.0
"""


# --- the server, in a thread ------------------------------------------------------------------


class ServerThread:
    """``rerankit.server.serve`` on its own event loop in a daemon thread, on a free port."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rerankit-serve", daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.config, port=0, stop=self._stop, on_ready=self._on_ready)

        try:
            asyncio.run(main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def _on_ready(self, url: str) -> None:
        self.url = url
        self._ready.set()


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection to an address off the loopback interface fails the test."""
    connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            assert ipaddress.ip_address(host).is_loopback, f"connection to {host} attempted"
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def config(cohere_server: FakeServer) -> ServerConfig:
    return parse_config(CONFIG.format(client_key=CLIENT_KEY, upstream=cohere_server.url))


@pytest.fixture
def server(config: ServerConfig, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerThread]:
    monkeypatch.setenv("COHERE_API_KEY", API_KEY)
    with ServerThread(config) as running:
        yield running


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, trust_env=False, timeout=10) as client:
        yield client


@pytest.fixture
def sdk_http() -> Iterator[httpx.Client]:
    """The SDK's HTTP client: no proxies or other settings from the environment."""
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


@pytest.fixture
def co(server: ServerThread, sdk_http: httpx.Client) -> cohere.Client:
    return cohere.Client(
        api_key=CLIENT_KEY, base_url=server.url, httpx_client=sdk_http, max_retries=0
    )


@pytest.fixture
def co2(server: ServerThread, sdk_http: httpx.Client) -> cohere.ClientV2:
    return cohere.ClientV2(
        api_key=CLIENT_KEY, base_url=server.url, httpx_client=sdk_http, max_retries=0
    )


def ranking(results: Any) -> list[tuple[int, float]]:
    return [(r.index, pytest.approx(r.relevance_score)) for r in results]


# --- the Cohere SDK ---------------------------------------------------------------------------


def test_cohere_sdk_v1_matches_rerankit(co: cohere.Client) -> None:
    answer = co.rerank(
        model="rerank-english-v3.0", query=QUERY, documents=DOCS, top_n=3, return_documents=True
    )
    direct = rerankit.rerank("local/bm25", QUERY, DOCS, top_n=3)
    assert ranking(answer.results) == ranking(direct.results)
    assert [r.document.text for r in answer.results] == [DOCS[r.index] for r in direct.results]
    assert uuid.UUID(answer.id).version == 4
    assert answer.meta.api_version.version == "1"
    assert answer.meta.billed_units.search_units == 1


def test_cohere_sdk_v1_objects_with_rank_fields(co: cohere.Client) -> None:
    answer = co.rerank(
        model="rerank-english-v3.0",
        query="password reset",
        documents=RECORDS,
        rank_fields=["title", "body"],
        return_documents=True,
    )
    direct = rerankit.rerank("local/bm25", "password reset", RECORDS, rank_fields=["title", "body"])
    assert ranking(answer.results) == ranking(direct.results)
    assert answer.results[0].document.dict() == RECORDS[direct.results[0].index]


def test_cohere_sdk_v1_without_documents_or_model(co: cohere.Client) -> None:
    answer = co.rerank(query=QUERY, documents=DOCS)  # the server's default_model
    direct = rerankit.rerank("local/bm25", QUERY, DOCS)
    assert ranking(answer.results) == ranking(direct.results)
    assert all(r.document is None for r in answer.results)


def test_cohere_sdk_v2_through_an_upstream(co2: cohere.ClientV2, cohere_server: FakeServer) -> None:
    answer = co2.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS, top_n=2)
    direct = rerankit.rerank(
        "cohere/rerank-v3.5", QUERY, DOCS, top_n=2, api_base=cohere_server.url, api_key=API_KEY
    )
    assert ranking(answer.results) == ranking(direct.results)
    assert answer.meta.api_version.version == "2"
    upstream = cohere_server.received[0]
    assert upstream.headers["authorization"] == f"Bearer {API_KEY}"
    assert CLIENT_KEY not in upstream.headers.values()
    assert upstream.json()["model"] == "rerank-v3.5"


def test_cohere_sdk_v2_local_model_with_max_tokens(co2: cohere.ClientV2) -> None:
    answer = co2.rerank(
        model="rerank-english-v3.0", query=QUERY, documents=DOCS, max_tokens_per_doc=64
    )
    assert sorted(r.index for r in answer.results) == list(range(len(DOCS)))
    assert answer.results[0].index == rerankit.rerank("local/bm25", QUERY, DOCS).results[0].index


def test_cohere_sdk_lists_models(co: cohere.Client) -> None:
    listed = co.models.list(endpoint="rerank")
    assert sorted(m.name for m in listed.models) == [
        "cohere-only",
        "rerank-english-v3.0",
        "rerank-v3.5",
        "small",
    ]
    assert co.models.list(endpoint="chat").models == []


def test_cohere_sdk_errors(co: cohere.Client, server: ServerThread, sdk_http: httpx.Client) -> None:
    with pytest.raises(cohere.errors.NotFoundError) as not_found:
        co.rerank(model="nope", query=QUERY, documents=DOCS)
    assert "model 'nope' not found" in not_found.value.body["message"]
    with pytest.raises(cohere.errors.BadRequestError) as bad:
        co.rerank(model="small", query=QUERY, documents=DOCS)
    assert "too many documents" in bad.value.body["message"]
    wrong = cohere.Client(api_key="wrong", base_url=server.url, httpx_client=sdk_http)
    with pytest.raises(cohere.errors.UnauthorizedError) as unauthorized:
        wrong.rerank(model="rerank-english-v3.0", query=QUERY, documents=DOCS)
    assert unauthorized.value.body == {"message": "invalid api token"}


# --- rerankit as the client -------------------------------------------------------------------


@pytest.mark.anyio
async def test_rerankit_cohere_compatible_and_cohere_providers(server: ServerThread) -> None:
    providers = {
        "cohere_compatible": {"api_base": f"{server.url}/v1", "api_key": CLIENT_KEY},
        "cohere": {"api_base": server.url, "api_key": CLIENT_KEY},
    }
    direct = rerankit.rerank("local/bm25", QUERY, DOCS, top_n=4)
    async with rerankit.AsyncClient(providers=providers, max_retries=0) as client:
        compatible = await client.rerank(
            "cohere_compatible/rerank-english-v3.0", QUERY, DOCS, top_n=4
        )
        v2 = await client.rerank("cohere/rerank-english-v3.0", QUERY, DOCS, top_n=4)
        v1 = await client.rerank("cohere/rerank-english-v3.0", QUERY, DOCS, api_version="v1")
    assert ranking(compatible.results) == ranking(direct.results)
    assert ranking(v2.results) == ranking(direct.results)
    assert ranking(v1.results)[:4] == ranking(direct.results)
    assert compatible.results[0].document == {"text": DOCS[direct.results[0].index]}


@pytest.mark.parametrize(
    ("provider", "suffix"),
    [
        ("jina_ai", "/v1"),
        ("together_ai", "/v1"),
        ("litellm_proxy", ""),
        ("infinity", ""),
        ("hosted_vllm", "/v1"),
        ("siliconflow", "/v1"),
        ("cohere_compatible", ""),
    ],
)
@pytest.mark.anyio
async def test_rerankit_cohere_shaped_providers(
    server: ServerThread, provider: str, suffix: str
) -> None:
    providers = {provider: {"api_base": server.url + suffix, "api_key": CLIENT_KEY}}
    async with rerankit.AsyncClient(providers=providers, max_retries=0) as client:
        answer = await client.rerank(f"{provider}/rerank-english-v3.0", QUERY, DOCS, top_n=3)
    direct = rerankit.rerank("local/bm25", QUERY, DOCS, top_n=3)
    assert ranking(answer.results) == ranking(direct.results)


# --- fallbacks and upstream failures ----------------------------------------------------------


def test_fallback_answers_when_the_upstream_fails(
    co2: cohere.ClientV2, cohere_server: FakeServer
) -> None:
    cohere_server.fail(Reply(status=503, body={"message": "overloaded"}))
    answer = co2.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS, top_n=3)
    direct = rerankit.rerank("local/bm25", QUERY, DOCS, top_n=3)
    assert ranking(answer.results) == ranking(direct.results)
    assert len(cohere_server.received) == 1


@pytest.mark.parametrize(
    ("reply", "status", "retry_after"),
    [
        (Reply(status=503, body={"message": "overloaded"}), 503, None),
        (Reply(status=429, body={"message": "slow down"}, headers={"Retry-After": "7"}), 503, "7"),
        (Reply(status=500, body={"message": "boom"}), 502, None),
        (Reply(status=401, body={"message": "invalid api token"}), 502, None),
        (Reply(status=400, body={"message": "query too long"}), 400, None),
        (Reply(status=200, body=b"not json"), 502, None),
        (Reply(reset=True), 502, None),
        (Reply(delay=3.0), 504, None),
    ],
)
def test_upstream_failures_map_to_statuses(
    http: httpx.Client,
    cohere_server: FakeServer,
    reply: Reply,
    status: int,
    retry_after: str | None,
) -> None:
    cohere_server.fail(reply)
    body = {"model": "cohere-only", "query": QUERY, "documents": DOCS}
    answer = http.post("/v2/rerank", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["message"]
    assert answer.headers.get("Retry-After") == retry_after
    assert http.post("/v2/rerank", json=body).status_code == 200


# --- bad input: a clear 4xx, and the server keeps serving --------------------------------------

GOOD = {"model": "rerank-english-v3.0", "query": QUERY, "documents": DOCS}


def encoded(**changes: Any) -> bytes:
    return msgspec.json.encode({**GOOD, **changes})


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/rerank", b'{"query": "x", "documents": [', 400, "Input data was truncated"),
        ("/v1/rerank", b'{"query": "x",, }', 400, "JSON is malformed"),
        ("/v2/rerank", b"", 400, "the body is empty"),
        ("/v2/rerank", b"[1, 2]", 400, "Expected `object`, got `array`"),
        ("/v2/rerank", encoded(query=5), 400, "Expected `str`, got `int` - at `$.query`"),
        ("/v2/rerank", encoded(query=""), 400, "at `$.query`"),
        ("/v1/rerank", encoded(documents="one doc"), 400, "at `$.documents`"),
        ("/v1/rerank", encoded(documents=[]), 400, "at `$.documents`"),
        ("/v2/rerank", encoded(documents=[{"text": "x"}]), 400, "at `$.documents[0]`"),
        ("/v1/rerank", encoded(documents=["a", 3]), 400, "at `$.documents[1]`"),
        ("/v2/rerank", encoded(top_n=0), 400, "Expected `int` >= 1 - at `$.top_n`"),
        ("/v2/rerank", encoded(top_n="3"), 400, "at `$.top_n`"),
        ("/v1/rerank", encoded(return_documents="yes"), 400, "at `$.return_documents`"),
        ("/v2/rerank", encoded(rank_fields=["title"]), 400, "unknown field `rank_fields`"),
        ("/v2/rerank", encoded(temperature=1), 400, "unknown field `temperature`"),
        ("/v2/rerank", msgspec.json.encode({"query": "x", "documents": ["a"]}), 400, "`model`"),
        ("/v2/rerank", encoded(relevant_spans={"mode": "enabled"}), 400, "relevant_spans"),
        (
            "/v1/rerank",
            encoded(documents=[{"title": "a"}], rank_fields=["body"]),
            400,
            "body",
        ),
        ("/v2/rerank", encoded(documents=["d"] * 21), 400, "too many documents: 21"),
        ("/v2/rerank", encoded(model="small", documents=["d"] * 4), 400, "at most 3"),
        ("/v2/rerank", encoded(model="small", query="q" * 700), 413, "for model 'small'"),
        ("/v2/rerank", encoded(documents=["x" * 30_000]), 413, "20000 bytes"),
        ("/v2/rerank", encoded(model="rerank-v4.0-pro"), 404, "model 'rerank-v4.0-pro' not"),
        ("/v1/rerank", encoded(documents=[{"image": "/etc/hostname"}]), 400, "reads no files"),
        ("/v1/rerank", encoded(documents=["a", {"image": "/dev/zero"}]), 400, "documents[1]"),
    ],
    ids=[
        "truncated-json",
        "malformed-json",
        "empty-body",
        "not-an-object",
        "query-not-a-string",
        "empty-query",
        "documents-not-a-list",
        "no-documents",
        "v2-object-document",
        "document-not-a-string",
        "top-n-zero",
        "top-n-a-string",
        "return-documents-not-bool",
        "v2-rank-fields",
        "unknown-field",
        "no-model",
        "relevant-spans",
        "missing-rank-field",
        "too-many-documents",
        "too-many-for-model",
        "body-over-model-limit",
        "body-over-server-limit",
        "unknown-model",
        "image-file-path",
        "image-device-path",
    ],
)
def test_bad_input_gets_a_clear_4xx_and_the_server_keeps_serving(
    http: httpx.Client, path: str, body: bytes, status: int, message: str
) -> None:
    answer = http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert message in answer.json()["message"]
    assert set(answer.json()) == {"message"}
    assert http.post(path, json=GOOD).status_code == 200


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "no api key supplied"),
        ({"Authorization": "Bearer wrong-key"}, "invalid api token"),
        ({"Authorization": f"Basic {CLIENT_KEY}"}, "invalid api token"),
        ({"Authorization": "Bearer"}, "invalid api token"),
        ({"Authorization": f"Bearer {CLIENT_KEY}x"}, "invalid api token"),
    ],
)
def test_auth_is_required(server: ServerThread, headers: dict[str, str], message: str) -> None:
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        answer = client.post("/v1/rerank", json=GOOD, headers=headers)
        assert answer.status_code == 401
        assert answer.json() == {"message": message}
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert client.get("/v1/models", headers=headers).status_code == 401
        assert client.get("/health").json() == {"status": "ok"}
        ok = client.post("/v1/rerank", json=GOOD, headers={"Authorization": f"Bearer {CLIENT_KEY}"})
        assert ok.status_code == 200


def test_a_chunked_body_over_the_limit_is_refused(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "rerank-english-v3.0", "query": "q", "documents": ["'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"]}'

    answer = http.post("/v2/rerank", content=chunks())
    assert answer.status_code == 413
    assert "request body too large" in answer.json()["message"]
    assert http.post("/v2/rerank", json=GOOD).status_code == 200


def test_routes_and_methods(http: httpx.Client) -> None:
    wrong_method = http.get("/v1/rerank")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "POST"
    assert "not allowed" in wrong_method.json()["message"]
    assert http.post("/v1/models").status_code == 405
    missing = http.post("/v3/rerank", json=GOOD)
    assert missing.status_code == 404
    assert missing.json() == {"message": "no route for POST /v3/rerank"}


def test_keys_are_never_logged(
    http: httpx.Client, cohere_server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cohere_server.fail(Reply(status=500, body={"message": "boom"}))
    http.post("/v2/rerank", json={**GOOD, "model": "cohere-only"})
    http.post("/v2/rerank", json=GOOD, headers={"Authorization": "Bearer wrong-key-123"})
    http.post("/v2/rerank", json=GOOD)
    assert "rerank of model 'cohere-only' failed: 502" in caplog.text
    for secret in (CLIENT_KEY, API_KEY, "wrong-key-123"):
        assert secret not in caplog.text


# --- rate limits and keys from the environment ------------------------------------------------


def test_rate_limit_per_client_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SERVER_KEYS", "env-key-1, env-key-2")
    config = parse_config(
        """
        [server]
        api_keys_env = "TEST_SERVER_KEYS"
        rate_limit = 60
        rate_limit_burst = 2
        [models.bm25]
        model = "local/bm25"
        """
    )
    body = {"model": "bm25", "query": QUERY, "documents": DOCS}
    with ServerThread(config) as server, httpx.Client(base_url=server.url, trust_env=False) as c:
        first = {"Authorization": "Bearer env-key-1"}
        assert [c.post("/v2/rerank", json=body, headers=first).status_code for _ in "ab"] == [
            200,
            200,
        ]
        limited = c.post("/v2/rerank", json=body, headers=first)
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "1"
        assert "too many requests" in limited.json()["message"]
        second = {"Authorization": "Bearer env-key-2"}
        assert c.post("/v2/rerank", json=body, headers=second).status_code == 200
