"""The shared JSON adapter: route joining, lenient and strict result parsing, usage rules."""

from __future__ import annotations

import msgspec
import pytest

import rerankit
from rerankit.providers._rest import Envelope, join_route, usage_from
from rerankit.testing import FakeServer, Reply


@pytest.mark.parametrize(
    ("base", "route", "url"),
    [
        ("https://api.jina.ai", "/v1/rerank", "https://api.jina.ai/v1/rerank"),
        ("https://gw.example/jina/v1/", "/v1/rerank", "https://gw.example/jina/v1/rerank"),
        ("https://gw.example/x/v1/rerank", "/v1/rerank", "https://gw.example/x/v1/rerank"),
        (
            "https://api.fireworks.ai/v1",
            "/inference/v1/rerank",
            "https://api.fireworks.ai/v1/rerank",
        ),
        (
            "https://api.fireworks.ai",
            "/inference/v1/rerank",
            "https://api.fireworks.ai/inference/v1/rerank",
        ),
        ("https://z.dev/v1", "/v1/models/rerank", "https://z.dev/v1/models/rerank"),
        ("http://h:7997", "/rerank", "http://h:7997/rerank"),
    ],
)
def test_join_route(base: str, route: str, url: str) -> None:
    assert join_route(base, route) == url


def test_join_route_strips_and_accepts_complete_suffixes() -> None:
    strip = ("/rerank", "/v1")
    assert join_route("http://h:8000/v1", "/rerank", strip=strip) == "http://h:8000/rerank"
    assert join_route("http://h:8000/v1/rerank", "/rerank", strip=strip) == "http://h:8000/rerank"
    assert (
        join_route("https://d/x/rerank", "/y/reranks", complete=("/rerank",))
        == "https://d/x/rerank"
    )


def test_usage_takes_only_what_is_reported() -> None:
    def usage(body: object) -> rerankit.Usage:
        return usage_from(msgspec.json.decode(msgspec.json.encode(body), type=Envelope))

    assert usage({}) == rerankit.Usage()
    assert usage({"meta": {"billed_units": {"search_units": 2}}}).search_units == 2
    assert usage({"usage": {"rerank_units": 1}}).search_units == 1
    assert usage({"usage": {"prompt_tokens": 7, "total_tokens": 9}}) == rerankit.Usage(
        input_tokens=7, total_tokens=9
    )
    assert usage({"tokens": {"input_tokens": 4, "output_tokens": 1}}) == rerankit.Usage(
        input_tokens=4, total_tokens=5
    )
    assert usage({"tokens": {"input_tokens": 4}}).total_tokens is None
    assert usage({"total_tokens": 12}).total_tokens == 12


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([{"index": 0, "relevance_score": 0.5}], "bare JSON array"),
        ({"data": [{"index": 0, "relevance_score": 0.5}]}, "without a result list"),
        ({"results": [{"relevance_score": 0.5}]}, "without index"),
        ({"results": [{"index": 0, "score": 0.5}]}, "without relevance_score"),
    ],
)
def test_strict_vendor_rejects_other_shapes(body: object, problem: str) -> None:
    with (
        FakeServer(lambda request: Reply(body=body)) as server,
        pytest.raises(rerankit.ResponseValidationError, match=problem),
    ):
        rerankit.rerank(
            "jina_ai/jina-reranker-v2-base-multilingual",
            "q",
            ["a"],
            api_key="k",
            api_base=server.url,
        )


@pytest.mark.parametrize(
    "body",
    [
        [{"index": 1, "score": 0.9}, {"index": 0, "score": 0.1}],
        {"data": [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.1}]},
        {"results": [{"index": 0, "relevance_score": 0.1}, {"index": 1, "relevance_score": 0.9}]},
        # shapes the typed fast path cannot take, read by the lenient one
        {"results": [{"index": 0, "score": 0.1}, {"index": 1, "relevance_score": 0.9}]},
        {
            "results": [
                {"index": 1, "relevance_score": 0.9, "document": "echo"},
                {"index": 0, "score": 0.1},
            ]
        },
        {
            "results": [
                {"index": 1, "relevance_score": 0.9, "document": {"text": "echo"}},
                {"index": 0, "relevance_score": None, "score": 0.1},
            ]
        },
    ],
)
def test_lenient_vendor_reads_every_documented_shape(body: object) -> None:
    with FakeServer(lambda request: Reply(body=body)) as server:
        response = rerankit.rerank("cohere_compatible/any", "q", ["a", "b"], api_base=server.url)
    assert [r.index for r in response.results] == [1, 0]
    assert [r.document for r in response.results] == [{"text": "b"}, {"text": "a"}]
