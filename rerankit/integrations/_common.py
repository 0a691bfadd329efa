"""What the framework adapters share: their options, the rerankit call they make from a
framework's texts and metadata, and the client that runs it (sync or async)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rerankit._client import AsyncClient, arerank
from rerankit._errors import ConfigurationError
from rerankit._input import check_positive_int, check_rank_fields
from rerankit._install import install_hint
from rerankit._redact import is_secret_name
from rerankit._sync._client import Client, rerank
from rerankit._sync._portal import call
from rerankit._types import Document, RerankResponse

__all__ = [
    "MissingFrameworkError",
    "Ranking",
    "Reranker",
    "check_client",
    "either",
    "missing_framework",
    "reranker_of",
]

T = TypeVar("T")

Ranking = list[tuple[int, float]]
"""``(index into the documents given, relevance score)``, best first, cut to ``top_n``."""

_OWN_ARGUMENTS = frozenset(
    {
        "model",
        "query",
        "documents",
        "top_n",
        "rank_fields",
        "max_tokens_per_doc",
        "return_documents",
        "api_base",
        "base_url",
    }
)
"""Call arguments an adapter sets itself: ``options`` may not set them too."""


class MissingFrameworkError(ConfigurationError, ImportError):
    """An integration module was imported without its framework installed."""


def missing_framework(module: str, package: str, extra: str) -> MissingFrameworkError:
    """The error raised when importing ``rerankit.integrations.<module>`` without ``package``."""
    return MissingFrameworkError(
        f"rerankit.integrations.{module} needs {package}, which is not installed: "
        f"{install_hint(extra)}"
    )


def either(name: str, value: T | None, alias: str, alias_value: T | None) -> T | None:
    """One argument that has two names (rerankit's and a Cohere adapter's): at most one given,
    or both equal."""
    if value is None:
        return alias_value
    if alias_value is not None and alias_value != value:
        raise ConfigurationError(f"{name}= and {alias}= disagree; {alias} is {name}: pass one")
    return value


def check_client(client: object) -> AsyncClient | Client | None:
    """The ``client=`` of an adapter: a rerankit ``AsyncClient`` or ``Client``, or ``None``."""
    if client is None or isinstance(client, (AsyncClient, Client)):
        return client
    raise ConfigurationError(
        f"client must be a rerankit.AsyncClient or rerankit.Client, got {type(client).__name__}"
    )


def _check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(options, Mapping):
        raise ConfigurationError(f"options must be a dict, got {type(options).__name__}")
    for name in options:
        if not isinstance(name, str):
            raise ConfigurationError(f"options keys must be str, got {name!r}")
        if name in _OWN_ARGUMENTS:
            raise ConfigurationError(
                f"options must not set {name!r}: pass it as the reranker's own argument"
            )
    secret = _secret_path(options, "options")
    if secret is not None:
        raise ConfigurationError(
            f"{secret} looks like a secret, and options are saved with the reranker: pass the "
            "key as api_key, or set it in a client's providers= settings or the environment"
        )
    return dict(options)


def _secret_path(value: object, path: str) -> str | None:
    """Where in ``value`` (nested dicts and lists) a key has a secret-looking name, if any."""
    if isinstance(value, Mapping):
        for name, item in value.items():
            where = f"{path}[{name!r}]"
            if isinstance(name, str) and is_secret_name(name):
                return where
            found = _secret_path(item, where)
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            found = _secret_path(item, f"{path}[{position}]")
            if found is not None:
                return found
    return None


@dataclass(frozen=True)
class Reranker:
    """One adapter's rerankit call: the model, cut-off and call options, and its client.

    Without ``client`` the sync path uses rerankit's default ``Client`` and the async path
    the default ``AsyncClient`` of the running loop. With an ``AsyncClient``, the async path
    awaits it on the caller's loop and the sync path runs it on rerankit's own loop thread,
    as the sync ``Client`` does (it keeps a connection pool there; its cache, fallbacks,
    hooks and prices are shared). ``api_key`` never appears in the repr.
    """

    model: str
    top_n: int | None = None
    client: AsyncClient | Client | None = None
    rank_fields: list[str] | None = None
    max_tokens_per_doc: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    api_key: str | None = field(default=None, repr=False)
    api_base: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigurationError(f"model must be a non-empty string, got {self.model!r}")
        check_positive_int("top_n", self.top_n)
        check_positive_int("max_tokens_per_doc", self.max_tokens_per_doc)
        check_client(self.client)
        object.__setattr__(self, "rank_fields", check_rank_fields(self.rank_fields))
        object.__setattr__(self, "options", _check_options(self.options))
        for name in ("api_key", "api_base"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigurationError(f"{name} must be a str, got {type(value).__name__}")

    def documents(
        self, texts: Sequence[str], metadata: Sequence[Mapping[str, Any]]
    ) -> list[Document]:
        """What rerankit ranks: the texts, or with ``rank_fields`` one dict per document with
        the text under ``"text"`` and the metadata fields named in ``rank_fields``."""
        fields = self.rank_fields
        if fields is None:
            return list(texts)
        documents: list[Document] = []
        for position, (text, meta) in enumerate(zip(texts, metadata, strict=True)):
            document: dict[str, Any] = {"text": text}
            for name in fields:
                if name == "text":
                    continue
                if name not in meta:
                    raise ConfigurationError(
                        f"document {position} has no metadata field {name!r}, which "
                        f"rank_fields names (its metadata has: {', '.join(map(str, meta)) or '-'})"
                    )
                document[name] = meta[name]
            documents.append(document)
        return documents

    def rank(
        self, query: str, texts: Sequence[str], metadata: Sequence[Mapping[str, Any]]
    ) -> Ranking:
        """Rerank on the calling thread (rerankit's sync facade)."""
        documents = self.documents(texts, metadata)
        client, kwargs = self.client, self._arguments()
        if client is None:
            response = rerank(self.model, query, documents, **kwargs)
        elif isinstance(client, Client):
            response = client.rerank(self.model, query, documents, **kwargs)
        else:
            _check_portable(client)
            response = call(client.rerank, self.model, query, documents, **kwargs)
        return _ranking(response)

    async def arank(
        self, query: str, texts: Sequence[str], metadata: Sequence[Mapping[str, Any]]
    ) -> Ranking:
        """Rerank on the running event loop (rerankit's ``AsyncClient``, no thread)."""
        documents = self.documents(texts, metadata)
        client, kwargs = self.client, self._arguments()
        if client is None:
            response = await arerank(self.model, query, documents, **kwargs)
        else:
            async_client = client._async if isinstance(client, Client) else client
            response = await async_client.rerank(self.model, query, documents, **kwargs)
        return _ranking(response)

    def _arguments(self) -> dict[str, Any]:
        kwargs = dict(self.options)
        kwargs.update(
            top_n=self.top_n,
            rank_fields=self.rank_fields,
            max_tokens_per_doc=self.max_tokens_per_doc,
            return_documents=False,
        )
        if self.api_key is not None:
            kwargs["api_key"] = self.api_key
        if self.api_base is not None:
            kwargs["api_base"] = self.api_base
        return kwargs


def _check_portable(client: AsyncClient) -> None:
    """The sync path runs ``client`` on rerankit's loop thread: it must not hold an aiohttp
    session, which belongs to the caller's loop."""
    if client._session is not None:
        raise ConfigurationError(
            "this AsyncClient was given session=, an aiohttp session of its own event loop, so "
            "the synchronous methods cannot run it on rerankit's loop thread: use the async "
            "methods, or a client without session="
        )


def _ranking(response: RerankResponse) -> Ranking:
    return [(result.index, result.relevance_score) for result in response.results]


def reranker_of(adapter: Any) -> Reranker:
    """The ``Reranker`` of a pydantic adapter (LangChain's, LlamaIndex's) whose fields carry
    rerankit's names, its key a ``SecretStr``."""
    key = adapter.api_key
    return Reranker(
        model=adapter.model,
        top_n=adapter.top_n,
        client=adapter.client,
        rank_fields=adapter.rank_fields,
        max_tokens_per_doc=adapter.max_tokens_per_doc,
        options=adapter.options,
        api_key=None if key is None else key.get_secret_value(),
        api_base=adapter.api_base,
    )
