"""Per-provider configuration a client holds, and how credentials are looked up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from rerankit._errors import ConfigurationError
from rerankit._redact import mask, masked_repr, redact_options
from rerankit._sendable import check_headers, check_secret

__all__ = ["ProviderSettings", "cache_home", "first_env", "settings_map", "to_settings"]


class ProviderSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Configuration for one provider on a client; ``None`` means "not set here".

    ``options`` are default provider-specific arguments (for example ``{"api_version": "v1"}``)
    that a call's own keyword arguments override. ``capabilities`` overrides what the provider
    declares for every model (``ModelCapabilities`` fields), for servers configured otherwise:
    ``{"max_documents": 128}`` for a TEI server started with ``--max-client-batch-size 128``.
    ``requests_per_minute`` and ``tokens_per_minute`` rate-limit calls per API key (callers
    wait); they replace the provider's published defaults, and 0 turns a limit off.
    """

    api_key: str | None = None
    api_base: str | None = None
    timeout: float | None = None
    max_retries: int | None = None
    extra_headers: dict[str, str] | None = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    capabilities: dict[str, Any] = msgspec.field(default_factory=dict)
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None

    def __post_init__(self) -> None:
        _check_types(self)
        if self.api_key:
            check_secret(self.api_key, "api_key")
        if self.extra_headers is not None:
            check_headers(self.extra_headers, "extra_headers")
        if self.capabilities:
            from rerankit.providers._base import ModelCapabilities

            unknown = set(self.capabilities) - set(ModelCapabilities.__struct_fields__)
            if unknown:
                raise ConfigurationError(
                    f"unknown capabilities {sorted(unknown)}; known: "
                    f"{', '.join(ModelCapabilities.__struct_fields__)}"
                )
            try:
                msgspec.convert(self.capabilities, ModelCapabilities)
            except msgspec.ValidationError as exc:
                raise ConfigurationError(f"capabilities: {exc}") from None
        if self.timeout is not None and not self.timeout > 0:
            raise ConfigurationError(
                f"timeout must be a number of seconds > 0, got {self.timeout!r}"
            )
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ConfigurationError(f"{name} must be >= 0 (0: no limit), got {value!r}")
        if self.max_retries is not None and self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, got {self.max_retries!r}")

    def __repr__(self) -> str:
        return masked_repr(self)

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        """The fields worth showing, secrets masked (``repr`` and rich use this)."""
        return [
            ("api_key", mask(self.api_key)),
            ("api_base", self.api_base),
            ("timeout", self.timeout),
            ("max_retries", self.max_retries),
            ("options", redact_options(self.options)),
            ("capabilities", self.capabilities),
        ]


def _check_types(settings: ProviderSettings) -> None:
    """The field types (a ``ProviderSettings`` built directly is not type-checked by msgspec)."""
    for name in ("api_key", "api_base"):
        value = getattr(settings, name)
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{name} must be a str, got {type(value).__name__}")
    for name in ("timeout", "requests_per_minute", "tokens_per_minute"):
        value = getattr(settings, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigurationError(f"{name} must be a number, got {type(value).__name__}")
    retries = settings.max_retries
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int)):
        raise ConfigurationError(f"max_retries must be an int >= 0, got {type(retries).__name__}")
    for name in ("options", "capabilities"):
        value = getattr(settings, name)
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            raise ConfigurationError(f"{name} must be a dict with str keys")


def to_settings(name: str, value: ProviderSettings | Mapping[str, Any]) -> ProviderSettings:
    """Accept a ``ProviderSettings`` or a plain dict of its fields."""
    if isinstance(value, ProviderSettings):
        return value
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"providers[{name!r}] must be a ProviderSettings or a dict, got {type(value).__name__}"
        )
    unknown = set(value) - set(ProviderSettings.__struct_fields__)
    if unknown:
        raise ConfigurationError(
            f"providers[{name!r}] has unknown settings {sorted(unknown)}; "
            f"known: {', '.join(ProviderSettings.__struct_fields__)}"
        )
    problem = None
    try:
        return msgspec.convert(dict(value), ProviderSettings)
    except msgspec.ValidationError as exc:
        problem = str(exc)
    except ConfigurationError as exc:
        problem = str(exc)
    except UnicodeEncodeError:
        problem = "a str holds a lone surrogate (it cannot be sent as UTF-8)"
    raise ConfigurationError(f"providers[{name!r}]: {problem}")


def settings_map(providers: object) -> dict[str, ProviderSettings]:
    """A client's ``providers=``: provider names to settings (``ProviderSettings`` or dicts)."""
    if providers is None:
        return {}
    if not isinstance(providers, Mapping) or not all(isinstance(k, str) for k in providers):
        raise ConfigurationError(
            "providers must be a dict of provider names to settings, "
            f"got {type(providers).__name__}"
        )
    return {name: to_settings(name, value) for name, value in providers.items()}


def first_env(names: tuple[str, ...]) -> str | None:
    """The value of the first of ``names`` set (non-empty) in the environment."""
    environ = os.environ
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return None


def cache_home() -> Path:
    """rerankit's own cache folder (converted models, evaluation answers):
    ``$RERANKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/rerankit``, else ``~/.cache/rerankit``."""
    configured = os.environ.get("RERANKIT_CACHE_DIR")
    if configured:
        return Path(os.path.expanduser(configured))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(os.path.expanduser(base)) / "rerankit"
