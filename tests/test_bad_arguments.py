"""Whatever a caller passes wrong is a ConfigurationError naming it: raised before any request,
never retried, never a reason to fall back, and in rerank_many the result of its job only."""

from __future__ import annotations

import contextlib
import pathlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rerankit
from rerankit import AsyncClient, ConfigurationError, ProviderSettings, RetryPolicy
from rerankit.testing import FakeServer

from .conftest import API_KEY

pytestmark = pytest.mark.anyio

MODEL = "cohere/rerank-v3.5"
SECRET = "sk-live-SECRET-0123456789abcdef"


async def test_a_base_without_scheme_is_not_retried_and_does_not_fall_back(
    cohere_server: FakeServer,
) -> None:
    providers = {"cohere": {"api_key": API_KEY, "api_base": cohere_server.url}}
    async with AsyncClient(providers=providers, retry=RetryPolicy(initial_delay=5)) as client:
        with pytest.raises(ConfigurationError, match="api_base must start with http://") as info:
            await client.rerank(
                "voyage/rerank-2.5",
                "q",
                ["a", "b"],
                api_key="k",
                api_base="localhost:8080",
                fallbacks=[MODEL],
            )
    assert "'localhost:8080'" in str(info.value)
    assert cohere_server.received == []  # the fallback was not tried


async def test_a_url_aiohttp_refuses_is_a_configuration_error(cohere_server: FakeServer) -> None:
    """A provider may build its URL from options (bedrock puts the region in the host name);
    one aiohttp cannot use is not a connection failure to retry or fall back from."""
    pytest.importorskip("botocore")
    async with AsyncClient(retry=RetryPolicy(initial_delay=5)) as client:
        with pytest.raises(ConfigurationError, match="check api_base and the provider options"):
            await client.rerank(
                "bedrock/m",
                "q",
                ["a"],
                region="eu..west",
                aws_access_key_id="a",
                aws_secret_access_key="b",
                fallbacks=[MODEL],
            )
    assert cohere_server.received == []


async def test_a_host_name_that_cannot_be_encoded_is_refused(cohere_server: FakeServer) -> None:
    async with AsyncClient() as client:
        with pytest.raises(ConfigurationError, match="api_base has an invalid host name"):
            await client.rerank(MODEL, "q", ["a"], api_key="k", api_base="http://a..b")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("call", "api_key for cohere ends with a line break"),
        ("settings", r"providers\['cohere'\]: api_key ends with a line break"),
        ("environment", "the environment variable COHERE_API_KEY ends with a line break"),
    ],
)
async def test_a_key_read_with_its_newline_is_named_not_shown(
    where: str, message: str, monkeypatch: pytest.MonkeyPatch, cohere_server: FakeServer
) -> None:
    key = SECRET + "\n"
    call: dict[str, Any] = {"api_base": cohere_server.url}
    if where == "call":
        call["api_key"] = key
    elif where == "environment":
        monkeypatch.setenv("COHERE_API_KEY", key)

    async def rerank() -> None:
        providers = {"cohere": {"api_key": key}} if where == "settings" else {}
        async with AsyncClient(providers=providers) as client:
            await client.rerank(MODEL, "q", ["a"], **call)

    with pytest.raises(ConfigurationError, match=message) as info:
        await rerank()
    assert SECRET not in str(info.value)
    assert cohere_server.received == []


def test_provider_settings_check_their_types() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"timeout": "slow"}, "timeout must be a number, got str"),
        ({"max_retries": 1.5}, "max_retries must be an int >= 0, got float"),
        ({"requests_per_minute": [1]}, "requests_per_minute must be a number"),
        ({"api_key": 5}, "api_key must be a str, got int"),
        ({"api_base": b"http://x"}, "api_base must be a str, got bytes"),
        ({"options": ["a"]}, "options must be a dict with str keys"),
        ({"capabilities": 3}, "capabilities must be a dict with str keys"),
        ({"extra_headers": {"X": 1}}, r"extra_headers\['X'\] must be a str"),
        ({"api_key": "k\r\n"}, "api_key ends with a line break"),
    ]
    for fields, message in cases:
        with pytest.raises(ConfigurationError, match=message):
            ProviderSettings(**fields)
        with pytest.raises(ConfigurationError, match=r"providers\['cohere'\]"):
            AsyncClient(providers={"cohere": fields})
    with pytest.raises(ConfigurationError, match="lone surrogate"):
        AsyncClient(providers={"cohere": {"timeout": "\ud800"}})
    with pytest.raises(ConfigurationError, match="providers must be a dict"):
        AsyncClient(providers=["cohere"])  # type: ignore[arg-type]


async def test_a_bad_base_in_the_client_settings_is_named(cohere_server: FakeServer) -> None:
    async with AsyncClient(providers={"cohere": {"api_key": "k", "api_base": "host:1"}}) as c:
        with pytest.raises(ConfigurationError, match=r"providers\['cohere'\].api_base must"):
            await c.rerank(MODEL, "q", ["a"])


