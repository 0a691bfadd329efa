"""From the config to what the server serves: one ``Route`` per public model name, checked at
start-up (known providers, valid options, credentials present) so requests never find out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rerankit._check import check_model
from rerankit._errors import ConfigurationError, RerankitError
from rerankit._fallback import Fallback, parse_chain
from rerankit._settings import ProviderSettings, to_settings
from rerankit.server._config import ServerConfig

__all__ = ["Route", "build_routes", "provider_settings"]


class Route:
    """A public model name and everything a request for it needs."""

    __slots__ = ("fallbacks", "max_body_bytes", "max_documents", "model", "name", "options")

    def __init__(
        self,
        name: str,
        model: str,
        fallbacks: tuple[Fallback, ...],
        max_documents: int,
        max_body_bytes: int,
        options: dict[str, Any],
    ) -> None:
        self.name = name
        self.model = model
        self.fallbacks = fallbacks
        self.max_documents = max_documents
        self.max_body_bytes = max_body_bytes
        self.options = options

    @property
    def upstreams(self) -> tuple[str, ...]:
        """The rerankit models behind this name, in the order they are tried (never shown to
        clients)."""
        return (self.model, *(fallback.model for fallback in self.fallbacks))


def provider_settings(config: ServerConfig) -> dict[str, ProviderSettings]:
    """The ``[providers.*]`` tables as ``ProviderSettings`` (never with a key: see config)."""
    try:
        return {name: to_settings(name, table) for name, table in config.providers.items()}
    except ConfigurationError as exc:
        raise ConfigurationError(f"[providers]: {exc}") from None


def build_routes(
    config: ServerConfig, settings: Mapping[str, ProviderSettings]
) -> dict[str, Route]:
    """One checked ``Route`` per ``[models.*]`` table."""
    server = config.server
    routes = {}
    for name, table in config.models.items():
        try:
            check_model(table.model, table.options, settings, "server")
            chain = parse_chain(table.fallbacks, f"models.{name}.fallbacks")
            for fallback in chain:
                check_model(fallback.model, fallback.options, settings, "server")
        except RerankitError as exc:
            raise ConfigurationError(f"model {name!r}: {exc}") from None
        routes[name] = Route(
            name,
            table.model,
            chain,
            table.max_documents or server.max_documents,
            table.max_body_bytes or server.max_body_bytes,
            dict(table.options),
        )
    return routes
