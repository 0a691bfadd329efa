"""The server's config file, the checks made at start-up, keys and rate limits (no sockets)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rerankit import ConfigurationError
from rerankit.providers.cohere_compatible import CohereCompatibleProvider
from rerankit.providers.cohere_like import VoyageProvider
from rerankit.providers.nvidia import NvidiaNIMProvider
from rerankit.server import create_app, load_config, parse_config
from rerankit.server._auth import KeyRing
from rerankit.server._ratelimit import RateLimiter

from .conftest import API_KEY
from .support import clean_env

_clean_provider_env = clean_env(VoyageProvider, CohereCompatibleProvider, NvidiaNIMProvider)

MINIMAL = """
[models.bm25]
model = "local/bm25"
"""


def test_minimal_config_and_defaults() -> None:
    config = parse_config(MINIMAL)
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8080
    assert config.server.max_documents == 1000
    assert config.server.rate_limit == 0
    assert config.models["bm25"].model == "local/bm25"
    assert config.client_keys() == []


def test_default_config_serves_bm25() -> None:
    config = load_config(None)
    assert {name: route.model for name, route in config.models.items()} == {"bm25": "local/bm25"}
    create_app(config)


def test_load_config_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "server.toml"
    path.write_text(MINIMAL + '[server]\nport = 9000\napi_keys = ["k1"]\n', encoding="utf-8")
    config = load_config(path)
    assert config.server.port == 9000
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[models.bm25\n", "not valid TOML"),
        ("", "no models"),
        (MINIMAL + "[server]\nhots = 1\n", "unknown field `hots` - at `$.server`"),
        (MINIMAL + "[server]\nport = 70000\n", "at `$.server.port`"),
        (MINIMAL + "[server]\nmax_documents = 0\n", "at `$.server.max_documents`"),
        (MINIMAL + '[server]\ndefault_model = "nope"\n', "default_model 'nope' is not in"),
        ("[models.x]\nmodel = 5\n", '[models."x"]: Expected `str`, got `int` - at `$.model`'),
        ('[models.x]\nmodel = "local/bm25"\nmax_document = 3\n', '[models."x"]: unknown field'),
        (MINIMAL + '[providers.cohere]\napi_key = "sk-123"\n', "providers.cohere.api_key: secrets"),
        (
            '[models.x]\nmodel = "local/bm25"\noptions = { aws_secret_access_key = "s" }\n',
            "models.x.options.aws_secret_access_key: secrets",
        ),
        (
            '[models.x]\nmodel = "local/bm25"\n'
            'fallbacks = [{ model = "local/bm25", api_key = "k" }]\n',
            "models.x.fallbacks[0].api_key: secrets",
        ),
        (
            MINIMAL + '[providers.cohere]\nextra_headers = { Authorization = "Bearer x" }\n',
            "extra_headers.Authorization: secrets",
        ),
        (
            MINIMAL + '[providers.cohere]\nextra_headers = { X-Api-Key = "x" }\n',
            "extra_headers.X-Api-Key: secrets",
        ),
    ],
)
def test_bad_config_is_refused_with_the_place(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match="server.toml") as info:
        parse_config(text, "server.toml")
    assert message in str(info.value)


def test_non_secret_options_are_accepted() -> None:
    config = parse_config(
        '[models.x]\nmodel = "local/bm25"\noptions = { k1 = 1.2, max_tokens_per_doc = 5 }\n'
    )
    assert config.models["x"].options == {"k1": 1.2, "max_tokens_per_doc": 5}


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ('[models.x]\nmodel = "nowhere/model"\n', "unknown provider 'nowhere'"),
        ('[models.x]\nmodel = "rerank-v9"\n', "names no provider"),
        ('[models.x]\nmodel = "local/bm25"\noptions = { nope = 1 }\n', "unknown argument 'nope'"),
        ('[models.x]\nmodel = "cohere/rerank-v3.5"\n', "COHERE_API_KEY"),
        ('[models.x]\nmodel = "local/bm25"\nfallbacks = ["voyage/rerank-2"]\n', "VOYAGE_API_KEY"),
        ('[models.x]\nmodel = "cohere_compatible/m"\n', "COHERE_COMPATIBLE_API_BASE"),
        (MINIMAL + "[providers.cohere]\nretries = 2\n", "unknown settings ['retries']"),
    ],
)
def test_start_up_checks_models_options_and_credentials(models: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        create_app(parse_config(models))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (
            '[models.x]\nmodel = "cohere/rerank-v3.5"\n',
            "no API key for provider 'cohere': set COHERE_API_KEY or CO_API_KEY in the server's "
            "environment (provider keys never go in the config file)",
        ),
        (
            '[models.x]\nmodel = "cohere_compatible/m"\n',
            "no base URL for provider 'cohere_compatible': set api_base in "
            "[providers.cohere_compatible] of the config file, or set COHERE_COMPATIBLE_API_BASE",
        ),
        (
            '[models.x]\nmodel = "nvidia_nim/nvidia/llama-3.2-nv-rerankqa-1b-v2"\n',
            "no API key for provider 'nvidia_nim': set NVIDIA_NIM_API_KEY or NVIDIA_API_KEY in "
            "the server's environment (provider keys never go in the config file)",
        ),
    ],
)
def test_missing_credentials_say_what_to_set_for_the_server(models: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        create_app(parse_config(models))
    assert str(info.value) == f"model 'x': {message}"


def test_a_self_hosted_nvidia_nim_needs_no_key() -> None:
    config = parse_config(
        '[models.x]\nmodel = "nvidia_nim/ranking/m"\n'
        '[providers.nvidia_nim]\napi_base = "http://127.0.0.1:8000"\n'
    )
    assert create_app(config) is not None


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config('[models.x]\nmodel = "cohere/rerank-v3.5"\n')
    monkeypatch.setenv("COHERE_API_KEY", API_KEY)
    create_app(config)


def test_a_public_address_needs_client_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="allow_anonymous"):
        create_app(parse_config(MINIMAL + '[server]\nhost = "0.0.0.0"\n'))
    create_app(parse_config(MINIMAL + '[server]\nhost = "0.0.0.0"\nallow_anonymous = true\n'))
    create_app(parse_config(MINIMAL + '[server]\nhost = "::1"\n'))
    monkeypatch.setenv("RERANKIT_SERVER_API_KEYS", "k1")
    create_app(parse_config(MINIMAL + '[server]\nhost = "0.0.0.0"\n'))


def test_client_keys_from_the_file_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEYS", " env-1 ,, env-2 ")
    config = parse_config(MINIMAL + '[server]\napi_keys = ["file-1"]\napi_keys_env = "MY_KEYS"\n')
    assert config.client_keys() == ["file-1", "env-1", "env-2"]
    for shown in (repr(config), repr(config.server), str(config.server.__rich_repr__())):
        assert "file-1" not in shown
    assert "api_keys=['***']" in repr(config)


def test_key_ring_identifies_keys_without_showing_them() -> None:
    ring = KeyRing(["alpha-key", "beta-key", "alpha-key"])
    assert len(ring) == 2
    assert ring.identify("Bearer beta-key") == "key-2"
    assert ring.identify("bearer   alpha-key ") == "key-1"
    for header in (None, "", "Bearer", "Bearer gamma", "Basic alpha-key", "alpha-key"):
        assert ring.identify(header) is None
    assert "alpha" not in repr(ring)
    assert not KeyRing([]).enabled


def test_rate_limiter_refills_per_client() -> None:
    now = [0.0]
    limiter = RateLimiter(60, burst=2, clock=lambda: now[0])
    assert [limiter.take("a"), limiter.take("a")] == [0.0, 0.0]
    assert limiter.take("a") == pytest.approx(1.0)
    assert limiter.take("b") == 0.0
    now[0] = 0.5
    assert limiter.take("a") == pytest.approx(0.5)
    now[0] = 1.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(1.0)
    assert RateLimiter(600).burst == 600


def test_importing_the_server_package_does_not_import_aiohttp_web() -> None:
    code = (
        "import sys, rerankit, rerankit.server, rerankit.cli; "
        "print('aiohttp.web' in sys.modules, 'rerankit.server' in sys.modules)"
    )
    light = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, rerankit; print(sorted(m for m in sys.modules "
            "if m.startswith(('rerankit.cli', 'rerankit.server', 'aiohttp'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert light.stdout.strip() == "[]"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "True"]


def test_the_documented_config_example_works(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (Path(__file__).parent.parent / "docs" / "server.md").read_text(encoding="utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("COHERE_API_KEY", API_KEY)
    monkeypatch.setenv("VOYAGE_API_KEY", API_KEY)
    config = parse_config(example, "docs/server.md")
    assert config.models["rerank-v3.5"].fallbacks == ["voyage/rerank-2.5", "local/bm25"]
    create_app(config)
