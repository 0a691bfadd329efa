"""Checking a model without calling it: what a call would use, or the error it would raise.

``AsyncClient.check`` / ``Client.check``, ``rerankit check``, the command line's first job and
the server's start-up all go through ``check_target``, which resolves a model the way a call
does (the same ``Target``, options, key and base URL lookups) and stops before the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

import msgspec

from rerankit._call import check_retries
from rerankit._cost import PriceEntry
from rerankit._errors import ConfigurationError
from rerankit._input import check_timeout
from rerankit._prepare import (
    Context,
    find_api_base,
    find_api_key,
    missing_key_for_base,
    missing_message,
    split_options,
)
from rerankit._redact import is_secret_name, mask_url, redact_options
from rerankit._registry import provider_info
from rerankit._retry import RetryPolicy
from rerankit._settings import ProviderSettings
from rerankit._targets import Target, Targets
from rerankit._types import ScoreKind
from rerankit.providers._base import ModelCapabilities

__all__ = [
    "CredentialSource",
    "ModelCheck",
    "call_retries",
    "check_model",
    "check_target",
    "provider_argument",
]

CredentialSource = Literal["argument", "settings", "environment", "option", "chain", "none"]
"""Where a call's credentials come from: the call's ``api_key``, the client's settings for the
provider, an environment variable, a provider option (``aws_access_key_id``, ``credentials``...),
a cloud SDK's credential chain, or nowhere (none is needed, or the provider finds out when
called)."""

BaseSource = Literal["argument", "settings", "environment", "default", "none"]
"""Where a call's base URL comes from."""


class ModelCheck(msgspec.Struct, frozen=True, kw_only=True):
    """What a call to a model would use, resolved without calling the provider.

    It never holds a secret: a key is named by where it comes from (``credential``), options
    with secret-looking names are masked, and so are a base URL's ``user:password@`` part and
    secret-looking query parameters; its repr and JSON show exactly these fields.
    """

    provider: str
    """The provider name, ``"cohere"``."""
    model: str
    """The model name the provider gets, ``"rerank-v3.5"``."""
    provider_class: str
    """The provider class, ``"rerankit.providers.cohere.CohereProvider"``."""
    distribution: str
    """The installed distribution the provider comes from (``"rerankit"`` for a built-in), or
    ``"<registered at run time>"``."""
    api_base: str | None
    """The base URL requests go to (``None``: the provider needs none, e.g. ``local``)."""
    api_base_source: BaseSource
    credential_source: CredentialSource
    credential: str | None
    """Which credential: ``"api_key"``, ``"providers['cohere'].api_key"``, an environment
    variable's name, an option's name or a credential chain; ``None`` when none is used."""
    options: dict[str, Any]
    """The provider options the call sends (the client's, then the call's), secrets masked."""
    capabilities: ModelCapabilities
    """The model's limits and parameters, with the client's overrides."""
    score_kind: ScoreKind
    timeout: float | None
    """Seconds one attempt may take (``None``: no limit)."""
    max_retries: int
    """Retries after the first attempt, for retryable failures."""
    price: PriceEntry | None = None
    """The model's price entry, when the price table has one."""


def check_model(
    model: str,
    options: Mapping[str, Any] | None = None,
    settings: Mapping[str, ProviderSettings] | None = None,
    context: Context = "python",
) -> ModelCheck:
    """``check_target`` for ``model`` as a client with ``settings`` (and otherwise defaults) would
    call it with ``options``; a missing setting's message says how to set it in ``context``."""
    from rerankit._client import DEFAULT_TIMEOUT

    policy = RetryPolicy()
    targets = Targets(
        settings or {}, timeout=DEFAULT_TIMEOUT, policy=policy, prices=None, hooked=False
    )
    return check_target(targets.get(model, None), options or {}, drop=False, context=context)


def check_target(
    target: Target, kwargs: Mapping[str, Any], *, drop: bool, context: Context = "python"
) -> ModelCheck:
    """What a call to ``target`` with ``kwargs`` (call settings and provider options) would
    use, or the ``ConfigurationError`` it would raise: an unknown option, a malformed key or
    base URL, a missing key or base URL (naming its environment variables), a bad timeout or
    retry count."""
    cls, name, settings = target.cls, target.provider, target.settings
    options = split_options(dict(kwargs), cls, name, settings, drop)
    key, key_source, key_where = find_api_key(kwargs, settings, cls, name)
    if not key and cls.api_key_required:
        raise ConfigurationError(missing_message(name, "api_key", cls.api_key_env, context))
    base, base_source, _ = find_api_base(kwargs, settings, cls, name)
    if not base and cls.api_base_required:
        raise ConfigurationError(missing_message(name, "api_base", cls.api_base_env, context))
    if not key and cls.needs_api_key(base):
        raise ConfigurationError(missing_key_for_base(name, cls, base, context))
    if key and cls.api_key_refused:
        raise ConfigurationError(cls.api_key_refused)
    credential: tuple[CredentialSource, str | None]
    if key:
        credential = cast(CredentialSource, key_source), key_where
    else:
        credential = _keyless(options, cls.credential_chain)
    capabilities = target.impl.capabilities(target.model)
    if settings is not None and settings.capabilities:
        capabilities = msgspec.structs.replace(capabilities, **settings.capabilities)
    return ModelCheck(
        provider=name,
        model=target.model,
        provider_class=f"{cls.__module__}.{cls.__qualname__}",
        distribution=", ".join(provider_info(name).distributions),
        api_base=None if base is None else mask_url(base),
        api_base_source=base_source or "none",
        credential_source=credential[0],
        credential=credential[1],
        options=redact_options(options),
        capabilities=capabilities,
        score_kind=capabilities.score_kind,
        timeout=check_timeout(kwargs["timeout"]) if "timeout" in kwargs else target.timeout,
        max_retries=call_retries(kwargs, target.retries),
        price=target.price,
    )


def call_retries(kwargs: Mapping[str, Any], default: int) -> int:
    """A call's ``max_retries``, else ``default``."""
    if "max_retries" not in kwargs:
        return default
    return check_retries("max_retries", kwargs["max_retries"])


def provider_argument(provider: str | None, custom_llm_provider: str | None) -> str | None:
    """A call's explicit provider: ``provider=`` or LiteLLM's ``custom_llm_provider=``."""
    if custom_llm_provider is None:
        return provider
    if provider is not None and provider != custom_llm_provider:
        raise ConfigurationError(
            f"provider={provider!r} and custom_llm_provider={custom_llm_provider!r} "
            "disagree; pass only provider="
        )
    return custom_llm_provider


def _keyless(options: Mapping[str, Any], chain: str | None) -> tuple[CredentialSource, str | None]:
    """Where credentials come from without a key: a secret-looking option, else the
    provider's credential chain, else nowhere."""
    option = next((n for n, value in options.items() if value and is_secret_name(n)), None)
    if option is not None:
        return "option", option
    if chain is not None:
        return "chain", chain
    return "none", None
