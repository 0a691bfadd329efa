"""From one call's arguments to what its provider gets: options, credentials, headers."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from rerankit._errors import ConfigurationError, RerankitWarning
from rerankit._sendable import (
    check_base_url,
    check_headers,
    check_json,
    check_secret,
    check_text,
)
from rerankit._settings import ProviderSettings
from rerankit._tokens import TokenCounter
from rerankit._types import RerankRequest
from rerankit.providers._base import Provider

__all__ = [
    "CALL_OPTIONS",
    "Found",
    "Source",
    "LITELLM_IGNORED",
    "api_base",
    "api_key",
    "check_extra_body",
    "check_instruction",
    "check_tokenizer",
    "client_side_chunking",
    "find_api_base",
    "find_api_key",
    "merged_headers",
    "missing_key_for_base",
    "missing_message",
    "provider_options",
    "split_options",
]

Context = Literal["python", "cli", "server"]
"""Where a setting is missing, for a message that says how to set it there: the Python API
(``api_key=...``), the command line (environment variables) or the server (its environment and
config file)."""

CALL_OPTIONS = frozenset(
    {"api_key", "api_base", "base_url", "timeout", "max_retries", "tokenizer", "batch_concurrency"}
)
"""Keyword arguments of ``rerank()`` that configure the call itself, for any provider."""

LITELLM_IGNORED = frozenset(
    {
        "litellm_call_id",
        "litellm_logging_obj",
        "litellm_metadata",
        "litellm_session_id",
        "litellm_trace_id",
        "model_info",
        "proxy_server_request",
    }
)
"""LiteLLM's own logging and proxy arguments of ``rerank()``: accepted so LiteLLM call sites run
unchanged, and ignored (they configure nothing rerankit has)."""


def client_side_chunking(
    request: RerankRequest, native: frozenset[str]
) -> tuple[int | None, int | None]:
    """Take ``max_tokens_per_doc`` / ``max_chunks_per_doc`` off ``request`` where the provider
    cannot apply them; rerankit then chunks documents itself (window, chunk cap)."""
    window = max_chunks = None
    if request.max_tokens_per_doc is not None and "max_tokens_per_doc" not in native:
        window, request.max_tokens_per_doc = request.max_tokens_per_doc, None
    if request.max_chunks_per_doc is not None and "max_chunks_per_doc" not in native:
        max_chunks, request.max_chunks_per_doc = request.max_chunks_per_doc, None
    return window, max_chunks


def check_tokenizer(tokenizer: object) -> TokenCounter | None:
    if tokenizer is None or isinstance(tokenizer, TokenCounter):
        return tokenizer
    if hasattr(tokenizer, "encode_batch"):
        from rerankit._tokens import HFTokenizer

        return HFTokenizer(tokenizer)
    raise ConfigurationError(
        "tokenizer must be a rerankit TokenCounter (count and windows methods) or a "
        f"tokenizers.Tokenizer, got {type(tokenizer).__name__}"
    )


def split_options(
    kwargs: Mapping[str, Any],
    cls: type[Provider],
    provider: str,
    settings: ProviderSettings | None,
    drop: bool,
) -> dict[str, Any]:
    """The provider's own options among keyword arguments that mix them with call settings
    (``CALL_OPTIONS``) and LiteLLM's ignored arguments; see ``provider_options``."""
    given = {
        key: value
        for key, value in kwargs.items()
        if key not in CALL_OPTIONS and key not in LITELLM_IGNORED
    }
    return provider_options(given, cls, provider, settings, drop, stacklevel=5)


def provider_options(
    given: Mapping[str, Any],
    cls: type[Provider],
    provider: str,
    settings: ProviderSettings | None,
    drop: bool,
    *,
    stacklevel: int = 6,
) -> dict[str, Any]:
    """The client's options for the provider, then the call's (``given``); one the provider
    does not take raises, or is dropped with a warning (at ``rerank``'s caller) when ``drop``."""
    options: dict[str, Any] = dict(settings.options) if settings and settings.options else {}
    for key, value in given.items():
        if key in cls.options:
            options[key] = value
            continue
        accepted = ", ".join(sorted(cls.options)) or "none"
        message = (
            f"unknown argument {key!r} for provider {provider!r} (its own options: {accepted})"
        )
        if not drop:
            raise ConfigurationError(message + "; pass drop_params=True to drop it")
        warnings.warn(f"{message}; dropped it (drop_params=True)", RerankitWarning, stacklevel)
    return options


Source = Literal["argument", "settings", "environment", "default", ""]
"""Where a setting came from: the call, the client's settings, the environment, the
provider's default, or nowhere."""

Found = tuple[str | None, Source, str]
"""A setting's value (``None``: not set), its ``Source``, and what names it there:
``"api_key"``, ``"providers['cohere'].api_key"``, an environment variable's name."""

_NOT_FOUND: Found = (None, "", "")


def find_api_key(
    kwargs: Mapping[str, Any], settings: ProviderSettings | None, cls: type[Provider], name: str
) -> Found:
    """The call's ``api_key``, else the client's, else the environment's; checked."""
    key = kwargs.get("api_key")
    if key:
        return check_secret(key, f"api_key for {name}"), "argument", "api_key"
    if settings is not None and settings.api_key:
        where = f"providers[{name!r}].api_key"
        return check_secret(settings.api_key, where), "settings", where
    key, variable = _from_env(cls.api_key_env)
    if key:
        return check_secret(key, f"the environment variable {variable}"), "environment", variable
    return _NOT_FOUND


