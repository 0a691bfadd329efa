"""No API key ever appears in an error message, a log line or a repr."""

from __future__ import annotations

import logging

import pytest

import rerankit
from rerankit import AsyncClient, ProviderSettings, RetryPolicy
from rerankit._redact import is_secret_name, mask_query_secrets
from rerankit.providers import ProviderContext
from rerankit.testing import FakeServer, Reply

pytestmark = pytest.mark.anyio

SECRET = "sk-live-SECRET-0123456789abcdef"


async def test_key_echoed_by_the_provider_is_redacted(
    cohere_server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    echo = {"message": f"key {SECRET} is not valid for this model"}
    cohere_server.fail(
        Reply(status=500, body=echo),
        Reply(status=401, body=echo),
    )
    caplog.set_level(logging.DEBUG)
    async with AsyncClient(retry=RetryPolicy(initial_delay=0.01)) as client:
        with pytest.raises(rerankit.AuthenticationError) as info:
            await client.rerank(
                "cohere/rerank-v3.5", "q", ["d"], api_key=SECRET, api_base=cohere_server.url
            )
    error = info.value
    assert cohere_server.received[0].headers["authorization"] == f"Bearer {SECRET}"
    for text in (str(error), repr(error), error.body or "", caplog.text):
        assert SECRET not in text
    assert "***" in str(error)
    assert "retrying cohere" in caplog.text


async def test_connection_errors_do_not_carry_the_key() -> None:
    async with AsyncClient(retry=RetryPolicy(max_retries=0)) as client:
        with pytest.raises(rerankit.APIConnectionError) as info:
            await client.rerank(
                "cohere/rerank-v3.5", "q", ["d"], api_key=SECRET, api_base="http://127.0.0.1:9"
            )
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value.__cause__)


def test_reprs_hide_the_key() -> None:
    settings = ProviderSettings(api_key=SECRET, api_base="http://x")
    ctx = ProviderContext(provider="cohere", model="m", api_key=SECRET)
    client = AsyncClient(providers={"cohere": {"api_key": SECRET}})
    for obj in (settings, ctx, client):
        assert SECRET not in repr(obj)
        assert SECRET not in str(obj)
    for struct in (settings, ctx):  # rich's pretty printer reads __rich_repr__
        assert SECRET not in str(struct.__rich_repr__())
    assert "'***'" in repr(settings)
    assert "'***'" in repr(ctx)


def test_bad_settings_do_not_echo_values() -> None:
    with pytest.raises(rerankit.ConfigurationError) as info:
        AsyncClient(providers={"cohere": {"api_key": SECRET, "timeout": "slow"}})
    assert SECRET not in str(info.value)


def test_secret_options_are_masked_in_reprs() -> None:
    options = {
        "aws_secret_access_key": SECRET,
        "token": SECRET,
        "zen_api_key": SECRET,
        "credentials": {"private_key": SECRET},
        "region": "eu-west-1",
    }
    settings = ProviderSettings(options=options)
    request = rerankit.RerankRequest(model="m", query="q", documents=["d"], options=options)
    for obj in (settings, request):
        assert SECRET not in repr(obj)
        assert SECRET not in str(obj.__rich_repr__())
        assert "eu-west-1" in repr(obj)


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("api_key", True),
        ("X-Api-Key", True),
        ("apiKey", True),
        ("access_token", True),
        ("aws_secret_access_key", True),
        ("X-Amz-Signature", True),
        ("sig", True),
        ("password", True),
        ("Authorization", True),
        ("vertex_credentials", True),
        ("max_tokens_per_doc", False),
        ("overlap_tokens", False),
        ("keywords", False),
        ("region", False),
    ],
)
def test_one_definition_of_a_secret_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_secret_query_parameters_are_masked() -> None:
    line = '1.2.3.4 "GET /v1/models?endpoint=rerank&api_key=sk-1&x-amz-signature=ab HTTP/1.1" 401'
    assert mask_query_secrets(line) == (
        '1.2.3.4 "GET /v1/models?endpoint=rerank&api_key=***&x-amz-signature=*** HTTP/1.1" 401'
    )
    assert mask_query_secrets("https://h/r?max_tokens_per_doc=5&token=") == (
        "https://h/r?max_tokens_per_doc=5&token="
    )
