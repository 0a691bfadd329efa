"""Batching past provider limits and chunking long documents give one correct ranking."""

from __future__ import annotations

import asyncio
import itertools
import zlib
from collections.abc import Iterator
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rerankit
from rerankit import RerankRequest, RerankResponse, RerankResult
from rerankit._plan import plan_requests, surely_within
from rerankit._tokens import HFTokenizer, TokenEstimator
from rerankit.providers import ModelCapabilities, Provider, ProviderContext
from rerankit.testing import FakeServer, Reply, TEIFake, overlap_score

ESTIMATOR = TokenEstimator()
WORDS = [f"w{i}" for i in range(40)]


def word_score(word: str) -> float:
    return zlib.crc32(word.encode()) / 2**32


def best_word(text: str) -> float:
    """A pointwise scorer that chunking cannot change: a text scores as its best word."""
    return max((word_score(w) for w in text.split()), default=0.0)


class Pointwise(Provider):
    """Scores every text it gets with ``best_word``; records each request it receives."""

    name = "pointwise"
    caps: ClassVar[ModelCapabilities] = ModelCapabilities()
    seen: ClassVar[list[RerankRequest]] = []
    delay: ClassVar[float] = 0.0

    def capabilities(self, model: str) -> ModelCapabilities:
        return self.caps if model == "limited" else ModelCapabilities()

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        type(self).seen.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        scored = [
            RerankResult(index=i, relevance_score=best_word(t))
            for i, t in enumerate(request.documents)
        ]
        scored.sort(key=lambda r: -r.relevance_score)
        return RerankResponse(results=scored[: request.top_n])


@pytest.fixture(autouse=True)
def pointwise() -> Iterator[type[Pointwise]]:
    rerankit.register_provider("pointwise", Pointwise)
    Pointwise.seen = []
    yield Pointwise
    rerankit.unregister_provider("pointwise")
    Pointwise.caps = ModelCapabilities()
    Pointwise.delay = 0.0


documents = st.lists(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=40).map(" ".join), max_size=30
)
limits = st.builds(
    ModelCapabilities,
    max_documents=st.none() | st.integers(1, 6),
    max_tokens_per_doc=st.none() | st.integers(12, 40),
    max_request_tokens=st.none() | st.integers(60, 200),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(docs=documents, caps=limits, top_n=st.none() | st.integers(1, 35))
def test_limits_never_change_the_ranking(
    docs: list[str], caps: ModelCapabilities, top_n: int | None
) -> None:
    Pointwise.caps = caps
    Pointwise.seen = []
    limited = rerankit.rerank("pointwise/limited", "q", docs, top_n=top_n)
    requests = list(Pointwise.seen)
    unlimited = rerankit.rerank("pointwise/unlimited", "q", docs, top_n=top_n)

    assert [(r.index, r.relevance_score) for r in limited.results] == [
        (r.index, r.relevance_score) for r in unlimited.results
    ]
    if top_n is None:
        assert sorted(r.index for r in limited.results) == list(range(len(docs)))
    for request in requests:  # every request the provider saw respects every limit
        if caps.max_documents:
            assert len(request.documents) <= caps.max_documents
        tokens = ESTIMATOR.count(request.documents)
        if caps.max_tokens_per_doc:
            assert max(tokens, default=0) <= caps.max_tokens_per_doc
        if caps.max_request_tokens:
            query = ESTIMATOR.count(["q"])[0]
            assert query * len(tokens) + sum(tokens) <= caps.max_request_tokens


def test_many_documents_become_concurrent_batches_within_limits() -> None:
    Pointwise.caps = ModelCapabilities(max_documents=100)
    Pointwise.delay = 0.01
    docs = [" ".join(WORDS[(i * 7) % 40 : (i * 7) % 40 + 3]) for i in range(1_000)]
    response = rerankit.rerank("pointwise/limited", "q", docs, top_n=10, batch_concurrency=4)
    assert len(Pointwise.seen) == 10
    assert {len(r.documents) for r in Pointwise.seen} == {100}
    assert all(r.top_n == 10 for r in Pointwise.seen)  # each batch's own best 10 suffice
    expected = sorted(range(len(docs)), key=lambda i: (-best_word(docs[i]), i))[:10]
    assert [r.index for r in response.results] == expected
    assert response.provider_meta["batches"] == 10


@pytest.mark.anyio
async def test_concurrency_is_bounded_per_call_and_per_client() -> None:
    in_flight = peak = 0

    class Counting(Pointwise):
        async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.005)
            in_flight -= 1
            return await super().rerank(request, ctx)

    rerankit.register_provider("pointwise", Counting)
    Pointwise.caps = ModelCapabilities(max_documents=5)
    docs = [f"w{i}" for i in range(40)]
    async with rerankit.AsyncClient(batch_concurrency=3, max_batch_concurrency=4) as client:
        await client.rerank("pointwise/limited", "q", docs)
        assert peak == 3
        peak = 0
        await asyncio.gather(*(client.rerank("pointwise/limited", "q", docs) for _ in range(3)))
        assert peak == 4


