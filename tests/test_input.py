"""Bad input raises a ConfigurationError naming the problem, before any network call."""

from __future__ import annotations

from typing import Any

import pytest

import rerankit
from rerankit import AsyncClient, ConfigurationError
from rerankit._input import render
from rerankit.testing import FakeServer

pytestmark = pytest.mark.anyio

MODEL = "cohere/rerank-v3.5"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": ""}, "query must not be empty"),
        ({"query": "   "}, "query must not be empty"),
        ({"query": 42}, "query must be a str, got int"),
        ({"query": None}, "query must be a str, got NoneType"),
        ({"documents": "one string"}, "documents must be a list of str or dict, got str"),
        ({"documents": {"text": "x"}}, "documents must be a list"),
        ({"documents": None}, "documents must be a list"),
        ({"documents": ["ok", 3, "ok"]}, r"documents\[1\] is a int"),
        ({"documents": ["ok", None]}, r"documents\[1\] is a NoneType"),
        (
            {"documents": [{"title": "t"}], "rank_fields": ["title", "body"]},
            r"documents\[0\] has no field 'body' named in rank_fields \(it has: title\)",
        ),
        ({"documents": [{}]}, r"documents\[0\] is an empty dict"),
        ({"documents": [{"a": object()}]}, r"documents\[0\] cannot be sent as JSON"),
        ({"rank_fields": "title"}, "rank_fields must be a list"),
        ({"rank_fields": []}, "rank_fields must be a non-empty list"),
        ({"top_n": 0}, "top_n must be >= 1, got 0"),
        ({"top_n": -3}, "top_n must be >= 1"),
        ({"top_n": 2.5}, "top_n must be an int"),
        ({"top_n": True}, "top_n must be an int"),
        ({"max_tokens_per_doc": 0}, "max_tokens_per_doc must be >= 1"),
        ({"timeout": 0}, "timeout must be a number of seconds > 0"),
        ({"timeout": "10"}, "timeout must be a number"),
        ({"max_retries": -1}, "max_retries must be an int >= 0"),
        ({"instruction": 5}, "instruction must be a str"),
        ({"instruction": "be \udc80strict"}, "instruction holds a lone surrogate"),
        ({"model": ""}, "model must be a non-empty string"),
        ({"model": None}, "model must be a non-empty string"),
        ({"model": "cohere/"}, "empty model name"),
        ({"model": "my-reranker"}, "names no provider"),
        ({"provider": "cohere", "custom_llm_provider": "voyage"}, "disagree"),
        ({"query": "caf\ud800"}, r"query holds a lone surrogate \('\\ud800' at position 3\)"),
        ({"documents": ["ok", "\ud800"]}, r"documents\[1\] holds a lone surrogate"),
        ({"documents": ["ok", {"text": "\udfff"}]}, r"documents\[1\] cannot be sent as JSON"),
        ({"documents": [{"text": 1}]}, r"documents\[0\]\['text'\] is the text ranked, so it"),
        ({"documents": [{"text": None, "b": "x"}]}, r"documents\[0\]\['text'\] .* got NoneType"),
        (
            {"documents": [{"title": ["t"]}], "rank_fields": ["title"]},
            r"documents\[0\]\['title'\] is the text ranked, so it must be a str, got list",
        ),
        (
            {"documents": [{"title": "t", "blob": b"x"}, {"title": "u", "n": object()}]},
            r"documents\[1\] cannot be sent as JSON",
        ),
        ({"api_base": "localhost:8080"}, "api_base must start with http:// or https://"),
        ({"api_base": "ftp://host"}, "api_base must start with http:// or https://"),
        ({"api_base": "http://"}, "api_base has no host"),
        ({"api_base": "http://my host"}, "api_base holds whitespace"),
        ({"api_base": "http://host:99999"}, r"api_base is not a valid URL \(Port out of range"),
        ({"api_base": "http://u:pw@host x"}, r"got 'http://\*\*\*@host x'"),
        ({"api_base": 8080}, "api_base must be a str, got int"),
        ({"api_base": None, "base_url": "localhost"}, "base_url must start with http"),
        ({"api_key": "k\n"}, r"api_key for cohere ends with a line break \(read from a file"),
        ({"api_key": "k\x00k"}, "api_key for cohere holds a control character at position 1"),
        ({"api_key": "kéy"}, "api_key for cohere holds a non-ASCII character at position 1"),
        ({"api_key": 42}, "api_key for cohere must be a str, got int"),
        ({"extra_headers": {"X": 1}}, r"extra_headers\['X'\] must be a str, got int"),
        ({"extra_headers": {1: "x"}}, "extra_headers has an invalid header name 1"),
        ({"extra_headers": {"X Y": "x"}}, "extra_headers has an invalid header name 'X Y'"),
        ({"extra_headers": {"X": "a\r\nB: c"}}, r"extra_headers\['X'\] holds a line break"),
        ({"extra_headers": ["X"]}, "extra_headers must be a dict"),
        ({"extra_body": {"x": object()}}, "extra_body cannot be sent as JSON: Encoding objects"),
        ({"extra_body": {"x": "\ud800"}}, "extra_body cannot be sent as JSON: it holds a lone"),
        ({"extra_body": [1]}, "extra_body must be a dict of JSON fields, got list"),
        ({"priority": object()}, r"request to cohere \(model 'rerank-v3.5'\) cannot be sent"),
    ],
)
async def test_bad_input_is_named_before_any_request(
    cohere_server: FakeServer, kwargs: dict[str, Any], message: str
) -> None:
    call: dict[str, Any] = {
        "model": MODEL,
        "query": "q",
        "documents": ["a", "b"],
        "api_key": "k",
        "api_base": cohere_server.url,
        **kwargs,
    }
    async with AsyncClient() as client:
        with pytest.raises(ConfigurationError, match=message):
            await client.rerank(**call)
    assert cohere_server.received == []


