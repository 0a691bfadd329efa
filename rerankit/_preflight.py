"""Checking that a model can be called before calling it: for the server's start-up and the
command line's first job, whose messages say where *they* read keys and base URLs from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rerankit._dispatch import resolve_model
from rerankit._errors import ConfigurationError
from rerankit._prepare import Context, api_base, api_key, missing_message, split_options
from rerankit._registry import load_provider
from rerankit._settings import ProviderSettings

__all__ = ["check_model"]


def check_model(
    model: str,
    options: Mapping[str, Any] | None = None,
    settings: Mapping[str, ProviderSettings] | None = None,
    context: Context = "python",
) -> None:
    """Raise a ``RerankitError`` unless ``model`` can be called: its provider loads, its options
    are the provider's, and the key and base URL it needs are configured (values are never
    shown). A missing setting's message says how to set it in ``context``."""
    options = dict(options or {})
    provider, _ = resolve_model(model)
    cls = load_provider(provider)
    provider_settings = (settings or {}).get(provider)
    split_options(options, cls, provider, provider_settings, drop=False)
    key = api_key(options, provider_settings, cls, provider, context)
    base = api_base(options, provider_settings, cls, provider, context)
    if not key and cls.needs_api_key(base):
        raise ConfigurationError(missing_message(provider, "api_key", cls.api_key_env, context))
