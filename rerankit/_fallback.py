"""Fallback chains: which models to try next, and which failures move on to them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from rerankit._errors import APIError, ConfigurationError
from rerankit._retry import is_retryable

__all__ = [
    "ClientFallbacks",
    "Fallback",
    "FallbackSpec",
    "falls_back",
    "parse_chain",
    "parse_client_fallbacks",
]


class Fallback(msgspec.Struct, frozen=True):
    """One model to try when the ones before it failed, with its own call options
    (``api_key``, ``api_base``, ``timeout``, ``max_retries``, provider options)."""

    model: str
    options: dict[str, Any] = msgspec.field(default_factory=dict)


FallbackSpec = str | Mapping[str, Any] | Fallback
"""A fallback as callers write it: ``"voyage/rerank-2.5"``, ``{"model": ..., "api_key": ...}``."""


def falls_back(error: APIError) -> bool:
    """Failures that move on to the next model: the retryable ones (connection errors,
    timeouts, 408, 409, 429, 5xx), after the model's own retries. Bad requests do not."""
    return is_retryable(error)


def parse_chain(value: object, where: str = "fallbacks") -> tuple[Fallback, ...]:
    """A list of fallbacks (a single model string is a list of one)."""
    if value is None:
        return ()
    items = [value] if isinstance(value, (str, Fallback)) or _is_target(value) else value
    if not isinstance(items, Sequence):
        raise ConfigurationError(f"{where} must be a list of model strings, got {value!r}")
    chain = []
    for position, item in enumerate(items):
        if isinstance(item, Fallback):
            chain.append(item)
        elif isinstance(item, str) and item.strip():
            chain.append(Fallback(item))
        elif _is_target(item):
            options = dict(item)
            chain.append(Fallback(options.pop("model"), options))
        else:
            raise ConfigurationError(
                f"{where}[{position}] must be a model string or a dict with a 'model', got {item!r}"
            )
    return tuple(chain)


def parse_client_fallbacks(value: object) -> dict[str, tuple[Fallback, ...]]:
    """Client fallbacks: a list for every model, or ``{model: [...], "*": [...]}``."""
    if value is None:
        return {}
    if isinstance(value, Mapping) and not _is_target(value):
        return {
            str(model): parse_chain(chain, f"fallbacks[{model!r}]")
            for model, chain in value.items()
        }
    return {"*": parse_chain(value)}


def _is_target(value: object) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("model"), str)


class ClientFallbacks:
    """A client's fallback chains: per model, or ``"*"`` for every model."""

    def __init__(self, spec: object) -> None:
        self.chains = parse_client_fallbacks(spec)
        """The chain of each model string (``"*"``: of every model)."""

    def chain(self, model: str, provider: str | None, override: object) -> tuple[Fallback, ...]:
        """The chain for one call: the call's own ``override`` if given, else the client's."""
        if override is not None:
            return parse_chain(override)
        if not self.chains:
            return ()
        named = model if provider is None else f"{provider}/{model}"
        return self.chains.get(named, self.chains.get("*", ()))
