"""What a client resolves once per model string and reuses on every call to it.

Resolving ``"cohere/rerank-v3.5"`` means: split the string, load the provider class, make its
instance, find the client's settings for it, its default timeout and retries,
whether anything watches its requests, and its price. None of that changes between calls, so a
client keeps one ``Target`` per model string and checks on each call only that the registry
still maps the provider name to the same class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import msgspec

from rerankit._call import NO_SETTINGS, CallSettings
from rerankit._cost import PriceEntry, PriceTable, default_prices
from rerankit._dispatch import resolve_model
from rerankit._prepare import api_base, api_key, merged_headers
from rerankit._registry import load_provider
from rerankit._retry import RetryPolicy
from rerankit._settings import ProviderSettings
from rerankit.providers._base import Provider, ProviderContext

if TYPE_CHECKING:
    from rerankit._http import Transport

__all__ = ["Target", "Targets"]

_MAX_TARGETS = 1024
"""Model strings a client remembers; beyond that it starts afresh (a misuse guard)."""


class Target:
    """One model of one provider, as a given client calls it when no call argument overrides."""

    __slots__ = (
        "_base",
        "_context",
        "_headers",
        "_key",
        "cls",
        "impl",
        "model",
        "overrides",
        "price",
        "provider",
        "retries",
        "settings",
        "timeout",
        "watched",
    )

    def __init__(
        self,
        *,
        provider: str,
        model: str,
        cls: type[Provider],
        impl: Provider,
        settings: ProviderSettings | None,
        timeout: float | None,
        retries: int,
        price: PriceEntry | None,
        watched: bool,
    ) -> None:
        self._key = settings.api_key if settings is not None else None
        self._base = (
            api_base({}, settings, cls, provider) if settings and settings.api_base else None
        )
        self._headers = settings.extra_headers or None if settings is not None else None
        self._context: ProviderContext | None = None
        self.provider = provider
        self.model = model
        self.cls = cls
        self.impl = impl
        self.settings = settings
        self.timeout = timeout
        self.retries = retries
        self.price = price
        self.watched = watched
        """Whether hooks or a rate limit may apply (else only debug logging can watch)."""
        self.overrides = settings.capabilities if settings is not None else None
        """The client's capability overrides for the provider (``providers={...}``)."""

    def context(
        self, call: CallSettings, drop: bool, transport: Callable[[], Transport]
    ) -> ProviderContext:
        """The provider's context for a call: key, base URL, timeout and headers from the call,
        else the client's settings for the provider, else the environment (key, base) or the
        provider's default (base). A call that sets none of them gets one shared value, once
        the client's settings give both key and base. ``ConfigurationError`` when the
        provider needs a key or base and there is none."""
        shared = self._context
        if call is NO_SETTINGS and shared is not None and shared.drop_params is drop:
            return shared
        key: str | None = self._key
        if call.api_key or not key:
            key = api_key(call.credentials(), self.settings, self.cls, self.provider)
        base: str | None = self._base
        if call.api_base or call.base_url or not base:
            base = api_base(call.credentials(), self.settings, self.cls, self.provider)
        ctx = ProviderContext(
            provider=self.provider,
            model=self.model,
            api_key=key,
            api_base=base,
            timeout=self.timeout if call.timeout is msgspec.UNSET else call.timeout,
            extra_body=call.extra_body,
            extra_headers=self.headers(call.extra_headers),
            drop_params=drop,
            transport=transport,
        )
        if call is NO_SETTINGS and self._key and self._base:
            self._context = ctx
        return ctx

    def headers(self, extra: Mapping[str, str] | None) -> Mapping[str, str] | None:
        """A call's extra HTTP headers: the client's for the provider, then the call's own."""
        if extra is None:
            return self._headers
        return merged_headers(self.settings, extra)


class Targets:
    """A client's ``Target`` per ``(model string, provider argument)``, made on first use."""

    def __init__(
        self,
        settings: Mapping[str, ProviderSettings],
        *,
        timeout: float | None,
        policy: RetryPolicy,
        prices: PriceTable | None,
        hooked: bool,
    ) -> None:
        self._settings = settings
        self._timeout = timeout
        self._policy = policy
        self._prices = prices
        self._hooked = hooked
        self._targets: dict[tuple[str, str | None], Target] = {}
        self._instances: dict[type[Provider], Provider] = {}

    def get(self, model: str, provider: str | None) -> Target:
        """The target of ``model`` (and an explicit ``provider``); errors as ``resolve_model``."""
        try:
            target = self._targets.get((model, provider))
        except TypeError:  # an unhashable model or provider: let resolve_model name it
            target = None
        if target is not None and load_provider(target.provider) is target.cls:
            return target
        target = self._resolve(model, provider)
        if len(self._targets) >= _MAX_TARGETS:
            self._targets.clear()
        self._targets[(model, provider)] = target
        return target

    def instance(self, cls: type[Provider]) -> Provider:
        """The client's one instance of a provider class."""
        instance = self._instances.get(cls)
        if instance is None:
            instance = self._instances[cls] = cls()
        return instance

    def _resolve(self, model: str, provider: str | None) -> Target:
        provider_name, model_name = resolve_model(model, provider)
        cls = load_provider(provider_name)
        impl = self.instance(cls)
        settings = self._settings.get(provider_name)
        rpm, tpm = cls.default_requests_per_minute, cls.default_tokens_per_minute
        if settings is not None:
            rpm = rpm if settings.requests_per_minute is None else settings.requests_per_minute
            tpm = tpm if settings.tokens_per_minute is None else settings.tokens_per_minute
        retries = self._policy.max_retries
        if settings is not None and settings.max_retries is not None:
            retries = settings.max_retries
        prices = self._prices or default_prices()
        return Target(
            provider=provider_name,
            model=model_name,
            cls=cls,
            impl=impl,
            settings=settings,
            timeout=settings.timeout if settings and settings.timeout else self._timeout,
            retries=retries,
            price=prices.lookup(provider_name, model_name),
            watched=self._hooked or bool(rpm) or bool(tpm),
        )