def api_key(
    kwargs: Mapping[str, Any],
    settings: ProviderSettings | None,
    cls: type[Provider],
    name: str,
    context: Context = "python",
) -> str | None:
    """The call's ``api_key``, else the client's, else the environment's; checked."""
    key = find_api_key(kwargs, settings, cls, name)[0]
    if not key and cls.api_key_required:
        raise ConfigurationError(missing_message(name, "api_key", cls.api_key_env, context))
    return key or None


def find_api_base(
    kwargs: Mapping[str, Any], settings: ProviderSettings | None, cls: type[Provider], name: str
) -> Found:
    """The call's ``api_base`` (or ``base_url``), else the client's, the environment's or the
    provider's default; a base given by the caller must be an http(s) URL."""
    scheme = cls.api_base_default_scheme
    for argument in ("api_base", "base_url"):
        base = kwargs.get(argument)
        if base:
            return check_base_url(base, argument, scheme).rstrip("/"), "argument", argument
    if settings is not None and settings.api_base:
        where = f"providers[{name!r}].api_base"
        return check_base_url(settings.api_base, where, scheme).rstrip("/"), "settings", where
    base, variable = _from_env(cls.api_base_env)
    if base:
        where = f"the environment variable {variable}"
        return check_base_url(base, where, scheme).rstrip("/"), "environment", variable
    if cls.default_api_base:
        return cls.default_api_base.rstrip("/"), "default", ""
    return _NOT_FOUND


def api_base(
    kwargs: Mapping[str, Any],
    settings: ProviderSettings | None,
    cls: type[Provider],
    name: str,
    context: Context = "python",
) -> str | None:
    """The call's ``api_base`` (or ``base_url``), else the client's, the environment's or the
    provider's default; a base given by the caller must be an http(s) URL."""
    base = find_api_base(kwargs, settings, cls, name)[0]
    if not base and cls.api_base_required:
        raise ConfigurationError(missing_message(name, "api_base", cls.api_base_env, context))
    return base


def _from_env(names: tuple[str, ...]) -> tuple[str | None, str]:
    """The value of the first of ``names`` set (non-empty) in the environment, and its name."""
    environ = os.environ
    for variable in names:
        value = environ.get(variable)
        if value:
            return value, variable
    return None, ""


def missing_message(
    name: str,
    setting: Literal["api_key", "api_base"],
    env: tuple[str, ...],
    context: Context = "python",
) -> str:
    """The message for provider ``name`` lacking ``setting``: where to set it in ``context``."""
    what = "API key" if setting == "api_key" else "base URL"
    variables = " or ".join(env)
    if context == "python":
        message = (
            f"no {what} for provider {name!r}: pass {setting}=..., or configure it with "
            f"AsyncClient(providers={{{name!r}: {{{setting!r}: ...}}}})"
        )
        return message + f", or set {variables}" if env else message
    if context == "server" and setting == "api_base":
        where = f"set api_base in [providers.{name}] of the config file"
        return f"no {what} for provider {name!r}: {where}" + (
            f", or set {variables}" if env else ""
        )
    if not env:
        return f"no {what} for provider {name!r}, which reads none from the environment"
    if context == "server":
        return (
            f"no {what} for provider {name!r}: set {variables} in the server's environment "
            "(provider keys never go in the config file)"
        )
    return f"no {what} for provider {name!r}: set {variables} in the environment"


def missing_key_for_base(
    name: str, cls: type[Provider], api_base: str | None, context: Context = "python"
) -> str:
    """The message for provider ``name`` lacking a key that calls to ``api_base`` need (see
    ``Provider.needs_api_key``); in Python, it also names the host that needs one."""
    message = missing_message(name, "api_key", cls.api_key_env, context)
    host = urlsplit(api_base).hostname if api_base and context == "python" else None
    return f"{message} (calls to {host} need one)" if host else message


def merged_headers(
    settings: ProviderSettings | None, extra: Mapping[str, str] | None
) -> Mapping[str, str] | None:
    """The client's extra headers for the provider, then the call's own ``extra_headers``."""
    if extra is not None:
        check_headers(extra, "extra_headers")
    if settings is None or not settings.extra_headers:
        return extra
    return {**settings.extra_headers, **(extra or {})}


def check_extra_body(extra_body: object) -> Mapping[str, Any] | None:
    """``extra_body``: a dict of JSON fields merged into the request body."""
    if extra_body is None:
        return None
    if not isinstance(extra_body, Mapping):
        raise ConfigurationError(
            f"extra_body must be a dict of JSON fields, got {type(extra_body).__name__}"
        )
    check_json(extra_body, "extra_body")
    return extra_body


def check_instruction(instruction: object) -> str | None:
    if instruction is None:
        return None
    if isinstance(instruction, str):
        check_text(instruction, "instruction")
        return instruction
    raise ConfigurationError(f"instruction must be a str, got {type(instruction).__name__}")
