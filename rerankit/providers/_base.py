"""The public provider interface: ``Provider``, ``ProviderContext`` and ``ModelCapabilities``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import msgspec

from rerankit._errors import (
    ConfigurationError,
    RerankitWarning,
    ResponseValidationError,
    UnsupportedParameterError,
)
from rerankit._images import ImageInput
from rerankit._redact import mask, masked_repr
from rerankit._sendable import bad_header, json_problem
from rerankit._types import RerankRequest, RerankResponse, ScoreKind

if TYPE_CHECKING:
    from rerankit._http import HTTPResponse, Transport

__all__ = ["ModelCapabilities", "Provider", "ProviderContext"]

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}

OPTIONAL_PARAMETERS = ("instruction", "max_tokens_per_doc", "max_chunks_per_doc")
"""The optional request parameters a provider may send on the wire (``parameters``)."""


class ModelCapabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What one model of a provider accepts and returns.

    ``parameters`` lists which of ``instruction``, ``max_tokens_per_doc`` and
    ``max_chunks_per_doc`` the provider sends on. An ``instruction`` it does not take raises
    ``UnsupportedParameterError`` unless the caller passes ``drop_params=True``; the two others
    are emulated by rerankit's own chunking. ``top_n``, ``rank_fields`` and
    ``return_documents`` always work: the client emulates them.

    Limits (``None``: not documented): ``max_documents`` per request; ``max_tokens_per_doc``,
    the model's window for one document; ``max_query_tokens``; ``max_pair_tokens`` for the query
    plus one document; ``max_request_tokens``, a budget counted as
    ``query_tokens * n_docs + sum(doc_tokens)``; ``max_request_bytes``, a budget counted as
    ``sum(request_byte_overhead + bytes(query) + bytes(doc))`` in UTF-8.
    ``listwise`` models score documents against each other, so scores from separate requests
    are not comparable. ``images`` says how the model takes image documents (``None``: it
    takes none, and a call with one raises ``UnsupportedParameterError`` before any request).
    """

    max_documents: int | None = None
    max_tokens_per_doc: int | None = None
    max_query_tokens: int | None = None
    max_pair_tokens: int | None = None
    max_request_tokens: int | None = None
    max_request_bytes: int | None = None
    request_byte_overhead: int = 0
    score_kind: ScoreKind = "unknown"
    parameters: frozenset[str] = frozenset()
    structured_documents: bool = False
    listwise: bool = False
    images: ImageInput | None = None

    @property
    def has_limits(self) -> bool:
        """Whether any limit may need a call split into batches or chunks."""
        return (
            self.max_documents is not None
            or self.max_tokens_per_doc is not None
            or self.max_pair_tokens is not None
            or self.max_request_tokens is not None
            or self.max_request_bytes is not None
            or (self.images is not None and self.images.max_per_request is not None)
        )


class Provider:
    """Base class of every provider: translate a ``RerankRequest`` into one call, and back.

    Subclasses set ``name`` and implement ``rerank``. They never retry, sleep, batch or sort:
    the client does that for every provider. Results may come back in any order and
    ``top_n`` may be ignored; the client validates, sorts, cuts and back-fills documents.

    Class attributes the client reads:

    * ``api_key_env`` / ``api_base_env``: environment variables checked, in order, when the call
      and the client configuration give no key or base URL.
    * ``api_key_required``: whether a call without any key fails before it is sent.
    * ``default_api_base``: the base URL used when none is configured (``None``: required).
    * ``credential_chain``: where credentials come from when no key is given, for providers
      that read a cloud SDK's chain (``"the AWS credential chain"``); shown by ``check``.
    * ``api_key_refused``: for a provider that cannot use an API key, the error message when
      a call gives one (``None``: it takes one).
    * ``options``: provider-specific keyword arguments of ``rerank()`` this provider accepts;
      they arrive in ``request.options``; ``per_document_options`` names those that hold one
      value per document.
    """

    name: ClassVar[str]
    api_key_env: ClassVar[tuple[str, ...]] = ()
    api_key_required: ClassVar[bool] = False
    api_base_env: ClassVar[tuple[str, ...]] = ()
    default_api_base: ClassVar[str | None] = None
    api_base_required: ClassVar[bool] = False
    credential_chain: ClassVar[str | None] = None
    api_key_refused: ClassVar[str | None] = None
    api_base_default_scheme: ClassVar[str | None] = None
    """The scheme assumed for a base URL given without one (``None``: a base must name it)."""
    options: ClassVar[frozenset[str]] = frozenset()
    default_requests_per_minute: ClassVar[float | None] = None
    default_tokens_per_minute: ClassVar[float | None] = None
    """Published rate limits, applied per API key unless the client's settings say otherwise."""
    per_document_options: ClassVar[frozenset[str]] = frozenset()
    """Options holding one value per document (a list aligned with ``documents``): when a call
    is split into batches or chunks, each request gets the values of its own documents."""

    example_model: ClassVar[str] = ""
    """A model string for docs and examples, e.g. ``"cohere/rerank-v3.5"``."""
    sources: ClassVar[tuple[str, ...]] = ()
    """Where the wire format and limits were read: a URL and what it says, one per entry
    (listed in the generated provider docs)."""

    @classmethod
    def needs_api_key(cls, api_base: str | None) -> bool:
        """Whether calls to ``api_base`` (``None``: the default) need a key. The default is
        ``api_key_required``; a provider whose hosted API needs a key and self-hosted servers
        do not tells them apart here."""
        return cls.api_key_required

    def capabilities(self, model: str) -> ModelCapabilities:
        """Limits and supported parameters of ``model``; the default declares none."""
        return _NO_CAPABILITIES

    def model_table(self) -> Mapping[str, ModelCapabilities]:
        """The models whose capabilities the provider documents (for generated docs)."""
        return {}

    def native_parameters(self, request: RerankRequest, ctx: ProviderContext) -> frozenset[str]:
        """Which optional parameters this request sends on the wire (default: the model's
        declared ``parameters``). rerankit emulates ``max_tokens_per_doc`` and
        ``max_chunks_per_doc`` by chunking where the provider cannot apply them."""
        return self.capabilities(request.model).parameters

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        """Score ``request.documents`` against ``request.query``."""
        raise NotImplementedError


