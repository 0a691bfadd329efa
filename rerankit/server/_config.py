"""The server's TOML configuration: public model names, limits, client keys, provider settings.

Provider API keys never come from this file (they are read from the environment); the file may
hold the *client* keys the server accepts, though ``api_keys_env`` is the better place for them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from rerankit._errors import ConfigurationError
from rerankit._redact import MASK, is_secret_name, masked_repr

if sys.version_info >= (3, 11):
    import tomllib
else:  # the `tomli` backport: a dependency on Python 3.10 only
    import tomli as tomllib

__all__ = ["ModelRoute", "ServerConfig", "ServerSettings", "load_config", "parse_config"]

MiB = 1024 * 1024

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class ServerSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The ``[server]`` table."""

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8080
    api_keys: list[str] = msgspec.field(default_factory=list)
    """Client keys accepted as ``Authorization: Bearer <key>`` (prefer ``api_keys_env``)."""
    api_keys_env: str = "RERANKIT_SERVER_API_KEYS"
    """An environment variable holding more client keys, comma-separated."""
    allow_anonymous: bool = False
    """Serve without client keys on a non-loopback host (loopback never needs this)."""
    rate_limit: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    """Requests per minute per client key (per address without keys); 0 turns it off."""
    rate_limit_burst: PositiveInt | None = None
    """Requests a client may make at once (default: one minute's worth)."""
    max_documents: PositiveInt = 1000
    max_body_bytes: PositiveInt = 10 * MiB
    default_model: str | None = None
    """The model for v1 requests that name none."""
    timeout: PositiveFloat = 60.0
    """Seconds one upstream attempt may take."""
    max_retries: Annotated[int, msgspec.Meta(ge=0)] = 2
    max_connections: PositiveInt = 100
    shutdown_timeout: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    """Seconds in-flight requests get to finish after SIGTERM or SIGINT (0: no limit)."""
    access_log: bool = False

    def __repr__(self) -> str:
        return masked_repr(self)

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        """Every field, the client keys masked (``repr`` and rich use this)."""
        return [
            (name, [MASK] * len(self.api_keys) if name == "api_keys" else getattr(self, name))
            for name in self.__struct_fields__
        ]


class ModelRoute(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One ``[models."<public name>"]`` table: where a public model name goes."""

    model: str
    """The rerankit model string, ``"cohere/rerank-v3.5"`` or ``"local/bm25"``."""
    fallbacks: list[str | dict[str, Any]] = msgspec.field(default_factory=list)
    """Models tried in order when ``model`` fails with a retryable error."""
    max_documents: PositiveInt | None = None
    max_body_bytes: PositiveInt | None = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    """Call options: the provider's own (``api_version``, ``k1``...), ``timeout``,
    ``max_retries``."""


class ServerConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The whole file: ``[server]``, ``[models.*]`` and ``[providers.*]``."""

    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    models: dict[str, ModelRoute] = msgspec.field(default_factory=dict)
    providers: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    """Per-provider ``ProviderSettings`` without ``api_key``: ``api_base``, ``timeout``..."""

    def client_keys(self) -> list[str]:
        """The client keys from the file and from ``api_keys_env``, in that order."""
        keys = [key for key in self.server.api_keys if key]
        extra = os.environ.get(self.server.api_keys_env, "")
        keys.extend(key.strip() for key in extra.split(",") if key.strip())
        return keys


DEFAULT_CONFIG_TOML = """
[models.bm25]
model = "local/bm25"
"""
"""What ``rerankit serve`` without ``--config`` serves: the offline BM25 reranker as ``bm25``."""


def load_config(path: str | os.PathLike[str] | None) -> ServerConfig:
    """Read and check a TOML config file (``None``: the default config)."""
    if path is None:
        return parse_config(DEFAULT_CONFIG_TOML, "<default config>")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read config {path}: {exc.strerror}") from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<config>") -> ServerConfig:
    """Parse and check TOML text; errors name ``source`` and the offending field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{source}: not valid TOML: {exc}") from None
    models = data.pop("models", {})
    try:
        config = msgspec.convert(data, ServerConfig)
        if not isinstance(models, dict):
            raise ConfigurationError('[models] must be tables: [models."<name>"]')
        for name, table in models.items():
            try:
                config.models[name] = msgspec.convert(table, ModelRoute)
            except msgspec.ValidationError as exc:
                raise ConfigurationError(f'[models."{name}"]: {_plain(exc)}') from None
    except (msgspec.ValidationError, ConfigurationError) as exc:
        raise ConfigurationError(f"{source}: {_plain(exc)}") from None
    try:
        _check(config)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source}: {exc}") from None
    return config


def _plain(exc: Exception) -> str:
    return str(exc).replace("Object contains unknown field", "unknown field")


def _check(config: ServerConfig) -> None:
    if not config.models:
        raise ConfigurationError('no models: add a [models."<name>"] table with model = "..."')
    default = config.server.default_model
    if default is not None and default not in config.models:
        raise ConfigurationError(f"server.default_model {default!r} is not in [models]")
    for name, route in config.models.items():
        where = f"models.{name}"
        if not name.strip():
            raise ConfigurationError("a model name must not be empty")
        refuse_secrets(route.options, f"{where}.options")
        for position, fallback in enumerate(route.fallbacks):
            if isinstance(fallback, Mapping):
                refuse_secrets(fallback, f"{where}.fallbacks[{position}]")
    for name, settings in config.providers.items():
        where = f"providers.{name}"
        refuse_secrets(settings, where)
        for table in ("options", "extra_headers"):
            value = settings.get(table)
            if isinstance(value, Mapping):
                refuse_secrets(value, f"{where}.{table}")


def refuse_secrets(table: Mapping[str, Any], where: str) -> None:
    """Raise if ``table`` has a secret-looking key: secrets belong in the environment."""
    for name in table:
        if is_secret_name(str(name)):
            raise ConfigurationError(
                f"{where}.{name}: secrets do not belong in the config file; set the provider's "
                "key in its environment variable (see `rerankit providers`)"
            )