def test_a_failing_batch_fails_the_call_and_names_itself() -> None:
    class FailingThird(Pointwise):
        async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
            if request.documents[0] == "w10":
                raise rerankit.BadRequestError("too long", status_code=400)
            return await super().rerank(request, ctx)

    rerankit.register_provider("pointwise", FailingThird)
    Pointwise.caps = ModelCapabilities(max_documents=5)
    with pytest.raises(
        rerankit.BadRequestError, match=r"batch 3 of 8 \(documents 10\.\.14\)"
    ) as info:
        rerankit.rerank("pointwise/limited", "q", [f"w{i}" for i in range(40)])
    assert info.value.batch == 2


def test_long_documents_score_as_their_best_chunk() -> None:
    Pointwise.caps = ModelCapabilities(max_tokens_per_doc=30)
    long_doc = " ".join(WORDS * 5)  # ~800 characters: many windows
    docs = ["w1", long_doc, "w2 w3"]
    response = rerankit.rerank("pointwise/limited", "q", docs)
    assert {r.index: r.relevance_score for r in response.results} == {
        i: best_word(d) for i, d in enumerate(docs)
    }
    assert response.results[[r.index for r in response.results].index(1)].document == {
        "text": long_doc
    }
    (request,) = Pointwise.seen
    assert len(request.documents) > 10
    assert all(ESTIMATOR.count([t])[0] <= 30 for t in request.documents)
    assert request.top_n is None


def test_max_tokens_and_max_chunks_are_emulated_where_the_provider_lacks_them() -> None:
    docs = [" ".join(WORDS), "w5"]
    response = rerankit.rerank(
        "pointwise/unlimited", "q", docs, max_tokens_per_doc=10, max_chunks_per_doc=2
    )
    chunks = Pointwise.seen[0].documents
    assert len(chunks) == 3  # two chunks of the long document, then the short one
    assert " ".join(chunks[:2]).split() != docs[0].split()  # the rest was left out
    assert {r.index for r in response.results} == {0, 1}
    assert response.results[0].relevance_score == max(best_word(c) for c in chunks)


def test_listwise_models_are_not_merged_across_requests() -> None:
    Pointwise.caps = ModelCapabilities(max_documents=2, listwise=True)
    with pytest.raises(rerankit.ConfigurationError, match="listwise"):
        rerankit.rerank("pointwise/limited", "q", ["w1", "w2", "w3"])
    assert Pointwise.seen == []
    assert len(rerankit.rerank("pointwise/limited", "q", ["w1", "w2"]).results) == 2


def test_query_longer_than_the_pair_budget_is_a_clear_error() -> None:
    Pointwise.caps = ModelCapabilities(max_pair_tokens=20)
    with pytest.raises(rerankit.ConfigurationError, match="query is too long"):
        rerankit.rerank("pointwise/limited", "a fairly long query " * 4, ["w1"])


def test_usage_sums_only_when_every_batch_reports_it() -> None:
    class Billing(Pointwise):
        async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
            response = await super().rerank(request, ctx)
            response.usage = rerankit.Usage(
                search_units=1, input_tokens=None if request.documents[0] == "w0" else 5
            )
            return response

    rerankit.register_provider("pointwise", Billing)
    Pointwise.caps = ModelCapabilities(max_documents=2)
    response = rerankit.rerank("pointwise/limited", "q", ["w0", "w1", "w2", "w3"])
    assert response.usage.search_units == 2
    assert response.usage.input_tokens is None


def test_estimator_windows_cover_the_text_with_overlap() -> None:
    text = " ".join(f"word{i}" for i in range(200))
    spans = ESTIMATOR.windows(text, 20, 4)
    assert spans[0][0] == 0
    assert spans[-1][1] == len(text)
    for (start, end), (next_start, _) in itertools.pairwise(spans):
        assert next_start < end  # overlapping
        assert ESTIMATOR.count([text[start:end]])[0] <= 20
    assert ESTIMATOR.windows("漢字" * 40, 10, 2)[0] == (0, 10)