async def test_empty_documents_return_empty_without_a_call(cohere_server: FakeServer) -> None:
    async with AsyncClient() as client:
        response = await client.rerank(MODEL, "q", [], top_n=3)
    assert response.results == []
    assert response.provider == "cohere"
    assert cohere_server.received == []


async def test_top_n_larger_than_the_list_is_clamped(
    client: AsyncClient, cohere_server: FakeServer
) -> None:
    response = await client.rerank(MODEL, "a", ["a", "b"], top_n=10)
    assert len(response.results) == 2
    assert cohere_server.received[0].json()["top_n"] == 2


async def test_tuples_of_documents_are_accepted(client: AsyncClient) -> None:
    response = await client.rerank(MODEL, "b", ("a", "b"))
    assert response.results[0].document == {"text": "b"}


def test_client_configuration_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="unknown settings"):
        AsyncClient(providers={"cohere": {"apikey": "x"}})
    with pytest.raises(ConfigurationError, match="must be a ProviderSettings or a dict"):
        AsyncClient(providers={"cohere": "key"})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="timeout"):
        AsyncClient(timeout=-1)
    with pytest.raises(ConfigurationError, match="max_connections"):
        AsyncClient(max_connections=0)


async def test_closed_client_refuses_calls(cohere_server: FakeServer) -> None:
    client = AsyncClient(providers={"cohere": {"api_key": "k", "api_base": cohere_server.url}})
    await client.aclose()
    with pytest.raises(ConfigurationError, match="closed"):
        await client.rerank(MODEL, "q", ["a"])


def test_rendering_rules() -> None:
    doc = {"title": "T", "body": "B", "tags": ["x", "y"], "n": 3}
    assert render(doc, ["title", "body"], 0) == "title: T\nbody: B"
    assert render(doc, ["tags", "n"], 0) == 'tags: ["x","y"]\nn: 3'
    assert render(doc, ["body"], 0) == "B"
    assert render({"text": "plain", "id": 1}, None, 0) == "plain"
    assert render({"a": 1, "b": None}, None, 0) == "a: 1\nb: null"


async def test_mixed_documents_back_fill_the_callers_items() -> None:
    docs: list[Any] = ["plain apple", {"text": "apple pie", "id": 7}]
    response = await rerankit.arerank("local/bm25", "apple pie", docs)
    assert response.results[0].document is docs[1]
    assert response.results[1].document == {"text": "plain apple"}


def test_provider_settings_values_are_checked() -> None:
    with pytest.raises(ConfigurationError, match=r"providers\['cohere'\]: timeout must be"):
        AsyncClient(providers={"cohere": {"timeout": -1}})
    with pytest.raises(ConfigurationError, match="max_retries must be >= 0"):
        rerankit.ProviderSettings(max_retries=-2)


def test_local_models_refuse_http_only_arguments() -> None:
    with pytest.raises(rerankit.UnsupportedParameterError, match="extra_body"):
        rerankit.rerank("local/bm25", "q", ["a"], extra_body={"x": 1})
    with pytest.warns(rerankit.RerankitWarning, match="extra_headers"):
        rerankit.rerank("local/bm25", "q", ["a"], extra_headers={"x": "1"}, drop_params=True)
