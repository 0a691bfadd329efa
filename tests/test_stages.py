"""The stages of one call (rerankit._stages), each on its own, and the Call value they share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

import rerankit
from rerankit import (
    ConfigurationError,
    MemoryCache,
    RerankitWarning,
    RerankRequest,
    RerankResponse,
    RerankResult,
    RetryPolicy,
    Usage,
)
from rerankit._cache import store
from rerankit._call import NO_OPTIONS, NO_SETTINGS, Call, call_settings
from rerankit._cost import PriceTable
from rerankit._events import Watchers
from rerankit._fallback import Fallback
from rerankit._settings import settings_map
from rerankit._stages import (
    Emulation,
    Prepared,
    Runner,
    add_cost,
    cache_lookup,
    check_input,
    execute,
    merge_and_finalise,
    native_parameters,
    plan,
    prepare,
)
from rerankit._targets import Target, Targets
from rerankit._tokens import TokenEstimator
from rerankit.providers import ModelCapabilities, Provider, ProviderContext
from rerankit.testing import FakeServer

from .conftest import API_KEY

pytestmark = pytest.mark.anyio

ESTIMATOR = TokenEstimator()
KEY = "stage-key-0123456789"


class Stub(Provider):
    """Scores a document by its length; takes ``timeout`` as an option of its own."""

    name = "stub"
    options = frozenset({"timeout", "flavour"})
    caps: ClassVar[ModelCapabilities] = ModelCapabilities()
    native: ClassVar[frozenset[str]] = frozenset()

    def capabilities(self, model: str) -> ModelCapabilities:
        return self.caps

    def native_parameters(self, request: RerankRequest, ctx: ProviderContext) -> frozenset[str]:
        return self.native

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        results = [
            RerankResult(index=i, relevance_score=float(len(text)))
            for i, text in enumerate(request.documents)
        ]
        return RerankResponse(results=results, id=f"r{len(results)}", usage=Usage(search_units=1))


@pytest.fixture(autouse=True)
def stub() -> Iterator[type[Stub]]:
    rerankit.register_provider("stub", Stub)
    yield Stub
    rerankit.unregister_provider("stub")
    Stub.caps = ModelCapabilities()
    Stub.native = frozenset()


def target_of(model: str = "stub/m", **settings: Any) -> Target:
    providers = {"stub": {"api_key": KEY, "api_base": "http://stub.test", **settings}}
    targets = Targets(
        settings_map(providers),
        timeout=30.0,
        policy=RetryPolicy(),
        prices=PriceTable({"stub/m": {"per_search_unit": 0.5}}),
        hooked=False,
    )
    return targets.get(model, None)


def call_of(documents: list[Any], **fields: Any) -> Call:
    return Call(model="stub/m", provider=None, query="q", documents=documents, **fields)


async def prepared(call: Call, target: Target | None = None, drop: bool = False) -> Prepared:
    target = target or target_of()
    request = await check_input(call, target)
    return prepare(call, target, request, drop, lambda: None)  # type: ignore[arg-type,return-value]


# --- the call value --------------------------------------------------------------------------


def test_settings_and_provider_options_are_apart() -> None:
    settings, options = call_settings(
        {"api_key": KEY, "timeout": 3, "flavour": "x", "litellm_call_id": "id"},
        {"timeout": 9},
        num_retries=1,
    )
    assert (settings.api_key, settings.timeout, settings.max_retries) == (KEY, 3.0, 1)
    assert options == {"timeout": 9, "flavour": "x"}  # options= may use a setting's name


def test_a_name_given_both_ways_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'flavour' is given both"):
        call_settings({"flavour": "a"}, {"flavour": "b"})


def test_a_call_that_sets_nothing_shares_the_empty_values() -> None:
    assert call_settings({}) == (NO_SETTINGS, NO_OPTIONS)
    assert call_settings({"litellm_call_id": "x"}) == (NO_SETTINGS, NO_OPTIONS)


def test_settings_are_checked_once_and_named() -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        call_settings({"timeout": -1})
    with pytest.raises(ConfigurationError, match="disagree"):
        call_settings({"max_retries": 2}, num_retries=1)
    with pytest.raises(ConfigurationError, match="options must be a dict"):
        call_settings({}, ["flavour"])  # type: ignore[arg-type]


def test_the_settings_repr_masks_the_key() -> None:
    settings, _ = call_settings({"api_key": KEY, "timeout": 2})
    assert KEY not in repr(settings)
    assert "timeout=2.0" in repr(settings)
    assert KEY not in repr(call_of(["a"], settings=settings))


def test_a_fallback_is_the_same_call_for_another_model() -> None:
    settings, _ = call_settings({"api_key": KEY}, metadata={"team": "a"})
    call = call_of(["a", "b"], top_n=1, settings=settings, options={"flavour": "x"})
    fallback = call.for_fallback(Fallback("cohere/rerank-v3.5", {"timeout": 4, "priority": 1}))
    assert (fallback.model, fallback.provider, fallback.top_n) == ("cohere/rerank-v3.5", None, 1)
    assert fallback.documents is call.documents
    assert fallback.options == {"priority": 1}
    assert fallback.settings.api_key is None  # the fallback's own credentials, not the first's
    assert fallback.settings.timeout == 4.0
    assert fallback.settings.drop_params is True
    assert fallback.settings.tags == settings.tags


# --- check input, prepare --------------------------------------------------------------------


async def test_check_input_builds_the_request() -> None:
    request = await check_input(call_of([{"text": "a"}, "bb"], top_n=9), target_of())
    assert request.documents == ["a", "bb"]
    assert request.source_documents == [{"text": "a"}, "bb"]
    assert request.top_n == 2  # cut to the number of documents
    with pytest.raises(ConfigurationError, match="query"):
        await check_input(Call(model="stub/m", provider=None, query=" ", documents=[]), target_of())


async def test_prepare_checks_options_and_resolves_credentials() -> None:
    job = await prepared(call_of(["a"], options={"flavour": "x"}))
    assert job.request.options == {"flavour": "x"}
    assert (job.ctx.api_key, job.ctx.api_base, job.ctx.timeout) == (KEY, "http://stub.test", 30)
    with pytest.raises(ConfigurationError, match="unknown argument 'colour'"):
        await prepared(call_of(["a"], options={"colour": "x"}))
    with pytest.warns(RerankitWarning, match="dropped"):
        job = await prepared(call_of(["a"], options={"colour": "x"}), drop=True)
    assert job.request.options == {}


async def test_a_call_without_settings_reuses_one_context() -> None:
    target = target_of()
    first, second = await prepared(call_of(["a"]), target), await prepared(call_of(["b"]), target)
    assert first.ctx is second.ctx
    settings, _ = call_settings({"api_key": "other-key-0123456789"})
    own = await prepared(call_of(["a"], settings=settings), target)
    assert own.ctx is not first.ctx
    assert own.ctx.api_key == "other-key-0123456789"
    assert (await prepared(call_of(["a"]), target, drop=True)).ctx.drop_params is True


async def test_prepare_applies_the_clients_capability_overrides() -> None:
    job = await prepared(call_of(["a"]), target_of(capabilities={"max_documents": 3}))
    assert job.caps.max_documents == 3


# --- cache lookup ----------------------------------------------------------------------------


async def test_cache_lookup_misses_then_finds_with_this_calls_documents() -> None:
    cache = MemoryCache()
    job = await prepared(call_of(["a", "bb"]))
    key, cached = await cache_lookup(cache, job, ESTIMATOR)
    assert key is not None
    assert cached is None
    answer = RerankResponse(results=[RerankResult(index=1, relevance_score=0.9)])
    await store(cache, key, answer)
    again = await prepared(call_of(["a", "bb"]))
    key_again, found = await cache_lookup(cache, again, ESTIMATOR)
    assert key_again == key
    assert found is not None
    assert [(r.index, r.document) for r in found.results] == [(1, {"text": "bb"})]


# --- native parameters, plan -----------------------------------------------------------------


async def test_native_parameters_send_or_emulate() -> None:
    assert native_parameters(await prepared(call_of(["a"]))) == Emulation()
    job = await prepared(call_of(["a"], max_tokens_per_doc=64, max_chunks_per_doc=2))
    assert native_parameters(job) == Emulation(window=64, max_chunks=2)
    assert (job.request.max_tokens_per_doc, job.request.max_chunks_per_doc) == (None, None)
    Stub.native = frozenset({"max_tokens_per_doc", "instruction"})
    job = await prepared(call_of(["a"], max_tokens_per_doc=64, instruction="be brief"))
    assert native_parameters(job) == Emulation()
    assert (job.request.max_tokens_per_doc, job.request.instruction) == (64, "be brief")


async def test_an_instruction_the_provider_cannot_take_is_refused_or_dropped() -> None:
    with pytest.raises(ConfigurationError, match="instruction"):
        native_parameters(await prepared(call_of(["a"], instruction="x")))
    job = await prepared(call_of(["a"], instruction="x"), drop=True)
    with pytest.warns(RerankitWarning, match="instruction"):
        native_parameters(job)
    assert job.request.instruction is None


async def test_plan_is_none_for_one_request_else_batches() -> None:
    assert await plan(await prepared(call_of(["a"] * 5)), Emulation(), ESTIMATOR) is None
    Stub.caps = ModelCapabilities(max_documents=2)
    batches = await plan(await prepared(call_of(["a"] * 5)), Emulation(), ESTIMATOR)
    assert batches is not None
    assert batches.batches == [(0, 2), (2, 4), (4, 5)]
    emulated = await plan(await prepared(call_of(["w " * 40])), Emulation(window=10), ESTIMATOR)
    assert emulated is not None
    assert emulated.chunked


# --- execute, merge and finalise, cost -------------------------------------------------------


def runner() -> Runner:
    import asyncio

    slots = asyncio.Semaphore(4)
    return Runner(RetryPolicy(max_retries=0), Watchers(None), 2, lambda: slots)


async def test_execute_then_merge_one_request() -> None:
    job = await prepared(call_of(["a", "ccc", "bb"], top_n=2))
    answer = await execute(job, None, runner())
    assert isinstance(answer, RerankResponse)
    response = await merge_and_finalise(job, None, answer)
    assert [r.index for r in response.results] == [1, 2]
    assert response.results[0].document == {"text": "ccc"}
    assert (response.provider, response.model) == ("stub", "m")


async def test_execute_then_merge_batches() -> None:
    Stub.caps = ModelCapabilities(max_documents=2)
    job = await prepared(call_of(["a", "ccc", "bb", "dddd", "e"]))
    batches = await plan(job, Emulation(), ESTIMATOR)
    answers = await execute(job, batches, runner())
    assert isinstance(answers, list)
    assert len(answers) == 3
    response = await merge_and_finalise(job, batches, answers)
    assert [r.index for r in response.results] == [3, 1, 2, 0, 4]
    assert response.usage.search_units == 3
    assert response.provider_meta["batches"] == 3
    assert response.provider_meta["request_ids"] == ["r2", "r2", "r1"]


async def test_add_cost_prices_the_usage() -> None:
    job = await prepared(call_of(["a"]))
    response = RerankResponse(results=[], usage=Usage(search_units=2))
    add_cost(response, job, None)
    assert response.cost == 1.0
    unpriced = await prepared(call_of(["a"]), target_of("stub/other"))
    response = RerankResponse(results=[], usage=Usage(search_units=2))
    add_cost(response, unpriced, None)
    assert response.cost is None


# --- options= through the client, over real HTTP ---------------------------------------------


async def test_options_reach_the_provider_and_settings_stay_settings(
    cohere_server: FakeServer,
) -> None:
    async with rerankit.AsyncClient() as client:
        response = await client.rerank(
            "cohere/rerank-v3.5",
            "q",
            ["a", "b"],
            api_key=API_KEY,
            api_base=cohere_server.url,
            options={"priority": 3},
        )
    assert len(response.results) == 2
    assert cohere_server.received[-1].json()["priority"] == 3


async def test_a_provider_option_named_like_a_setting_goes_through_options() -> None:
    seen: list[tuple[RerankRequest, ProviderContext]] = []

    class Recording(Stub):
        async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
            seen.append((request, ctx))
            return await super().rerank(request, ctx)

    rerankit.register_provider("stub", Recording)
    async with rerankit.AsyncClient(timeout=12) as client:
        await client.rerank("stub/m", "q", ["a"], options={"timeout": "slow"}, timeout=5)
        with pytest.raises(ConfigurationError, match="given both"):
            await client.rerank("stub/m", "q", ["a"], options={"flavour": 1}, flavour=2)
    request, ctx = seen[0]
    assert request.options == {"timeout": "slow"}
    assert ctx.timeout == 5.0


def test_the_sync_facade_and_rerank_many_take_options() -> None:
    with rerankit.Client() as client:
        single = client.rerank("stub/m", "q", ["a", "bb"], options={"flavour": "x"})
        many = client.rerank_many("stub/m", [("q", ["a"]), ("q", ["bb"])], options={"x": 1})
    assert [r.index for r in single.results] == [1, 0]
    assert rerankit.rerank("stub/m", "q", ["a"], options={"flavour": "x"}).results
    assert all(isinstance(result, ConfigurationError) for result in many)
    assert "unknown argument 'x'" in str(many[0])
