"""What a rerank call cost, from a price table kept as data (``rerankit/prices.json``).

A price is per search unit, per million tokens or per thousand queries. A call whose model has
no price, or whose usage lacks the figure its price needs, costs ``None``, never 0. The shipped
table is read on first use, not on ``import rerankit``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

import msgspec

from rerankit._errors import ConfigurationError
from rerankit._types import Usage

__all__ = [
    "PriceEntry",
    "PriceTable",
    "PricesSpec",
    "default_prices",
    "load_prices",
    "resolve_prices",
]

TokenCount = Literal["total", "input"]

_SUPPORTED_VERSION = 1
_KINDS = ("per_search_unit", "per_million_tokens", "per_thousand_queries")


class PriceEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The price of one model (or of every model of a provider, under ``"provider/*"``).

    Exactly one of ``per_search_unit``, ``per_million_tokens`` and ``per_thousand_queries`` is
    set. ``tokens`` says which usage figure a per-token price applies to. ``documents_per_query``
    makes a query-priced request with more documents count as several queries (Bedrock counts
    one query per 100 documents).
    """

    per_search_unit: float | None = None
    per_million_tokens: float | None = None
    tokens: TokenCount = "total"
    per_thousand_queries: float | None = None
    documents_per_query: int | None = None
    source: str | None = None
    note: str | None = None

    @property
    def kind(self) -> str:
        """The billing unit: ``"per_search_unit"``, ``"per_million_tokens"`` or
        ``"per_thousand_queries"``."""
        return next(kind for kind in _KINDS if getattr(self, kind) is not None)

    def cost(self, usage: Usage, documents: int | Sequence[int] | None = None) -> float | None:
        """The cost of one call with ``usage``, or ``None`` if a figure it needs is unknown.

        ``documents`` matters only for query prices: the number of documents sent in the one
        request, or a sequence with one count per request when the call was split into
        batches. ``None`` means one request (and an unknown cost if the price depends on the
        number of documents).
        """
        if self.per_search_unit is not None:
            units = usage.search_units
            return None if units is None else self.per_search_unit * units
        if self.per_million_tokens is not None:
            count = usage.total_tokens if self.tokens == "total" else usage.input_tokens
            return None if count is None else self.per_million_tokens * count / 1_000_000
        if self.per_thousand_queries is None:
            return None
        queries = self._queries(documents)
        return None if queries is None else self.per_thousand_queries * queries / 1000

    def _queries(self, documents: int | Sequence[int] | None) -> int | None:
        if documents is None:
            return None if self.documents_per_query is not None else 1
        counts = [documents] if isinstance(documents, int) else list(documents)
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in counts):
            raise ValueError(f"documents must be counts >= 0, got {documents!r}")
        if self.documents_per_query is None:
            return len(counts)
        per = self.documents_per_query
        return sum(max(1, (n + per - 1) // per) for n in counts)


PricesSpec = Mapping[str, PriceEntry | Mapping[str, Any] | None]
"""Price overrides by model string; ``None`` removes a shipped price."""


class _PriceFile(msgspec.Struct, forbid_unknown_fields=True):
    version: int
    currency: str
    prices: dict[str, Any]
    updated: str | None = None
    note: str | None = None


class PriceTable:
    """Prices by model string (``"cohere/rerank-v3.5"``), in one currency.

    ``PriceTable.default()`` is the table shipped with rerankit; ``with_overrides`` returns a
    new table with some prices changed, added or removed; ``load_prices(path)`` reads a whole
    table from a JSON file in the shipped format.
    """

    __slots__ = ("_prices", "currency", "updated", "version")

    def __init__(
        self,
        prices: PricesSpec,
        *,
        currency: str = "USD",
        updated: str | None = None,
        version: int = _SUPPORTED_VERSION,
    ) -> None:
        self._prices: dict[str, PriceEntry] = _parse_prices(prices, "price")
        self.currency = currency
        self.updated = updated
        self.version = version

    @classmethod
    def default(cls) -> PriceTable:
        """The table shipped with rerankit (read once, on first use)."""
        return default_prices()

    @property
    def entries(self) -> Mapping[str, PriceEntry]:
        """Every price, by model string (read-only)."""
        return MappingProxyType(self._prices)

    def __len__(self) -> int:
        return len(self._prices)

    def __iter__(self) -> Iterator[str]:
        return iter(self._prices)

    def __contains__(self, model: object) -> bool:
        return model in self._prices

    def __repr__(self) -> str:
        return f"PriceTable(<{len(self._prices)} prices>, currency={self.currency!r})"

    def with_overrides(self, overrides: PricesSpec) -> PriceTable:
        """A new table where each override replaces the price of its model string.

        An override is a price entry (``{"per_search_unit": 0.0015}``) or ``None``, which
        removes the price so the model's cost becomes unknown. Bad overrides raise
        ``ConfigurationError`` naming the model string and the problem.
        """
        parsed = _parse_overrides(overrides)
        prices = dict(self._prices)
        for key, entry in parsed.items():
            if entry is None:
                prices.pop(key, None)
            else:
                prices[key] = entry
        table = PriceTable({}, currency=self.currency, updated=self.updated, version=self.version)
        table._prices = prices
        return table

    def lookup(self, provider: str, model: str) -> PriceEntry | None:
        """The price of ``provider/model``: its own entry, else ``provider/*``, else ``None``.

        A Bedrock model given as an ARN (``arn:aws:bedrock:…:foundation-model/<id>``) also
        matches the entry of its bare model id.
        """
        prices = self._prices
        entry = prices.get(f"{provider}/{model}")
        if entry is None and "foundation-model/" in model:
            entry = prices.get(f"{provider}/{model.rpartition('foundation-model/')[2]}")
        if entry is None:
            entry = prices.get(f"{provider}/*")
        return entry

    def cost(
        self,
        provider: str,
        model: str,
        usage: Usage,
        documents: int | Sequence[int] | None = None,
    ) -> float | None:
        """What one call to ``provider/model`` cost, in ``self.currency``; ``None`` if unknown.

        ``model`` is the model as requested (the part of the model string after the provider),
        not the name a provider echoes back. ``documents`` is used by query prices only: the
        documents sent in one request, or one count per request for a call split into batches.
        """
        entry = self.lookup(provider, model)
        return None if entry is None else entry.cost(usage, documents)


_default_table: PriceTable | None = None


def default_prices() -> PriceTable:
    """The price table shipped with rerankit, read from package data on first use."""
    global _default_table
    if _default_table is None:
        from importlib.resources import files

        data = files("rerankit").joinpath("prices.json").read_bytes()
        _default_table = _table_from_json(data, "rerankit/prices.json")
    return _default_table


def load_prices(path: str | os.PathLike[str]) -> PriceTable:
    """A whole price table from a JSON file in the format of ``rerankit/prices.json``."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except (OSError, ValueError) as exc:  # ValueError: a NUL or lone surrogate in the path
        raise ConfigurationError(f"cannot read price table {os.fspath(path)!r}: {exc}") from None
    return _table_from_json(data, os.fspath(path))


def resolve_prices(prices: PriceTable | PricesSpec | str | os.PathLike[str] | None) -> PriceTable:
    """The table a client's ``prices=`` argument means.

    ``None`` is the shipped table; a mapping overrides prices of the shipped table; a path
    loads a whole table from a JSON file; a ``PriceTable`` is used as it is.
    """
    if prices is None:
        return default_prices()
    if isinstance(prices, PriceTable):
        return prices
    if isinstance(prices, str | os.PathLike):
        return load_prices(prices)
    if isinstance(prices, Mapping):
        parsed = _parse_overrides(prices)  # validate before reading the shipped table
        return default_prices().with_overrides(parsed)
    raise ConfigurationError(
        "prices must be a mapping of price overrides, a path to a JSON price table or a "
        f"PriceTable, got {type(prices).__name__}"
    )


def _table_from_json(data: bytes, where: str) -> PriceTable:
    try:
        raw = msgspec.json.decode(data, type=_PriceFile)
    except msgspec.DecodeError as exc:
        raise ConfigurationError(f"price table {where!r}: {exc}") from None
    if raw.version != _SUPPORTED_VERSION:
        raise ConfigurationError(
            f"price table {where!r}: version {raw.version} is not supported "
            f"(this rerankit reads version {_SUPPORTED_VERSION})"
        )
    table = PriceTable({}, currency=raw.currency, updated=raw.updated, version=raw.version)
    table._prices = _parse_prices(raw.prices, f"price table {where!r}: price")
    return table


def _parse_overrides(overrides: PricesSpec) -> dict[str, PriceEntry | None]:
    if not isinstance(overrides, Mapping):
        raise ConfigurationError(
            f"price overrides must be a mapping of model strings to prices, "
            f"got {type(overrides).__name__}"
        )
    parsed: dict[str, PriceEntry | None] = {}
    for key, raw in overrides.items():
        _check_key(key, "price override")
        parsed[key] = None if raw is None else _parse_entry(key, raw, "price override")
    return parsed


def _parse_prices(prices: PricesSpec, where: str) -> dict[str, PriceEntry]:
    parsed: dict[str, PriceEntry] = {}
    for key, raw in prices.items():
        _check_key(key, where)
        if raw is None:
            raise ConfigurationError(f"{where} {key!r}: expected a price, got null")
        parsed[key] = _parse_entry(key, raw, where)
    return parsed


_FIELDS = frozenset(PriceEntry.__struct_fields__)


def _parse_entry(key: str, raw: object, where: str) -> PriceEntry:
    if isinstance(raw, PriceEntry):
        entry = raw
    elif isinstance(raw, Mapping):
        unknown = sorted(str(name) for name in raw if name not in _FIELDS)
        if unknown:
            raise ConfigurationError(
                f"{where} {key!r}: unknown field{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(unknown)} (known: {', '.join(PriceEntry.__struct_fields__)})"
            )
        if "tokens" in raw and raw.get("per_million_tokens") is None:
            raise ConfigurationError(f"{where} {key!r}: tokens applies only to per_million_tokens")
        try:
            entry = msgspec.convert(dict(raw), PriceEntry)
        except msgspec.ValidationError as exc:
            raise ConfigurationError(f"{where} {key!r}: {exc}") from None
    else:
        raise ConfigurationError(
            f"{where} {key!r}: expected an object such as {{'per_search_unit': 0.002}}, "
            f"got {type(raw).__name__}"
        )
    _check_entry(key, entry, where)
    return entry


def _check_key(key: object, where: str) -> str:
    if isinstance(key, str):
        provider, _, model = key.partition("/")
        if provider and model:
            if "*" in model and model != "*":
                raise ConfigurationError(
                    f"{where} {key!r}: only a whole-provider wildcard '{provider}/*' is supported"
                )
            return key
    raise ConfigurationError(
        f"{where} {key!r}: the key must be a model string '<provider>/<model>' "
        "(or '<provider>/*' for every model of a provider)"
    )


def _check_entry(key: str, entry: PriceEntry, where: str) -> None:
    kinds = [kind for kind in _KINDS if getattr(entry, kind) is not None]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        raise ConfigurationError(
            f"{where} {key!r}: set exactly one of {', '.join(_KINDS)} (found: {found})"
        )
    price = getattr(entry, kinds[0])
    if not math.isfinite(price) or price < 0:
        raise ConfigurationError(f"{where} {key!r}: {kinds[0]} must be >= 0, got {price!r}")
    if entry.documents_per_query is not None:
        if entry.per_thousand_queries is None:
            raise ConfigurationError(
                f"{where} {key!r}: documents_per_query applies only to per_thousand_queries"
            )
        if entry.documents_per_query < 1:
            raise ConfigurationError(
                f"{where} {key!r}: documents_per_query must be >= 1, "
                f"got {entry.documents_per_query!r}"
            )
    if entry.per_million_tokens is None and entry.tokens != "total":
        raise ConfigurationError(f"{where} {key!r}: tokens applies only to per_million_tokens")
