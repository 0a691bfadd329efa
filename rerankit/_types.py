"""Public request and response types (msgspec Structs).

Results read both ways: ``result.index`` and ``result["index"]``, so call sites written for
LiteLLM's dict-shaped results keep working unchanged. ``model_dump()`` turns a response or a
result into plain JSON-compatible data, as LiteLLM's pydantic responses do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import msgspec

__all__ = ["Document", "RerankRequest", "RerankResponse", "RerankResult", "ScoreKind", "Usage"]

Document = str | dict[str, Any]
"""A document as callers pass it: a string, or a dict (ranked on ``rank_fields`` or ``text``)."""

ScoreKind = Literal["probability", "logit", "unknown"]
"""What a relevance score means: documented 0..1, a raw unbounded logit, or undocumented."""


class _ItemAccess:
    """Read-only ``obj["field"]`` access to a Struct's fields; a ``None`` field reads as absent."""

    __slots__ = ()
    __struct_fields__: tuple[str, ...]

    def keys(self) -> list[str]:
        return [name for name in self.__struct_fields__ if getattr(self, name) is not None]

    def __getitem__(self, key: str) -> Any:
        if key in self.__struct_fields__:
            value = getattr(self, key)
            if value is not None:
                return value
        elif key in type(self).__dict__ and isinstance(type(self).__dict__[key], property):
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def model_dump(
        self, *, mode: Literal["python", "json"] = "python", exclude_none: bool = False
    ) -> dict[str, Any]:
        """Every field as plain, JSON-compatible data (``json.dumps`` takes it), like
        pydantic's ``model_dump``: ``None`` fields included unless ``exclude_none``. Both modes
        give the same JSON-compatible result."""
        if mode not in ("python", "json"):
            from rerankit._errors import ConfigurationError

            raise ConfigurationError(f"mode must be 'python' or 'json', got {mode!r}")
        return self._dump(exclude_none)

    def model_dump_json(self, *, indent: int | None = None, exclude_none: bool = False) -> str:
        """``model_dump()`` as a JSON string (indented by ``indent`` spaces when given)."""
        data = msgspec.json.encode(self._dump(exclude_none))
        if indent is not None:
            data = msgspec.json.format(data, indent=indent)
        return data.decode()

    def _dump(self, exclude_none: bool) -> dict[str, Any]:
        return _plain(self, exclude_none)


class Usage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What the provider reported it billed; a figure it did not report is ``None``, never 0."""

    search_units: int | None = None
    input_tokens: int | None = None
    total_tokens: int | None = None


class RerankResult(_ItemAccess, msgspec.Struct, omit_defaults=True):
    """One ranked document.

    ``index`` points into the caller's ``documents`` list. ``document`` is ``{"text": ...}`` for a
    string document and the caller's own dict for a dict document, when documents are returned.
    """

    index: int
    relevance_score: float
    document: dict[str, Any] | None = None


def _plain(struct: Any, exclude_none: bool) -> dict[str, Any]:
    """A Struct's fields in order as builtins, ``None`` included unless ``exclude_none``."""
    data: dict[str, Any] = {}
    for name in struct.__struct_fields__:
        value = getattr(struct, name)
        if value is None:
            if not exclude_none:
                data[name] = None
        elif isinstance(value, msgspec.Struct):
            data[name] = _plain(value, exclude_none)
        else:
            data[name] = msgspec.to_builtins(value)
    return data


class RerankResponse(_ItemAccess, msgspec.Struct, kw_only=True, omit_defaults=True):
    """The ranking: results sorted by descending score (ties by ascending index), cut to ``top_n``.

    A provider may build one with only ``results``; the client fills in the rest.
    """

    results: list[RerankResult]
    id: str | None = None
    model: str | None = None
    provider: str | None = None
    usage: Usage = msgspec.field(default_factory=Usage)
    score_kind: ScoreKind = "unknown"
    api_version: str | None = None
    provider_meta: dict[str, Any] = msgspec.field(default_factory=dict)
    fallback_from: list[str] = msgspec.field(default_factory=list)
    """The models that failed, in order, before ``provider``/``model`` answered."""
    cost: float | None = None
    """What the call cost in USD by rerankit's price table; ``None`` when unknown."""

    @property
    def meta(self) -> dict[str, Any]:
        """Cohere/LiteLLM-shaped metadata: ``billed_units``, ``tokens`` and ``api_version``
        (``{"version": "2"}`` for ``api_version="v2"``, as Cohere writes it)."""
        meta: dict[str, Any] = {}
        if self.api_version is not None:
            meta["api_version"] = {"version": _wire_version(self.api_version)}
        billed = {
            key: value
            for key, value in (
                ("search_units", self.usage.search_units),
                ("total_tokens", self.usage.total_tokens),
            )
            if value is not None
        }
        if billed:
            meta["billed_units"] = billed
        if self.usage.input_tokens is not None:
            meta["tokens"] = {"input_tokens": self.usage.input_tokens}
        return meta

    @property
    def _hidden_params(self) -> dict[str, Any]:
        """LiteLLM's ``response._hidden_params`` keys that rerankit knows, built on each read:
        ``response_cost`` (``cost``), ``custom_llm_provider`` and ``litellm_model_name``."""
        name = self.model if self.provider is None else f"{self.provider}/{self.model}"
        return {
            "response_cost": self.cost,
            "custom_llm_provider": self.provider,
            "litellm_model_name": None if self.model is None else name,
        }

    hidden_params = _hidden_params

    def _dump(self, exclude_none: bool) -> dict[str, Any]:
        data = _plain(self, exclude_none)  # results in one to_builtins call, fast for many
        if not exclude_none:
            for result in data["results"]:  # ``document``: the field a result may lack
                result.setdefault("document", None)
        data["meta"] = self.meta
        return data


def _wire_version(version: str) -> str:
    """``"v2"`` as Cohere's and LiteLLM's ``meta.api_version.version`` write it: ``"2"``."""
    return version[1:] if version[:1] == "v" and version[1:].isdigit() else version


class RerankRequest(msgspec.Struct, kw_only=True):
    """What a provider receives: one validated call, with the provider prefix already removed.

    ``documents`` holds the text of every document (dicts already rendered with ``rank_fields``).
    ``source_documents`` holds the caller's original items when any of them is a dict (providers
    that accept structured documents send those), else ``None``. ``options`` holds the
    provider-specific keyword arguments the provider declared.
    """

    model: str
    query: str
    documents: list[str]
    top_n: int | None = None
    return_documents: bool = True
    rank_fields: list[str] | None = None
    max_chunks_per_doc: int | None = None
    max_tokens_per_doc: int | None = None
    instruction: str | None = None
    source_documents: list[Document] | None = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)

    def __repr__(self) -> str:
        from rerankit._redact import masked_repr

        return masked_repr(self)

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        """The fields worth showing, secret options masked (``repr`` and rich use this)."""
        from rerankit._redact import redact_options

        return [
            ("model", self.model),
            ("query", self.query),
            ("documents", _Count(len(self.documents), "documents")),
            ("top_n", self.top_n),
            ("options", redact_options(self.options)),
        ]


class _Count:
    """Shows as ``<3 documents>`` in a repr."""

    __slots__ = ("number", "what")

    def __init__(self, number: int, what: str) -> None:
        self.number = number
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.number} {self.what}>"