async def test_a_bad_header_built_from_a_provider_option_is_caught_before_sending(
    cohere_server: FakeServer,
) -> None:
    """watsonx sends its ``token`` option as the Authorization header."""
    async with AsyncClient() as client:
        with pytest.raises(ConfigurationError, match="the Authorization header for watsonx") as e:
            await client.rerank(
                "watsonx/m",
                "q",
                ["a"],
                api_base=cohere_server.url,
                token=SECRET + "\n",
                project_id="p",
            )
    assert SECRET not in str(e.value)
    assert cohere_server.received == []


async def test_rerank_many_keeps_each_bad_job_to_itself(cohere_server: FakeServer) -> None:
    providers = {"cohere": {"api_key": API_KEY, "api_base": cohere_server.url}}
    jobs: list[Any] = [
        ("apple", ["apple pie", "pear"]),
        ("q", ["\ud800"]),
        ("q", [{"text": 1}]),
        "not a job",
        {"query": "q", "documents": ["a"], "colour": "red"},
        ("pear", ["apple pie", "pear"], 1),
        ("q", ["a"], "2"),
    ]
    async with AsyncClient(providers=providers) as client:
        results = await client.rerank_many(MODEL, jobs, concurrency=2)
    assert isinstance(results[0], rerankit.RerankResponse)
    assert isinstance(results[5], rerankit.RerankResponse)
    assert results[5].results[0].document == {"text": "pear"}
    errors = [str(result) for result in results if isinstance(result, ConfigurationError)]
    assert len(errors) == 5
    for expected, error in zip(
        ["documents[0] holds a lone", "documents[0]['text']", "jobs[3]", "jobs[4]", "top_n"],
        errors,
        strict=True,
    ):
        assert expected in error
    assert len(cohere_server.received) == 2


async def test_rerank_many_with_a_bad_call_argument_fails_every_job_alone(
    cohere_server: FakeServer,
) -> None:
    async with AsyncClient() as client:
        results = await client.rerank_many(
            MODEL, [("q", ["a"])] * 3, api_key="k", api_base="localhost:1"
        )
    assert all(isinstance(result, ConfigurationError) for result in results)
    assert cohere_server.received == []


# --- a small fuzz of the public call ----------------------------------------------------------

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from([object(), pathlib.Path("/nonexistent"), "\ud800", "a\r\nb", b"x"]),
)
_ARGUMENTS = [
    "model",
    "query",
    "documents",
    "top_n",
    "rank_fields",
    "return_documents",
    "max_chunks_per_doc",
    "max_tokens_per_doc",
    "provider",
    "instruction",
    "extra_body",
    "extra_headers",
    "drop_params",
    "fallbacks",
    "timeout",
    "max_retries",
    "api_key",
    "api_base",
    "tokenizer",
    "batch_concurrency",
    "api_version",
]


@pytest.mark.filterwarnings("ignore::rerankit.RerankitWarning")  # drop_params=True warns
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(arguments=st.dictionaries(st.sampled_from(_ARGUMENTS), _VALUES, min_size=1, max_size=2))
def test_any_argument_value_fails_as_a_rerankit_error(
    arguments: dict[str, Any], cohere_server: FakeServer
) -> None:
    call = {"model": MODEL, "query": "q", "documents": ["a", "b"], "api_key": API_KEY}
    call["api_base"] = cohere_server.url
    client = rerankit.Client(retry=RetryPolicy(max_retries=0), timeout=5)
    with client, contextlib.suppress(rerankit.RerankitError):
        client.rerank(**{**call, **arguments})


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    arguments=st.dictionaries(
        st.sampled_from(
            [
                *("providers", "timeout", "max_retries", "retry", "max_connections"),
                *("tokenizer", "batch_concurrency", "max_batch_concurrency", "fallbacks"),
                *("hooks", "prices", "cache", "drop_params"),
            ]
        ),
        _VALUES,
        min_size=1,
        max_size=2,
    )
)
def test_any_client_option_value_fails_as_a_rerankit_error(arguments: dict[str, Any]) -> None:
    with contextlib.suppress(rerankit.RerankitError):
        AsyncClient(**arguments)


async def test_a_bad_base_from_the_environment_is_named(
    monkeypatch: pytest.MonkeyPatch, cohere_server: FakeServer
) -> None:
    monkeypatch.setenv("COHERE_API_BASE", "127.0.0.1:8080")
    async with AsyncClient() as client:
        with pytest.raises(ConfigurationError, match="environment variable COHERE_API_BASE must"):
            await client.rerank(MODEL, "q", ["a"], api_key="k")


async def test_bedrock_still_takes_a_bare_endpoint_host() -> None:
    """AWS endpoints are often written without a scheme; bedrock assumes https for them."""
    from rerankit._prepare import api_base
    from rerankit.providers.bedrock import BedrockProvider

    base = "bedrock-runtime.us-west-2.amazonaws.com"
    assert api_base({"api_base": base}, None, BedrockProvider, "bedrock") == f"https://{base}"
