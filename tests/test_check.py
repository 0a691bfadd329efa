"""``client.check`` and ``rerankit check``: what a call would use, without calling, and the same
answer (or the same error) as the call itself gives."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

import rerankit
from rerankit import AsyncClient, Client, ConfigurationError, ModelCheck, UnknownProviderError
from rerankit.cli import main
from rerankit.providers import provider_info
from rerankit.providers.bedrock import BedrockProvider
from rerankit.providers.nvidia import NvidiaNIMProvider
from rerankit.testing import CohereFake, FakeServer
from rerankit.testing._vendors import NvidiaNIMFake

from .support import FAST_RETRY, clean_env

pytestmark = pytest.mark.anyio

KEY = "sk-check-0123456789abcdef"
WRONG = "sk-wrong-0123456789abcdef"
COHERE = "cohere/rerank-v3.5"
NIM = "nvidia_nim/nvidia/llama-3.2-nv-rerankqa-1b-v2"

_clean_provider_env = clean_env(NvidiaNIMProvider, BedrockProvider, "WATSONX_APIKEY")


@pytest.fixture
def cohere() -> Iterator[FakeServer]:
    with FakeServer(CohereFake(KEY)) as server:
        yield server


def _no_secret(check: ModelCheck, *secrets: str) -> None:
    shown = [repr(check), str(check), msgspec.json.encode(check).decode()]
    shown.append(str(list(check.__rich_repr__())))
    for text in shown:
        for secret in secrets:
            assert secret not in text


@pytest.mark.parametrize(
    ("source", "credential"),
    [
        ("argument", "api_key"),
        ("settings", "providers['cohere'].api_key"),
        ("environment", "COHERE_API_KEY"),
    ],
)
async def test_check_names_the_key_the_call_then_sends(
    cohere: FakeServer, monkeypatch: pytest.MonkeyPatch, source: str, credential: str
) -> None:
    """Every layer holds a key; only the one the check names is the one the server accepts."""
    layers = ["argument", "settings", "environment"]
    keys = {layer: KEY if layer == source else WRONG for layer in layers[layers.index(source) :]}
    monkeypatch.setenv("COHERE_API_KEY", keys["environment"])
    settings = {"api_base": cohere.url} | (
        {"api_key": keys["settings"]} if "settings" in keys else {}
    )
    arguments = {"api_key": keys["argument"]} if "argument" in keys else {}
    async with AsyncClient(providers={"cohere": settings}, retry=FAST_RETRY) as client:
        check = client.check(COHERE, **arguments)
        await client.rerank(COHERE, "q", ["a", "b"], **arguments)
    (sent,) = cohere.received
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert (check.credential_source, check.credential) == (source, credential)
    assert check.api_base == cohere.url
    assert check.api_base_source == "settings"
    assert sent.path == "/v2/rerank"
    assert (check.provider, check.model, check.distribution) == (
        "cohere",
        "rerank-v3.5",
        "rerankit",
    )
    assert check.provider_class == "rerankit.providers.cohere.CohereProvider"
    _no_secret(check, KEY, WRONG)


async def test_check_reports_limits_score_kind_price_and_masked_options(
    cohere: FakeServer,
) -> None:
    settings = {"api_key": KEY, "capabilities": {"max_documents": 7}, "max_retries": 4}
    async with AsyncClient(providers={"cohere": settings}, timeout=5) as client:
        check = client.check(COHERE, api_base=cohere.url, api_version="v1")
        assert client.check(COHERE, timeout=2, max_retries=0).timeout == 2
    assert (check.timeout, check.max_retries) == (5, 4)
    assert check.capabilities.max_documents == 7
    assert check.capabilities.max_tokens_per_doc == 4096
    assert check.score_kind == "probability"
    assert check.price is not None
    assert check.price.per_search_unit
    assert check.options == {"api_version": "v1"}
    assert check.api_base_source == "argument"


def test_secret_options_and_url_parts_never_show() -> None:
    check = Client().check(
        "bedrock/cohere.rerank-v3-5:0",
        aws_access_key_id="AKIA0123456789",
        aws_secret_access_key=KEY,
        api_base="https://user:hunter2-password@bedrock.example.com/?token=tok-123456&x=1",
    )
    assert (check.credential_source, check.credential) == ("option", "aws_access_key_id")
    assert check.options["aws_secret_access_key"] == "***"
    assert check.api_base == "https://***@bedrock.example.com/?token=***&x=1"
    _no_secret(check, KEY, "AKIA0123456789", "hunter2-password", "tok-123456")


def test_cloud_chain_local_and_sync_client() -> None:
    with Client() as client:
        bedrock = client.check("bedrock/cohere.rerank-v3-5:0")
        local = client.check("local/bm25")
    assert (bedrock.credential_source, bedrock.credential) == ("chain", "the AWS credential chain")
    assert (local.credential_source, local.credential, local.api_base) == ("none", None, None)
    assert local.api_base_source == "none"


async def _call_error(client: AsyncClient, model: str, **kwargs: Any) -> Exception:
    with pytest.raises(rerankit.RerankitError) as info:
        await client.rerank(model, "q", ["a"], **kwargs)
    return info.value


def _check_error(client: AsyncClient, model: str, **kwargs: Any) -> Exception:
    with pytest.raises(rerankit.RerankitError) as info:
        client.check(model, **kwargs)
    return info.value


@pytest.mark.parametrize(
    ("model", "kwargs", "error"),
    [
        (COHERE, {}, ConfigurationError),  # no key anywhere
        ("cohre/rerank-v3.5", {}, UnknownProviderError),
        (COHERE, {"api_key": KEY, "bogus": 1}, ConfigurationError),
        (COHERE, {"api_key": KEY, "api_base": "ftp://x"}, ConfigurationError),
        (COHERE, {"api_key": "sk-1\n"}, ConfigurationError),
        (NIM, {}, ConfigurationError),  # NVIDIA's hosted API needs a key
        ("hosted_vllm/m", {}, ConfigurationError),  # no base URL
        ("bedrock/cohere.rerank-v3-5:0", {"api_key": KEY}, ConfigurationError),  # AWS only
        (COHERE, {"api_key": KEY, "timeout": "slow"}, ConfigurationError),
        (COHERE, {"api_key": KEY, "max_retries": -1}, ConfigurationError),
    ],
)
async def test_check_raises_what_the_call_raises(
    model: str, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    async with AsyncClient(retry=FAST_RETRY) as client:
        checked = _check_error(client, model, **kwargs)
        called = await _call_error(client, model, **kwargs)
    assert type(checked) is type(called) is error
    assert str(checked) == str(called)
    assert KEY not in str(checked)


async def test_missing_key_names_the_environment_variables() -> None:
    async with AsyncClient() as client:
        error = _check_error(client, COHERE)
    assert "COHERE_API_KEY" in str(error)


async def test_nvidia_hosted_needs_a_key_self_hosted_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FakeServer(NvidiaNIMFake(None)) as nim:
        async with AsyncClient() as client:
            local = client.check(NIM, api_base=nim.url)
            await client.rerank(NIM, "q", ["a", "b"], api_base=nim.url)
    assert (local.credential_source, local.api_base) == ("none", nim.url)
    assert "authorization" not in nim.received[0].headers
    monkeypatch.setenv("NVIDIA_API_KEY", KEY)
    hosted = Client().check(NIM)
    assert (hosted.credential_source, hosted.credential) == ("environment", "NVIDIA_API_KEY")
    assert hosted.api_base_source == "default"
    assert hosted.score_kind == "logit"
    _no_secret(hosted, KEY)


def test_provider_info_tells_where_a_provider_comes_from() -> None:
    assert provider_info("cohere").distributions == ("rerankit",)
    rerankit.register_provider("check_runtime", BedrockProvider)
    try:
        info = provider_info("check_runtime")
        assert info.runtime
        assert info.distributions == ("<registered at run time>",)
        assert Client().check("check_runtime/m").distribution == "<registered at run time>"
    finally:
        rerankit.unregister_provider("check_runtime")
    with pytest.raises(UnknownProviderError):
        provider_info("no_such_provider")


def test_cli_check_human_and_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COHERE_API_KEY", KEY)
    assert main(["check", COHERE, "--option", "api_version=v1"]) == 0
    out = capsys.readouterr().out
    assert "the environment variable COHERE_API_KEY" in out
    assert "https://api.cohere.com (default)" in out
    assert "api_version='v1'" in out
    assert "max_documents=" in out
    assert "60 s per attempt, 2 retries" in out
    assert main(["check", COHERE, "--json", "-o", f"api_key={KEY}"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["credential_source"] == "argument"
    assert payload["capabilities"]["max_tokens_per_doc"] == 4096
    assert KEY not in out
    assert KEY not in json.dumps(payload)


def test_cli_check_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", COHERE]) == 1
    err = capsys.readouterr().err
    assert "set COHERE_API_KEY or CO_API_KEY in the environment" in err
    assert main(["check", "cohre/x"]) == 1
    assert "did you mean 'cohere'" in capsys.readouterr().err
    assert main(["check", "local/bm25", "-o", "novalue"]) == 2
    assert main(["check", "local/bm25", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["credential_source"] == "none"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports from (``from x import y`` and ``import x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def test_the_cli_and_the_server_meet_only_at_serve() -> None:
    package = Path(rerankit.__file__).parent
    for path in (package / "cli").glob("*.py"):
        imported = _imports(path)
        server = {name for name in imported if name.startswith("rerankit.server")}
        if path.name == "_serve.py":
            server -= {"rerankit.server", "rerankit.server.serve", "rerankit.server.load_config"}
        assert not server, path.name
        assert not {name for name in imported if name.startswith("rerankit._registry._")}
    for path in (package / "server").glob("*.py"):
        assert not {name for name in _imports(path) if name.startswith("rerankit.cli")}
