"""Chat models as rerankers over real HTTP against a fake chat completions server."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from rerankit import AsyncClient, ConfigurationError, ResponseValidationError
from rerankit.providers._llm_prompts import (
    listwise_messages,
    permutation,
    pointwise_messages,
    windows,
    yes_probability,
)
from rerankit.providers.llm import LLMProvider
from rerankit.testing import ChatFake, FakeServer, ProviderContract, overlap_score

from .support import DOCS, FAST_RETRY, NO_RETRY, QUERY, clean_env, expected_order

pytestmark = pytest.mark.anyio

KEY = "contract-key"
_clean_provider_env = clean_env(LLMProvider)


class TestPointwiseContract(ProviderContract):
    model = "llm/gpt-test"
    fake_class = ChatFake

    def expected_scores(self, query: str, texts: list[str]) -> list[float]:
        return [min(max(overlap_score(query, text), 0.001), 0.999) for text in texts]


class TestPlainPromptContract(TestPointwiseContract):
    def settings(self, server: FakeServer) -> dict[str, Any]:
        return {**super().settings(server), "options": {"prompt": "plain"}}


class TestListwiseContract(ProviderContract):
    model = "llm/listwise/gpt-test"
    fake_class = ChatFake


@pytest.fixture
def chat() -> Iterator[Any]:
    servers: list[FakeServer] = []

    def start(**fake: Any) -> FakeServer:
        server = FakeServer(ChatFake(KEY, **fake))
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


async def _rerank(server: FakeServer, model: str, documents: list[str], **kwargs: Any) -> Any:
    providers = {"llm": {"api_key": KEY, "api_base": server.url + "/v1"}}
    async with AsyncClient(providers=providers, retry=FAST_RETRY, timeout=10) as client:
        return await client.rerank(model, QUERY, documents, **kwargs)


# --- pointwise ---------------------------------------------------------------------------------


async def test_pointwise_sends_one_judgement_per_document_and_sums_usage(chat: Any) -> None:
    server = chat()
    response = await _rerank(server, "llm/gpt-test", DOCS, instruction="find answers")
    assert len(server.received) == len(DOCS)
    body = server.received[0].json()
    assert server.received[0].path == "/v1/chat/completions"
    assert body["max_tokens"] == 1
    assert body["logprobs"] is True
    assert body["top_logprobs"] == 20
    assert "<Instruct>: find answers\n<Query>: " in body["messages"][-1]["content"]
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)
    assert response.score_kind == "probability"
    assert response.usage.input_tokens is not None
    assert response.usage.total_tokens > response.usage.input_tokens


async def test_pointwise_without_logprobs_fails_clearly(chat: Any) -> None:
    server = chat(logprobs=False)
    with pytest.raises(ResponseValidationError, match="log-probabilities"):
        await _rerank(server, "llm/gpt-test", DOCS[:1])


def test_yes_probability_pools_variants_and_bounds_a_missing_side() -> None:
    listed = [
        {"token": "Yes", "logprob": math.log(0.3)},
        {"token": " yes", "logprob": math.log(0.3)},
        {"token": "no", "logprob": math.log(0.2)},
        {"token": "maybe", "logprob": math.log(0.1)},
    ]
    assert yes_probability(listed) == pytest.approx(0.6 / 0.8)
    only_yes = [{"token": "yes", "logprob": math.log(0.9)}, {"token": "x", "logprob": -5.0}]
    assert yes_probability(only_yes) == pytest.approx(0.9 / (0.9 + math.exp(-5.0)))
    assert yes_probability([{"token": "perhaps", "logprob": -0.1}]) is None
    assert yes_probability([{"token": "yes", "logprob": "bad"}, "junk"]) is None


def test_the_two_pointwise_prompts() -> None:
    qwen = pointwise_messages("qwen3", "q", "d", None)
    assert qwen[0]["content"].startswith("Judge whether the Document meets the requirements")
    assert qwen[1]["content"] == (
        "<Instruct>: Given a web search query, retrieve relevant passages that answer the query"
        "\n<Query>: q\n<Document>: d"
    )
    plain = pointwise_messages("plain", "q", "d", "prefer laws")
    assert plain[1]["content"].splitlines()[:3] == [
        "Instruction: prefer laws",
        "Query: q",
        "Document: d",
    ]


async def test_bad_method_options_are_configuration_errors(chat: Any) -> None:
    server = chat()
    for option in ({"prompt": "fancy"}, {"window": 0}, {"step": 30}):
        with pytest.raises(ConfigurationError, match="llm option"):
            await _rerank(server, "llm/gpt-test", DOCS, **option)
    assert server.received == []


async def test_openai_host_needs_a_key() -> None:
    async with AsyncClient(retry=NO_RETRY) as client:
        with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
            await client.rerank("llm/gpt-4o-mini", QUERY, DOCS[:1])
    assert LLMProvider.needs_api_key(None)
    assert not LLMProvider.needs_api_key("http://localhost:11434/v1")


# --- listwise ----------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["good", "malformed"])
async def test_listwise_reads_good_and_malformed_permutations(chat: Any, answer: str) -> None:
    server = chat(answer=answer)
    response = await _rerank(server, "llm/listwise/gpt-test", DOCS)
    assert len(server.received) == 1
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)
    assert response.score_kind == "unknown"
    assert response.provider_meta["chat_requests"] == 1


async def test_listwise_truncated_answer_keeps_its_ids_then_first_stage_order(chat: Any) -> None:
    server = chat(answer="truncated")
    response = await _rerank(server, "llm/listwise/gpt-test", DOCS)
    best = expected_order(QUERY, DOCS)[: len(DOCS) // 2]
    rest = [index for index in range(len(DOCS)) if index not in best]
    assert [r.index for r in response.results] == best + rest
    assert response.provider_meta["truncated_answers"] == 1


async def test_listwise_empty_answer_keeps_first_stage_order(chat: Any) -> None:
    server = chat(answer="empty")
    response = await _rerank(server, "llm/listwise/gpt-test", DOCS)
    assert [r.index for r in response.results] == list(range(len(DOCS)))


async def test_listwise_slides_windows_from_the_bottom(chat: Any) -> None:
    server = chat()
    documents = [f"filler text number {i}" for i in range(7)] + [QUERY]
    response = await _rerank(server, "llm/listwise/gpt-test", documents, window=3, step=2)
    assert len(server.received) == len(list(windows(len(documents), 3, 2)))
    assert response.results[0].index == len(documents) - 1  # bubbled up from the bottom
    first = server.received[0].json()["messages"]
    assert first[3]["content"] == "[1] filler text number 5"


def test_permutation_repairs_what_the_model_gets_wrong() -> None:
    assert permutation("[2] > [3] > [1]", 3) == [1, 2, 0]
    assert permutation("2, 2, 9, 0, [1]", 4) == [1, 0, 2, 3]
    assert permutation("[3] > [", 4) == [2, 0, 1, 3]
    assert permutation("", 2) == [0, 1]
    assert permutation("99999999999999999999 1", 2) == [0, 1]


def test_windows_cover_the_list_from_bottom_to_top() -> None:
    assert list(windows(5, 20, 10)) == [(0, 5)]
    assert list(windows(30, 20, 10)) == [(10, 30), (0, 20)]
    assert list(windows(8, 3, 2)) == [(5, 8), (3, 6), (1, 4), (0, 2)]


def test_listwise_prompt_cuts_long_passages() -> None:
    messages = listwise_messages("q", ["one two three four"], "be strict", 2)
    assert messages[3]["content"] == "[1] one two"
    assert messages[-1]["content"].startswith("be strict\nSearch Query: q.")


async def test_listwise_single_document_needs_no_request(chat: Any) -> None:
    server = chat()
    response = await _rerank(server, "llm/listwise/gpt-test", DOCS[:1])
    assert server.received == []
    assert [(r.index, r.relevance_score) for r in response.results] == [(0, 1.0)]
