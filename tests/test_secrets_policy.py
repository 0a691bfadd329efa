"""rerankit's secrets policy, every decision in one place (``rerankit/_redact.py``): which
names, URL parts, headers and log records hold secrets, and what each user of the policy
(reprs, errors, logs, the server's config check, cache keys, model checks) does with them."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from rerankit import ConfigurationError, RerankRequest
from rerankit._cache import cache_key
from rerankit._redact import (
    MASK,
    SecretLogFilter,
    fingerprint,
    is_secret_name,
    mask_query_secrets,
    mask_url,
    redact_options,
    secrets,
    shown_url,
)
from rerankit.server import parse_config


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        # option, setting, header and query-parameter names that hold secrets
        ("api_key", True),
        ("apiKey", True),
        ("api_keys", True),
        ("key", True),
        ("X-Api-Key", True),
        ("zen_api_key", True),
        ("token", True),
        ("access_token", True),
        ("aws_session_token", True),
        ("X-Amz-Security-Token", True),
        ("aws_secret_access_key", True),
        ("client_secrets", True),
        ("X-Amz-Signature", True),
        ("sig", True),
        ("password", True),
        ("passwd", True),
        ("credentials", True),
        ("vertex_credentials", True),
        ("auth", True),
        ("Authorization", True),
        ("Proxy-Authorization", True),
        ("Cookie", True),
        ("Set-Cookie", True),
        # names that only look alike: counts, settings, ordinary words
        ("max_tokens_per_doc", False),
        ("overlap_tokens", False),
        ("tokenizer", False),
        ("keywords", False),
        ("monkey", False),
        ("author", False),
        ("api_base", False),
        ("api_version", False),
        ("region", False),
    ],
)
def test_which_names_hold_secrets(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("/v1/rerank?api_key=sk-1&top=3", "/v1/rerank?api_key=***&top=3"),
        (
            "GET /r?x-amz-signature=ab;key=cd HTTP/1.1",
            "GET /r?x-amz-signature=***;key=*** HTTP/1.1",
        ),
        ("/r?api%5Fkey=sk-1", "/r?api%5Fkey=***"),  # names are judged decoded
        ("/r?max_tokens_per_doc=5&token=", "/r?max_tokens_per_doc=5&token="),  # empty: nothing
        ("no query here", "no query here"),
    ],
)
def test_query_parameters(text: str, shown: str) -> None:
    assert mask_query_secrets(text) == shown


def test_urls() -> None:
    url = "https://user:pw-123@host.example/v1?token=tok-1&region=eu"
    assert mask_url(url) == "https://***@host.example/v1?token=***&region=eu"
    assert shown_url(url) == "'https://***@host.example/v1?***'"  # error messages: no query
    assert mask_url("http://localhost:8000") == "http://localhost:8000"


def test_headers_of_a_failed_request() -> None:
    headers = {"Authorization": "Bearer sk-bearer-1", "X-Api-Key": "sk-header-2", "Accept": "x"}
    hidden = secrets(headers, "sk-call-3")
    assert set(hidden) == {"Bearer sk-bearer-1", "sk-bearer-1", "sk-header-2", "sk-call-3"}
    assert hidden[0] == "Bearer sk-bearer-1"  # longest first: no secret is left half-masked


def test_options_are_masked_by_name_in_nested_dicts_too() -> None:
    options: dict[str, Any] = {
        "token": "t-1",
        "unset_key": None,
        "fields": {"password": "p-1", "region": "eu"},
        "region": "eu",
    }
    assert redact_options(options) == {
        "token": MASK,
        "unset_key": None,
        "fields": {"password": MASK, "region": "eu"},
        "region": "eu",
    }


def test_log_records() -> None:
    log_filter = SecretLogFilter()
    signing = logging.LogRecord("botocore.auth", 10, "", 0, "CanonicalRequest:\n%s", ("x",), None)
    assert log_filter.filter(signing) is False  # holds the session token: dropped
    access = logging.LogRecord("s", 20, "", 0, '"GET %s"', ("/r?api_key=sk-1",), None)
    assert log_filter.filter(access) is True
    assert access.getMessage() == '"GET /r?api_key=***"'


def test_keys_are_told_apart_by_a_one_way_fingerprint() -> None:
    first = fingerprint("sk-first-0123456789")
    assert first == fingerprint("sk-first-0123456789") != fingerprint("sk-second-0123456789")
    assert first is not None
    assert "first" not in first
    assert fingerprint(None) is None


def test_cache_keys_take_credential_objects_by_type() -> None:
    def key(credentials: object) -> bytes | None:
        options = {"credentials": credentials, "region": "eu"}
        request = RerankRequest(model="m", query="q", documents=["d"], options=options)
        return cache_key("vertex_ai", "m", request)

    assert key(object()) == key(object()) is not None
    assert key({"private_key": "a"}) != key({"private_key": "b"})  # plain data: digested


def test_the_server_config_refuses_secrets_by_name() -> None:
    config = '[models.x]\nmodel = "cohere/rerank-v3.5"\n[models.x.options]\n'
    with pytest.raises(ConfigurationError, match="secrets do not belong in the config file"):
        parse_config(config + 'access_token = "t"\n')
    assert parse_config(config + 'api_version = "v1"\n').models["x"].options
