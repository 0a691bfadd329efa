"""Retries, timeouts and response validation in the client, against a fake Cohere server."""

from __future__ import annotations

import math

import pytest

import rerankit
from rerankit import AsyncClient, RetryPolicy
from rerankit.testing import FakeServer, Reply

from .conftest import API_KEY

pytestmark = pytest.mark.anyio

DOCS = ["alpha beta", "beta", "gamma"]
MODEL = "cohere/rerank-v3.5"


def cohere_body(results: list[dict[str, object]]) -> dict[str, object]:
    return {"id": "x", "results": results, "meta": {"billed_units": {"search_units": 1}}}


async def test_429_with_retry_after_then_success(
    client: AsyncClient, cohere_server: FakeServer
) -> None:
    cohere_server.fail(
        Reply(status=429, body={"message": "slow down"}, headers={"Retry-After": "0"})
    )
    response = await client.rerank(MODEL, "alpha", DOCS)
    assert len(cohere_server.received) == 2
    assert response.results[0].index == 0


async def test_retry_after_ms_is_honoured(cohere_server: FakeServer) -> None:
    cohere_server.fail(Reply(status=503, headers={"retry-after-ms": "30"}))
    async with AsyncClient(
        providers={"cohere": {"api_key": API_KEY, "api_base": cohere_server.url}},
        retry=RetryPolicy(initial_delay=10),  # a backoff this long would stall the test
    ) as client:
        response = await client.rerank(MODEL, "alpha", DOCS)
    assert response.results[0].index == 0
    assert len(cohere_server.received) == 2


async def test_retry_after_beyond_the_cap_fails_at_once(
    client: AsyncClient, cohere_server: FakeServer
) -> None:
    cohere_server.fail(
        Reply(status=429, body={"message": "quota"}, headers={"Retry-After": "3600"})
    )
    with pytest.raises(rerankit.RateLimitError) as info:
        await client.rerank(MODEL, "alpha", DOCS)
    assert info.value.retry_after == 3600
    assert info.value.status_code == 429
    assert len(cohere_server.received) == 1


async def test_two_500s_then_success(client: AsyncClient, cohere_server: FakeServer) -> None:
    cohere_server.fail(Reply(status=500), Reply(status=502, body=b"bad gateway"))
    response = await client.rerank(MODEL, "beta", DOCS)
    assert len(cohere_server.received) == 3
    assert {r.index for r in response.results} == {0, 1, 2}


async def test_retries_run_out(client: AsyncClient, cohere_server: FakeServer) -> None:
    cohere_server.fail(*[Reply(status=503, body={"message": "overloaded"})] * 3)
    with pytest.raises(rerankit.InternalServerError, match="HTTP 503.*overloaded") as info:
        await client.rerank(MODEL, "beta", DOCS)
    assert info.value.provider == "cohere"
    assert info.value.model == "rerank-v3.5"
    assert len(cohere_server.received) == 3


async def test_max_retries_per_call(client: AsyncClient, cohere_server: FakeServer) -> None:
    cohere_server.fail(Reply(status=500), Reply(status=500))
    with pytest.raises(rerankit.InternalServerError):
        await client.rerank(MODEL, "beta", DOCS, max_retries=0)
    assert len(cohere_server.received) == 1


async def test_connection_reset_and_truncated_body_are_retried(
    client: AsyncClient, cohere_server: FakeServer
) -> None:
    cohere_server.fail(Reply(reset=True), Reply(truncate=True, body=cohere_body([])))
    response = await client.rerank(MODEL, "gamma", DOCS)
    assert response.results[0].index == 2
    assert len(cohere_server.received) == 3


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, rerankit.BadRequestError),
        (401, rerankit.AuthenticationError),
        (403, rerankit.PermissionDeniedError),
        (404, rerankit.NotFoundError),
        (422, rerankit.UnprocessableEntityError),
    ],
)
async def test_client_errors_raise_at_once(
    client: AsyncClient, cohere_server: FakeServer, status: int, error: type[Exception]
) -> None:
    cohere_server.fail(
        Reply(status=status, body={"message": "nope"}, headers={"x-request-id": "req-7"})
    )
    with pytest.raises(error, match=f"HTTP {status}.*nope") as info:
        await client.rerank(MODEL, "beta", DOCS)
    assert isinstance(info.value, rerankit.APIStatusError)
    assert info.value.request_id == "req-7"
    assert info.value.body == '{"message":"nope"}'
    assert len(cohere_server.received) == 1


async def test_wrong_key_is_authentication_error(cohere_server: FakeServer) -> None:
    async with AsyncClient() as client:
        with pytest.raises(rerankit.AuthenticationError, match="invalid api key"):
            await client.rerank(MODEL, "a", DOCS, api_key="not-the-key", api_base=cohere_server.url)
    assert len(cohere_server.received) == 1


async def test_hung_server_raises_timeout(cohere_server: FakeServer) -> None:
    cohere_server.fail(*[Reply(delay=5)] * 2)
    async with AsyncClient(
        providers={"cohere": {"api_key": API_KEY, "api_base": cohere_server.url}},
        timeout=0.2,
        retry=RetryPolicy(max_retries=1, initial_delay=0.01),
    ) as client:
        with pytest.raises(rerankit.APITimeoutError) as info:
            await client.rerank(MODEL, "a", DOCS)
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, rerankit.APIConnectionError)
    assert len(cohere_server.received) == 2


async def test_unreachable_server_is_connection_error() -> None:
    async with AsyncClient(retry=RetryPolicy(max_retries=1, initial_delay=0.01)) as client:
        with pytest.raises(rerankit.APIConnectionError, match="could not reach cohere"):
            await client.rerank(MODEL, "a", DOCS, api_key=API_KEY, api_base="http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "cannot read"),
        (b'{"results": [{"index": 0, "relevance_score": NaN}]}', "cannot read"),
        (cohere_body([{"index": 3, "relevance_score": 0.5}]), "out of range"),
        (cohere_body([{"index": -1, "relevance_score": 0.5}]), "out of range"),
        (
            cohere_body(
                [{"index": 1, "relevance_score": 0.5}, {"index": 1, "relevance_score": 0.4}]
            ),
            "more than once",
        ),
        (cohere_body([{"index": 0, "relevance_score": "high"}]), "cannot read"),
        (cohere_body([{"index": 0}]), "cannot read"),
        ({"id": "x"}, "cannot read"),
        (b'{"results": [{"index": 0, "relevance_score": 1e999}]}', "cannot read"),
        (b"[]", "cannot read"),
    ],
)
async def test_malformed_answers_raise_response_validation_error(
    client: AsyncClient, cohere_server: FakeServer, body: object, problem: str
) -> None:
    cohere_server.fail(Reply(body=body))
    with pytest.raises(rerankit.ResponseValidationError, match=problem) as info:
        await client.rerank(MODEL, "a", DOCS)
    assert info.value.provider == "cohere"
    assert len(cohere_server.received) == 1  # a bad answer is not retried


def test_retry_policy_checks_its_fields() -> None:
    with pytest.raises(rerankit.ConfigurationError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(rerankit.ConfigurationError, match="jitter"):
        RetryPolicy(jitter=2)
    with pytest.raises(rerankit.ConfigurationError, match="initial_delay"):
        RetryPolicy(initial_delay=math.nan)