def test_exact_tokenizer_plans_with_real_counts() -> None:
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers

    tokenizer = tokenizers.Tokenizer(
        models.WordLevel({w: i for i, w in enumerate(WORDS)} | {"[UNK]": 40}, unk_token="[UNK]")
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    counter = HFTokenizer(tokenizer)
    assert counter.count(["w1 w2 w3", ""]) == [3, 0]
    text = " ".join(WORDS)
    spans = counter.windows(text, 10, 2)
    assert [len(text[a:b].split()) for a, b in spans] == [10, 10, 10, 10, 8]
    plan = plan_requests("q", [text], ModelCapabilities(max_tokens_per_doc=10), counter)
    assert plan is not None
    assert plan.owners == [0] * 5
    Pointwise.caps = ModelCapabilities(max_tokens_per_doc=10)
    response = rerankit.rerank("pointwise/limited", "q", [text, "w0"], tokenizer=tokenizer)
    # windows of 10 tokens overlapping by 10 // 8 = 1: 0-10, 9-19, 18-28, 27-37, 36-40
    assert [len(t.split()) for t in Pointwise.seen[0].documents] == [10, 10, 10, 10, 4, 1]
    assert response.results[0].relevance_score == best_word(text)


def test_tei_batch_limit_over_real_http() -> None:
    docs = [f"document {i} about {'passwords' if i % 9 == 0 else 'billing'}" for i in range(100)]
    with FakeServer(TEIFake(max_client_batch_size=32)) as server:
        response = rerankit.rerank(
            "huggingface/BAAI/bge-reranker-v2-m3",
            "reset passwords",
            docs,
            top_n=5,
            api_base=server.url,
        )
    assert [len(r.json()["texts"]) for r in server.received] == [32, 32, 32, 4]
    scores = [overlap_score("reset passwords", d) for d in docs]
    assert [r.index for r in response.results] == sorted(range(100), key=lambda i: (-scores[i], i))[
        :5
    ]


def test_a_failing_batch_over_http_after_retries() -> None:
    docs = [f"doc {i}" for i in range(70)]
    with FakeServer(TEIFake(max_client_batch_size=32)) as server:
        server.fail(*[Reply(status=503, body={"error": "overloaded"})] * 3)
        with pytest.raises(rerankit.InternalServerError, match="batch 1 of 3"):
            rerankit.rerank(
                "huggingface/m", "q", docs, api_base=server.url, max_retries=2, batch_concurrency=1
            )


def test_client_settings_override_declared_limits() -> None:
    docs = [f"doc {i}" for i in range(25)]
    with FakeServer(TEIFake(max_client_batch_size=10)) as server:
        client = rerankit.Client(
            providers={
                "huggingface": {"api_base": server.url, "capabilities": {"max_documents": 10}}
            }
        )
        with client:
            response = client.rerank("huggingface/m", "doc 7", docs)
    assert [len(r.json()["texts"]) for r in server.received] == [10, 10, 5]
    assert response.results[0].index == 7
    with pytest.raises(rerankit.ConfigurationError, match="unknown capabilities"):
        rerankit.ProviderSettings(capabilities={"max_docs": 3})


def test_per_document_options_follow_their_documents_into_batches_and_chunks() -> None:
    class Tagged(Pointwise):
        options = frozenset({"tags"})
        per_document_options = frozenset({"tags"})

    rerankit.register_provider("pointwise", Tagged)
    Pointwise.caps = ModelCapabilities(max_documents=2, max_tokens_per_doc=12)
    docs = ["w1", "w2 " * 20, "w3"]
    rerankit.rerank("pointwise/limited", "q", docs, tags=["a", "b", "c"])
    sent = [(len(r.documents), r.options["tags"]) for r in Pointwise.seen]
    flat = [tag for _, tags in sent for tag in tags]
    chunks = len(flat) - 2
    assert chunks >= 2  # the long document went as several chunks, each with its tag
    assert flat == ["a", *["b"] * chunks, "c"]
    assert all(count == len(tags) for count, tags in sent)


@given(st.lists(st.text(max_size=60), max_size=8), st.integers(1, 120))
def test_texts_judged_within_a_limit_without_counting_are_within_it(
    texts: list[str], tokens: int
) -> None:
    if surely_within(texts, tokens):  # no tokenizer makes more tokens than UTF-8 bytes
        assert all(len(text.encode()) <= tokens for text in texts)


def test_long_ascii_texts_fit_without_counting() -> None:
    assert surely_within(["a" * 3000, "b" * 4096], 4096)
    assert not surely_within(["a" * 4097], 4096)
    assert not surely_within(["é" * 1100], 4096)  # up to 4 bytes a character: counted
    assert surely_within(["é" * 1000], 4096)


caps_with_budgets = st.builds(
    ModelCapabilities,
    max_documents=st.none() | st.integers(1, 12),
    max_tokens_per_doc=st.none() | st.integers(8, 80),
    max_pair_tokens=st.none() | st.integers(16, 120),
    max_request_tokens=st.none() | st.integers(40, 600),
    max_request_bytes=st.none() | st.integers(200, 2_000),
    request_byte_overhead=st.integers(0, 20),
)


@settings(max_examples=300, deadline=None)
@given(
    query=st.text(min_size=1, max_size=30),
    texts=st.lists(st.text(max_size=60), max_size=10),
    caps=caps_with_budgets,
    window=st.none() | st.integers(8, 60),
)
def test_skipping_the_count_never_changes_the_plan(
    query: str, texts: list[str], caps: ModelCapabilities, window: int | None
) -> None:
    """When lengths alone say one request fits, counting would have said so too."""
    import rerankit._plan as planning

    if not planning.surely_one_request(query, texts, caps, window):
        return
    fast = planning.surely_one_request
    try:
        planning.surely_one_request = lambda *args: False  # type: ignore[assignment]
        counted = plan_requests(query, texts, caps, ESTIMATOR, window=window)
    finally:
        planning.surely_one_request = fast  # type: ignore[assignment]
    assert counted is None
