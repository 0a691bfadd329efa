"""What ``rerankit serve`` tells clients about its upstreams (nothing) and what it logs.

Upstream failures reach the client as the public model name, a status, a generic message and a
request id; the upstream's model, host, port and raw error text go to the server log only, under
that request id. Secret-looking query parameters are masked in every log line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import httpx
import pytest

from rerankit.server import ServerConfig, parse_config
from rerankit.testing import FakeServer, Reply

from .conftest import API_KEY
from .test_server import ServerThread

CLIENT_KEY = "client-key-0123456789"
HIDDEN = "secret-finetune-v7"
INTERNAL_HOST = "pg-prod-7.corp.internal:5432"

CONFIG = """
[server]
api_keys = ["{client_key}"]
max_retries = 0

[models.public-rerank]
model = "cohere/{hidden}"

[models.gone]
model = "cohere_compatible/{hidden}"

[providers.cohere]
api_base = "{upstream}"
timeout = 1.0
capabilities = {{ max_pair_tokens = 64 }}

[providers.cohere_compatible]
api_base = "http://127.0.0.1:9"
"""

BODY = {"model": "public-rerank", "query": "reset password", "documents": ["a", "b"]}


@pytest.fixture
def config(cohere_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> ServerConfig:
    monkeypatch.setenv("COHERE_API_KEY", API_KEY)
    monkeypatch.setenv("COHERE_COMPATIBLE_API_KEY", API_KEY)
    text = CONFIG.format(client_key=CLIENT_KEY, hidden=HIDDEN, upstream=cohere_server.url)
    config = parse_config(text)
    config.server.access_log = True
    return config


@pytest.fixture
def server(config: ServerConfig) -> Iterator[ServerThread]:
    with ServerThread(config) as running:
        yield running


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, trust_env=False, timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    ("model", "reply", "status", "kind"),
    [
        ("gone", None, 502, "could not be reached"),
        (
            "public-rerank",
            Reply(status=503, body={"message": f"shard {INTERNAL_HOST} is down"}),
            503,
            "is unavailable",
        ),
        (
            "public-rerank",
            Reply(status=500, body={"message": f"shard {INTERNAL_HOST} is down"}),
            502,
            "failed",
        ),
        ("public-rerank", Reply(delay=3.0), 504, "did not answer in time"),
        ("public-rerank", Reply(status=401, body={"message": "bad key for org 42"}), 502, "failed"),
        (
            "public-rerank",
            Reply(status=400, body={"message": f"query too long for {HIDDEN}"}),
            400,
            "rejected the request",
        ),
    ],
    ids=["unreachable", "upstream-503", "upstream-500", "timeout", "upstream-401", "upstream-400"],
)
def test_upstream_failures_tell_the_client_nothing_about_the_upstream(
    http: httpx.Client,
    cohere_server: FakeServer,
    caplog: pytest.LogCaptureFixture,
    model: str,
    reply: Reply | None,
    status: int,
    kind: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="rerankit.server")
    if reply is not None:
        cohere_server.fail(reply)
    answer = http.post("/v2/rerank", json={**BODY, "model": model})
    assert answer.status_code == status, answer.text
    message = answer.json()["message"]
    request_id = answer.headers["X-Request-Id"]
    assert message == (
        f"upstream error: the upstream reranker of model {model!r} {kind} (request id {request_id})"
    )
    for hidden in (HIDDEN, "cohere", "127.0.0.1", ":9", INTERNAL_HOST, "org 42", "shard"):
        assert hidden not in message
    logged = [record.getMessage() for record in caplog.records if request_id in record.message]
    assert logged, caplog.text
    assert HIDDEN in logged[0]
    assert f"model {model!r}" in logged[0]


def test_every_answer_carries_a_request_id(http: httpx.Client) -> None:
    first = http.post("/v2/rerank", json={**BODY, "model": "nope"})
    second = http.post("/v2/rerank", json={**BODY, "model": "nope"})
    assert first.status_code == 404
    assert re.fullmatch(r"[0-9a-f-]{36}", first.headers["X-Request-Id"])
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]


def test_bad_input_stays_informative_without_naming_the_upstream(http: httpx.Client) -> None:
    answer = http.post("/v2/rerank", json={**BODY, "query": "word " * 100})
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"] == (
        "invalid request: the query is too long for model 'public-rerank': it leaves 0 tokens "
        "for each document"
    )


def test_secret_query_parameters_are_masked_in_the_access_log(
    config: ServerConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rerankit.server")
    leaked = "sk-live-0123456789abcdef"
    query = f"api_key={leaked}&Signature={leaked}x&top=3&access_token={leaked}y"
    with ServerThread(config) as server:  # stopped before reading the log: every line written
        refused = httpx.post(f"{server.url}/v1/rerank?{query}", json=BODY, trust_env=False)
    assert refused.status_code == 401
    access = [r for r in caplog.records if r.name == "rerankit.server.access"]
    assert len(access) == 1, caplog.text
    line = access[0].getMessage()
    assert '"POST /v1/rerank?api_key=***&Signature=***&top=3&access_token=***' in line
    assert " 401 " in line
    for record in caplog.records:
        assert leaked not in record.getMessage()
        assert leaked not in repr(vars(record))


def test_every_server_log_line_masks_secret_query_parameters(
    server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    url = "https://upstream.example/rerank?key=sk-live-0123&token=sk-live-4567&top_n=3"
    for name in ("rerankit.server", "aiohttp.server", "aiohttp.web"):
        logging.getLogger(name).warning("upstream %s failed", url)
    assert [record.getMessage() for record in caplog.records] == [
        "upstream https://upstream.example/rerank?key=***&token=***&top_n=3 failed"
    ] * 3
