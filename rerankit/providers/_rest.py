"""The shared adapter for JSON-over-POST rerank APIs: one class, and a small table per vendor.

A vendor whose API takes a query and a list of documents and answers a list of
``{index, score}`` items is described by a ``RestVendor`` (route, field names, where the results
sit, which score field) and a ``RestProvider`` subclass that sets its name, environment variables
and that table. Quirks beyond the table live in overridden hooks (``wire_model``, ``url``,
``body``, ``parse``), never in copies of the adapter.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import msgspec

from rerankit._errors import ResponseValidationError
from rerankit._offload import in_thread
from rerankit._types import RerankRequest, RerankResponse, RerankResult, Usage
from rerankit.providers._base import ModelCapabilities, Provider, ProviderContext

if TYPE_CHECKING:
    from rerankit._http import HTTPResponse

__all__ = [
    "Envelope",
    "RestProvider",
    "RestVendor",
    "ResultItem",
    "UsageFields",
    "join_route",
    "usage_from",
]

ANSWER_INLINE_BYTES = 1 << 20
"""Answers parsed inline: ~3.6 ns a byte (100,000 results, ~5 MB, take ~18 ms), so ~4 ms at
most; larger answers are parsed on a worker thread."""


@functools.lru_cache(maxsize=256)
def join_route(
    base: str, route: str, *, complete: tuple[str, ...] = (), strip: tuple[str, ...] = ()
) -> str:
    """The URL for ``route`` under ``base``, which may already hold some or all of the route.

    A base ending in the route's last segment (or in one of ``complete``) is the full URL. A base
    ending in a leading part of the route gets only the rest, so with route ``/v1/rerank`` both
    ``https://host`` and ``https://host/v1`` give ``https://host/v1/rerank``. ``strip`` lists
    suffixes removed from the base first. Answers are cached: a client asks the same on every call.
    """
    base = base.rstrip("/")
    for suffix in strip:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    last = route[route.rindex("/") :]
    if base.endswith((last, *complete)):
        return base
    segments = route.strip("/").split("/")
    for end in range(len(segments) - 1, 0, -1):
        for start in range(end):
            if base.endswith("/" + "/".join(segments[start:end])):
                return f"{base}/{'/'.join(segments[end:])}"
    return base + route


class RestVendor(msgspec.Struct, frozen=True, kw_only=True):
    """The wire table of one JSON rerank API.

    Request: ``documents`` is ``"text"`` (every document as its text), ``"native"`` (a caller's
    dicts sent as they are when ``rank_fields`` is given, with ``rank_fields_field``) or
    ``"objects"`` (like native, but strings wrapped as ``{"text": s}``). ``top_n_field=None``
    means the API has no cut-off and the client cuts. ``return_documents_field`` is always sent
    as ``false`` (documents are back-filled from the request). ``wire_parameters`` maps the
    optional rerankit parameters the API takes to its field names; ``extras`` are provider-only
    options copied into the body as given.

    Response: the result list sits under the first of ``results_fields`` present (``""``: the
    body is the list); the score is the first of ``score_fields`` present.
    ``logit_option`` names an option and the value that makes scores raw logits.
    """

    route: str
    default_base: str | None = None
    complete: tuple[str, ...] = ()
    strip: tuple[str, ...] = ()
    model_field: str | None = "model"
    query_field: str = "query"
    documents_field: str = "documents"
    documents: Literal["text", "native", "objects"] = "text"
    rank_fields_field: str | None = None
    top_n_field: str | None = "top_n"
    return_documents_field: str | None = "return_documents"
    wire_parameters: dict[str, str] = msgspec.field(default_factory=dict)
    extras: tuple[str, ...] = ()
    results_fields: tuple[str, ...] = ("results",)
    score_fields: tuple[str, ...] = ("relevance_score",)
    logit_option: tuple[str, Any] | None = None
    default: ModelCapabilities = ModelCapabilities()
    models: dict[str, ModelCapabilities] = msgspec.field(default_factory=dict)


class ResultItem(msgspec.Struct):
    index: int | None = None
    relevance_score: float | None = None
    score: float | None = None
    logit: float | None = None
    relevanceScore: float | None = None


class BilledUnits(msgspec.Struct):
    search_units: float | None = None
    total_tokens: float | None = None


class TokenFields(msgspec.Struct):
    input_tokens: float | None = None
    output_tokens: float | None = None


class MetaFields(msgspec.Struct):
    billed_units: BilledUnits | None = None
    tokens: TokenFields | None = None


class UsageFields(msgspec.Struct):
    prompt_tokens: float | None = None
    input_tokens: float | None = None
    total_tokens: float | None = None
    rerank_units: float | None = None
    search_units: float | None = None


class Envelope(msgspec.Struct):
    id: str | int | None = None
    request_id: str | None = None
    results: list[ResultItem] | None = None
    data: list[ResultItem] | None = None
    rankings: list[ResultItem] | None = None
    meta: MetaFields | None = None
    usage: UsageFields | None = None
    tokens: TokenFields | None = None
    total_tokens: float | None = None


_Answer = list[ResultItem] | Envelope


class _ResultsEnvelope(Envelope):
    results: list[RerankResult] | None = None  # type: ignore[assignment]


class _DataEnvelope(Envelope):
    data: list[RerankResult] | None = None  # type: ignore[assignment]


_TYPED_ENVELOPES: dict[str, type[Envelope]] = {"results": _ResultsEnvelope, "data": _DataEnvelope}


def _typed_answer(vendor: RestVendor) -> tuple[msgspec.json.Decoder[Envelope], str] | None:
    """A decoder reading ``vendor``'s usual answer (the first result field, each item with
    ``index`` and ``relevance_score``) straight into ``RerankResult``s, and that field."""
    field = vendor.results_fields[0]
    envelope = _TYPED_ENVELOPES.get(field)
    if envelope is None or vendor.score_fields[:1] != ("relevance_score",):
        return None
    return msgspec.json.Decoder(envelope), field


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _first(*values: float | None) -> int | None:
    for value in values:
        if value is not None:
            return int(value)
    return None


def usage_from(envelope: Envelope) -> Usage:
    """Usage from whichever documented fields the answer carries; the rest stays ``None``."""
    meta, usage, tokens = envelope.meta, envelope.usage, envelope.tokens
    billed = meta.billed_units if meta else None
    meta_tokens = meta.tokens if meta else None
    total_from_parts = None
    if tokens and tokens.input_tokens is not None and tokens.output_tokens is not None:
        total_from_parts = tokens.input_tokens + tokens.output_tokens
    return Usage(
        search_units=_first(
            billed.search_units if billed else None,
            usage.rerank_units if usage else None,
            usage.search_units if usage else None,
        ),
        input_tokens=_first(
            meta_tokens.input_tokens if meta_tokens else None,
            usage.prompt_tokens if usage else None,
            usage.input_tokens if usage else None,
            tokens.input_tokens if tokens else None,
        ),
        total_tokens=_first(
            billed.total_tokens if billed else None,
            usage.total_tokens if usage else None,
            envelope.total_tokens,
            total_from_parts,
        ),
    )


class RestProvider(Provider):
    """A provider driven by its ``vendor`` table; subclasses override hooks for their quirks."""

    vendor: ClassVar[RestVendor]
    _typed_answer: ClassVar[tuple[msgspec.json.Decoder[Envelope], str] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        vendor = cls.__dict__.get("vendor")
        if vendor is not None:
            if vendor.default_base and cls.default_api_base is None:
                cls.default_api_base = vendor.default_base
            cls.options = cls.options | frozenset(vendor.extras)
            cls._typed_answer = _typed_answer(vendor)

    def capabilities(self, model: str) -> ModelCapabilities:
        return self.vendor.models.get(model, self.vendor.default)

    def model_table(self) -> Mapping[str, ModelCapabilities]:
        return self.vendor.models

    def wire_model(self, model: str) -> str:
        """The model name as the API expects it."""
        return model

    def url(self, request: RerankRequest, ctx: ProviderContext) -> str:
        """The endpoint, from the configured base and the vendor's route."""
        base = ctx.api_base or self.vendor.default_base or ""
        return join_route(
            base, self.vendor.route, complete=self.vendor.complete, strip=self.vendor.strip
        )

    def headers(self, ctx: ProviderContext) -> dict[str, str]:
        """Request headers: JSON, plus a bearer token when a key is set."""
        return ctx.bearer_headers()

    def documents(self, request: RerankRequest) -> list[Any]:
        """The documents as the API takes them."""
        form = self.vendor.documents
        if form == "text" or request.source_documents is None or request.rank_fields is None:
            if form == "objects":
                return [{"text": text} for text in request.documents]
            return request.documents
        if form == "objects":
            return [{"text": d} if isinstance(d, str) else d for d in request.source_documents]
        return request.source_documents

    def body(self, request: RerankRequest, ctx: ProviderContext) -> dict[str, Any]:
        """The JSON body for one request."""
        vendor = self.vendor
        body: dict[str, Any] = {}
        if vendor.model_field:
            body[vendor.model_field] = self.wire_model(request.model)
        body[vendor.query_field] = request.query
        body[vendor.documents_field] = self.documents(request)
        if vendor.top_n_field and request.top_n is not None:
            body[vendor.top_n_field] = request.top_n
        if vendor.return_documents_field:
            body[vendor.return_documents_field] = False
        if (
            vendor.rank_fields_field
            and vendor.documents != "text"
            and request.rank_fields is not None
            and request.source_documents is not None
        ):
            body[vendor.rank_fields_field] = request.rank_fields
        for parameter, field in vendor.wire_parameters.items():
            value = getattr(request, parameter)
            if value is not None:
                body[field] = value
        for extra in vendor.extras:
            if extra in request.options:
                body[extra] = request.options[extra]
        return body

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        answer = await ctx.post(self.url(request, ctx), self.body(request, ctx), self.headers(ctx))
        if len(answer.body) <= ANSWER_INLINE_BYTES:
            return self.parse(answer, request, ctx)
        return await in_thread(self.parse, answer, request, ctx)

    def parse(
        self, answer: HTTPResponse, request: RerankRequest, ctx: ProviderContext
    ) -> RerankResponse:
        """Results, id and usage from the answer's body."""
        typed = self._typed_answer
        if typed is not None:  # the usual answer, decoded straight into RerankResult
            decoder, field = typed
            try:
                envelope: Envelope = decoder.decode(answer.body)
            except msgspec.DecodeError:
                pass  # something unusual: the lenient path below reads it, or names the problem
            else:
                results = getattr(envelope, field)
                if results is not None:
                    return self._response(answer, request, envelope, results)
        decoded: list[ResultItem] | Envelope = ctx.decode(answer.body, _Answer)  # type: ignore[arg-type]
        if isinstance(decoded, list):
            if "" not in self.vendor.results_fields:
                raise ResponseValidationError(
                    f"{ctx.provider} answered a bare JSON array where it documents an object "
                    f"(model {ctx.model!r})",
                    provider=ctx.provider,
                    model=ctx.model,
                )
            envelope, items = Envelope(), decoded
        else:
            envelope, items = decoded, self._items(decoded, ctx)
        return self._response(answer, request, envelope, self._results(items, ctx))

    def _response(
        self,
        answer: HTTPResponse,
        request: RerankRequest,
        envelope: Envelope,
        results: list[RerankResult],
    ) -> RerankResponse:
        score_kind = "unknown"
        option = self.vendor.logit_option
        if option is not None and request.options.get(option[0], None) == option[1]:
            score_kind = "logit"
        return RerankResponse(
            results=results,
            id=None if envelope.id is None else str(envelope.id),
            usage=usage_from(envelope),
            score_kind=score_kind,  # type: ignore[arg-type]
            provider_meta=self.provider_meta(answer, envelope),
        )

    def provider_meta(self, answer: HTTPResponse, envelope: Envelope) -> dict[str, Any]:
        """Vendor figures worth keeping that are not usage (none by default)."""
        return {}

    def _items(self, envelope: Envelope, ctx: ProviderContext) -> list[ResultItem]:
        for field in self.vendor.results_fields:
            items = getattr(envelope, field) if field else None
            if items is not None:
                return items  # type: ignore[no-any-return]
        raise ResponseValidationError(
            f"{ctx.provider} answered without a result list "
            f"(looked for {', '.join(repr(f) for f in self.vendor.results_fields)}) "
            f"for model {ctx.model!r}",
            provider=ctx.provider,
            model=ctx.model,
            request_id=envelope.request_id,
        )

    def _results(self, items: list[ResultItem], ctx: ProviderContext) -> list[RerankResult]:
        fields = self.vendor.score_fields
        if len(fields) == 1:
            score = attrgetter(fields[0])
            results = [RerankResult(item.index, score(item)) for item in items]  # type: ignore[arg-type]
        else:
            results = [RerankResult(item.index, _first_score(item, fields)) for item in items]  # type: ignore[arg-type]
        if None in map(_index, results) or None in map(_score, results):
            for result, item in zip(results, items, strict=True):
                if result.index is None or result.relevance_score is None:
                    missing = "index" if item.index is None else " or ".join(fields)
                    raise ResponseValidationError(
                        f"{ctx.provider} sent a result without {missing} for model "
                        f"{ctx.model!r}: {msgspec.json.encode(item).decode()}",
                        provider=ctx.provider,
                        model=ctx.model,
                    )
        return results


_index = attrgetter("index")
_score = attrgetter("relevance_score")


def _first_score(item: ResultItem, fields: tuple[str, ...]) -> float | None:
    for field in fields:
        score: float | None = getattr(item, field)
        if score is not None:
            return score
    return None