_NO_CAPABILITIES = ModelCapabilities()


class ProviderContext(msgspec.Struct, kw_only=True):
    """What a provider gets from the client for one call: credentials, endpoint and HTTP.

    ``api_key`` never appears in ``repr()`` or in any error rerankit raises. ``transport`` is
    how the client lends its connection pool (``post`` and ``post_bytes`` use it).
    """

    provider: str
    model: str
    api_key: str | None = None
    api_base: str | None = None
    timeout: float | None = None
    extra_body: Mapping[str, Any] | None = None
    extra_headers: Mapping[str, str] | None = None
    drop_params: bool = False
    transport: Callable[[], Transport] | None = None

    def __repr__(self) -> str:
        return masked_repr(self)

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        """The fields worth showing, the key masked (``repr`` and rich use this)."""
        return [
            ("provider", self.provider),
            ("model", self.model),
            ("api_key", mask(self.api_key)),
            ("api_base", self.api_base),
            ("timeout", self.timeout),
        ]

    def bearer_headers(self) -> dict[str, str]:
        """``Content-Type`` plus ``Authorization: Bearer <key>`` when a key is configured."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def unsupported(self, parameter: str, *, instead: str | None = None) -> None:
        """Refuse ``parameter``: raise, or warn and return when the caller set ``drop_params``."""
        message = f"{self.provider} does not support {parameter!r} for model {self.model!r}"
        if instead:
            message += f"; {instead}"
        if self.drop_params:
            warnings.warn(f"{message}; dropped it (drop_params=True)", RerankitWarning, 3)
            return
        raise UnsupportedParameterError(
            message + "; pass drop_params=True to drop it",
            provider=self.provider,
            model=self.model,
            parameter=parameter,
        )

    def post(
        self, url: str, payload: Any, headers: Mapping[str, str] | None = None
    ) -> Coroutine[Any, Any, HTTPResponse]:
        """POST ``payload`` (merged with ``extra_body``) as JSON; await it for the raw answer.

        Transport failures and non-2xx statuses raise the matching ``APIError``.
        """
        if self.extra_body:
            payload = {**payload, **self.extra_body}
        send_headers = self.bearer_headers() if headers is None else dict(headers)
        if self.extra_headers:
            send_headers.update(self.extra_headers)
        return self.post_bytes(url, self.encode(payload), send_headers)

    def encode(self, payload: Any) -> bytes:
        """``payload`` as JSON; a value JSON cannot hold (in ``extra_body`` or a provider option)
        raises ``ConfigurationError``."""
        try:
            return _encoder.encode(payload)
        except Exception:
            problem = json_problem(payload) or "it cannot be encoded"
        raise ConfigurationError(
            f"the request to {self.provider} (model {self.model!r}) cannot be sent as JSON: "
            f"{problem}; check extra_body and the provider options"
        )

    def post_bytes(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> Coroutine[Any, Any, HTTPResponse]:
        """POST ``body`` exactly as given, with exactly ``headers``; await it for the raw answer.

        Nothing is merged in: for requests that must not change once built (a signed request,
        whose provider applies ``extra_body`` and ``extra_headers`` before signing) and for
        bodies that are not JSON (a token-exchange form). Errors are raised as by ``post``.
        """
        if self.transport is None:
            raise RuntimeError("this ProviderContext has no HTTP transport")
        bad = bad_header(headers)
        if bad is not None:
            raise ConfigurationError(
                f"the {bad} header for {self.provider} is not a str or holds a line break or "
                "another control character (the value is not shown); check api_key, "
                "extra_headers and the provider options"
            )
        return self.transport().post(
            url,
            body,
            headers,
            timeout=self.timeout,
            provider=self.provider,
            model=self.model,
            secret=self.api_key,
        )

    async def post_json(
        self,
        url: str,
        payload: Any,
        response_type: type[T],
        headers: Mapping[str, str] | None = None,
    ) -> T:
        """POST ``payload`` and decode the answer as ``response_type`` (see ``decode``)."""
        response = await self.post(url, payload, headers)
        return self.decode(response.body, response_type)

    def decode(self, body: bytes, response_type: type[T]) -> T:
        """Decode a JSON body; a body that does not fit raises ``ResponseValidationError``."""
        decoder = _decoders.get(response_type)
        if decoder is None:
            decoder = _decoders[response_type] = msgspec.json.Decoder(response_type)
        try:
            return decoder.decode(body)  # type: ignore[no-any-return]
        except msgspec.DecodeError as exc:
            raise ResponseValidationError(
                f"{self.provider} sent a response rerankit cannot read "
                f"(model {self.model!r}): {exc}",
                provider=self.provider,
                model=self.model,
            ) from exc
