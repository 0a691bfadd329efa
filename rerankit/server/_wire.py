"""Cohere's rerank wire format, as a server: v1 and v2 requests in, responses and errors out.

v1 (also what Jina-style clients send): documents are strings or objects, with ``rank_fields``,
``return_documents`` (default false) and ``max_chunks_per_doc``. v2: strings only, with
``max_tokens_per_doc``; results never carry documents.
"""

from __future__ import annotations

import math
import os
from typing import Annotated, Any

import msgspec

from rerankit._types import RerankResponse, RerankResult

__all__ = [
    "DECODE_INLINE_BYTES",
    "RerankCall",
    "RequestError",
    "decode_v1",
    "decode_v2",
    "encode_error",
    "encode_models",
    "encode_response",
    "new_request_id",
]

DECODE_INLINE_BYTES = 1 << 19
"""Request bodies decoded inline: ~1 ns a byte of raw UTF-8 to ~8 ns of ``\\u`` escapes or
short documents, so ~4 ms at most; larger bodies are decoded on a worker thread."""

_PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class RequestError(Exception):
    """A request the server answers with an error: HTTP ``status`` and Cohere's ``message``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class _RelevantSpans(msgspec.Struct):
    mode: str


class _V1Request(msgspec.Struct, forbid_unknown_fields=True):
    query: _NonEmpty
    documents: Annotated[list[str | dict[str, Any]], msgspec.Meta(min_length=1)]
    model: str | None = None
    top_n: _PositiveInt | None = None
    rank_fields: list[str] | None = None
    return_documents: bool = False
    max_chunks_per_doc: _PositiveInt | None = None


class _V2Request(msgspec.Struct, forbid_unknown_fields=True):
    model: str
    query: _NonEmpty
    documents: Annotated[list[str], msgspec.Meta(min_length=1)]
    top_n: _PositiveInt | None = None
    max_tokens_per_doc: _PositiveInt | None = None
    priority: int | None = None
    """A scheduling hint for Cohere's own queue; accepted and ignored."""
    relevant_spans: _RelevantSpans | None = None


class RerankCall(msgspec.Struct):
    """One request, whichever version it came in as."""

    version: str
    model: str | None
    query: str
    documents: list[str | dict[str, Any]]
    top_n: int | None
    rank_fields: list[str] | None
    return_documents: bool
    max_chunks_per_doc: int | None
    max_tokens_per_doc: int | None


REMOTE_IMAGES = ("http://", "https://", "data:")
"""The image forms a server takes from its callers (never a path on the server's disk)."""

_v1 = msgspec.json.Decoder(_V1Request)
_v2 = msgspec.json.Decoder(_V2Request)


def decode_v1(body: bytes) -> RerankCall:
    """A v1 (or Jina-style) request body; ``RequestError`` 400 with the reason if invalid."""
    request = _decode(_v1, body)
    _check_remote_images(request.documents)
    return RerankCall(
        "1",
        request.model,
        request.query,
        request.documents,
        request.top_n,
        request.rank_fields,
        request.return_documents,
        request.max_chunks_per_doc,
        None,
    )


def decode_v2(body: bytes) -> RerankCall:
    """A v2 request body; ``RequestError`` 400 with the reason if invalid."""
    request = _decode(_v2, body)
    spans = request.relevant_spans
    if spans is not None and spans.mode != "disabled":
        raise RequestError(400, "invalid request: relevant_spans is not supported by this server")
    documents: list[str | dict[str, Any]] = list(request.documents)
    return RerankCall(
        "2",
        request.model,
        request.query,
        documents,
        request.top_n,
        None,
        False,
        None,
        request.max_tokens_per_doc,
    )


def _check_remote_images(documents: list[str | dict[str, Any]]) -> None:
    """A caller's image is an http(s) URL or a ``data:`` URL: the server reads no files."""
    for position, doc in enumerate(documents):
        if type(doc) is dict and "image" in doc:
            image = doc["image"]
            if not isinstance(image, str) or not image.startswith(REMOTE_IMAGES):
                raise RequestError(
                    400,
                    f"invalid request: documents[{position}].image must be an http(s) URL or "
                    "a data: URL; this server reads no files",
                )


def _decode(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    if not body:
        raise RequestError(400, "invalid request: the body is empty; send a JSON object")
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError included
        message = str(exc).replace("Object contains unknown field", "unknown field")
        raise RequestError(400, f"invalid request: {message}") from None


class _Version(msgspec.Struct):
    version: str


class _BilledUnits(msgspec.Struct):
    search_units: int


class _Meta(msgspec.Struct):
    api_version: _Version
    billed_units: _BilledUnits


class _Body(msgspec.Struct):
    id: str
    results: list[RerankResult]
    meta: _Meta


_VERSIONS = {"1": _Version("1"), "2": _Version("2")}
_encoder = msgspec.json.Encoder()


def encode_response(call: RerankCall, response: RerankResponse, response_id: str) -> bytes:
    """Cohere's response: ``{id, results: [{index, relevance_score, document?}], meta}``.

    ``search_units`` is the upstream's figure when it reported one, else Cohere's rule: one
    unit per 100 documents.
    """
    units = response.usage.search_units
    if units is None:
        units = max(1, math.ceil(len(call.documents) / 100))
    meta = _Meta(_VERSIONS[call.version], _BilledUnits(units))
    return _encoder.encode(_Body(response_id, response.results, meta))


def new_request_id() -> str:
    """A random UUID (version 4) as text, without ``uuid.uuid4()``'s per-call object cost: the
    id of one request, in its answer and in the server log."""
    hexa = os.urandom(16).hex()
    variant = "89ab"[int(hexa[16], 16) & 3]
    return f"{hexa[:8]}-{hexa[8:12]}-4{hexa[13:16]}-{variant}{hexa[17:20]}-{hexa[20:]}"


def encode_error(message: str) -> bytes:
    """Cohere's error shape: ``{"message": "..."}``."""
    return _encoder.encode({"message": message})


def encode_models(names: list[str]) -> bytes:
    """``GET /v1/models`` in Cohere's shape."""
    models = [{"name": name, "endpoints": ["rerank"], "finetuned": False} for name in names]
    return _encoder.encode({"models": models})
