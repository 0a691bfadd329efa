"""A new user tries each provider with the documented model string and no credentials yet:
every provider answers with a clear ConfigurationError naming what to set, before any request."""

from __future__ import annotations

import os
import re

import pytest

import rerankit
from rerankit._registry import BUILTIN_PROVIDERS, load_provider

HOSTED = sorted(set(BUILTIN_PROVIDERS) - {"local"})
CLOUD_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_REGION_NAME",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "VERTEXAI_PROJECT",
    "WATSONX_URL",
    "WX_URL",
    "WML_URL",
    "WATSONX_API_BASE",
    "WATSONX_TOKEN",
    "WATSONX_ZENAPIKEY",
    "WATSONX_PROJECT_ID",
    "WATSONX_SPACE_ID",
)


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    for name in BUILTIN_PROVIDERS:
        cls = load_provider(name)
        for var in (*cls.api_key_env, *cls.api_base_env):
            monkeypatch.delenv(var, raising=False)
    for var in CLOUD_ENV:
        monkeypatch.delenv(var, raising=False)
    # no ~/.aws or gcloud configuration from this machine either
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    monkeypatch.setenv("NO_GCE_CHECK", "True")


@pytest.mark.parametrize("name", HOSTED)
def test_documented_model_without_credentials_is_a_clear_error(name: str) -> None:
    cls = load_provider(name)
    with pytest.raises(rerankit.ConfigurationError) as info:
        rerankit.rerank(cls.example_model, "how do I reset my password", ["a", "b"], timeout=2)
    message = str(info.value)
    assert name in message, message
    assert re.search(r"\b[A-Z][A-Z0-9]+_[A-Z0-9_]+\b", message) or "pip install" in message, message


def test_bedrock_with_a_region_asks_for_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    with pytest.raises(rerankit.ConfigurationError, match="(?i)credentials"):
        rerankit.rerank("bedrock/cohere.rerank-v3-5:0", "q", ["a"], timeout=2)
