"""Model string → (provider name, model name)."""

from __future__ import annotations

from rerankit._errors import ConfigurationError
from rerankit._registry import is_registered, unknown_provider

__all__ = ["BARE_MODELS", "resolve_model"]

BARE_MODELS: dict[str, str] = {
    "rerank-v4.0-pro": "cohere",
    "rerank-v4.0-fast": "cohere",
    "rerank-v3.5": "cohere",
    "rerank-english-v3.0": "cohere",
    "rerank-multilingual-v3.0": "cohere",
    "rerank-english-v2.0": "cohere",
    "rerank-multilingual-v2.0": "cohere",
    "bm25": "local",
}
"""Well-known model names that may be given without a provider prefix."""


def resolve_model(model: object, provider: object = None) -> tuple[str, str]:
    """Split ``model`` at its first ``/`` into provider and model; an explicit provider wins.

    With ``provider`` given, a leading ``"<provider>/"`` in ``model`` is removed and the rest is
    the model, so ``provider="together_ai", model="Salesforce/Llama-Rank-V1"`` keeps its slash.
    """
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError(f"model must be a non-empty string, got {model!r}")
    if provider is not None:
        if not isinstance(provider, str) or not provider:
            raise ConfigurationError(f"provider must be a non-empty string, got {provider!r}")
        if not is_registered(provider):
            raise unknown_provider(provider)
        name = model[len(provider) + 1 :] if model.startswith(provider + "/") else model
        result = (provider, name)
    else:
        prefix, slash, rest = model.partition("/")
        if slash:
            if not is_registered(prefix):
                raise unknown_provider(prefix, model)
            result = (prefix, rest)
        elif model in BARE_MODELS:
            result = (BARE_MODELS[model], model)
        else:
            raise ConfigurationError(
                f"model {model!r} names no provider: write it as '<provider>/{model}' "
                "(for example 'cohere/rerank-v3.5') or pass provider=..."
            )
    if not result[1]:
        raise ConfigurationError(f"model {model!r} has an empty model name after the provider")
    return result
