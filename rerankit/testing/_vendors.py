"""Fake rerank APIs of Voyage, Mixedbread, Pinecone, ZeroEntropy, Contextual, TEI, DeepInfra, NIM.

Each checks path, auth and body fields like the real API, rejects what it rejects, and answers
in the vendor's documented response shape. The five "close to Cohere" APIs are presets of
``TableFake``: a query, a list of documents and a cut-off in, a list of ``{index, score}`` out,
differing only in field names, limits and the extra figures they report.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from rerankit.testing._images import image_words, png_jpeg_data_url
from rerankit.testing._server import ReceivedRequest, Reply
from rerankit.testing._table import COHERE_FIELDS, TableFake
from rerankit.testing._vendor import FakeVendor, fake_logit, fake_pair_tokens, fake_tokens

__all__ = [
    "ContextualFake",
    "DeepInfraFake",
    "MixedbreadFake",
    "NvidiaNIMFake",
    "PineconeFake",
    "TEIFake",
    "TableFake",
    "VoyageFake",
    "ZeroEntropyFake",
    "fake_logit",
    "fake_tokens",
]


class VoyageFake(TableFake):
    """Voyage AI ``POST /v1/rerank``: string documents, ``top_k``, answers under ``data``."""

    paths = ("/v1/rerank",)
    fields = frozenset({"query", "documents", "model", "top_k", "return_documents", "truncation"})
    max_documents = 1_000
    top_field = "top_k"
    results_key = "data"
    echo = "as_sent"
    error_key = "detail"

    def check(self, body: Any, request: ReceivedRequest) -> None:
        truncation = body.get("truncation")
        self.require(truncation is None or isinstance(truncation, bool), "truncation must be bool")

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "object": "list",
            "model": body["model"],
            "usage": {"total_tokens": self.tokens(body)},
        }


class MixedbreadFake(TableFake):
    """Mixedbread ``POST /v1/reranking``: ``input`` (strings or objects), ``rank_fields``."""

    paths = ("/v1/reranking",)
    fields = frozenset(
        {"model", "query", "input", "rank_fields", "top_k", "return_input", "rewrite_query"}
    )
    documents_field = "input"
    document_kinds = "either"
    max_documents = 1_000
    top_field = "top_k"
    return_field = "return_input"
    results_key = "data"
    score_key = "score"
    document_key = "input"
    echo = "as_sent"

    def check(self, body: Any, request: ReceivedRequest) -> None:
        self.require(len(body["query"]) <= 32_000, "query is longer than 32,000 characters")
        fields = body.get("rank_fields")
        self.require(
            fields is None
            or (isinstance(fields, list) and all(isinstance(f, str) for f in fields)),
            "rank_fields must be a list of strings",
        )

    def text(self, doc: Any, body: Any) -> str:
        if isinstance(doc, str):
            return doc
        fields = body.get("rank_fields") or list(doc)
        return " ".join(str(doc[f]) for f in fields if f in doc)

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        for result in results:
            result["object"] = "rank_result"
        tokens = self.tokens(body)
        return {
            "object": "list",
            "model": body["model"],
            "top_k": body.get("top_k", len(body["input"])),
            "return_input": body.get("return_input", False),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


class PineconeFake(TableFake):
    """Pinecone Inference ``POST /rerank``: ``Api-Key`` + version headers, object documents.

    Documents must be objects holding every ``rank_fields`` entry (default ``["text"]``);
    ``bge-reranker-v2-m3`` and ``pinecone-rerank-v0`` take one rank field only;
    ``return_documents`` defaults to true.
    """

    paths = ("/rerank",)
    fields = COHERE_FIELDS | {"rank_fields", "parameters"}
    document_kinds = "objects"
    max_documents = 1_000
    return_documents_default = True
    results_key = "data"
    score_key = "score"
    single_field_models: ClassVar[frozenset[str]] = frozenset(
        {"bge-reranker-v2-m3", "pinecone-rerank-v0"}
    )

    def auth(self, request: ReceivedRequest) -> bool:
        if "authorization" in request.headers:
            return False
        return request.headers.get("api-key") == self.api_key

    def __call__(self, request: ReceivedRequest) -> Reply:
        if self.route_ok(request) and "x-pinecone-api-version" not in request.headers:
            return self.error(400, "missing required header X-Pinecone-Api-Version")
        return super().__call__(request)

    def check(self, body: Any, request: ReceivedRequest) -> None:
        fields = body.get("rank_fields", ["text"])
        self.require(
            isinstance(fields, list) and bool(fields) and all(isinstance(f, str) for f in fields),
            "rank_fields must be a non-empty list of strings",
        )
        if body["model"] in self.single_field_models:
            self.require(len(fields) == 1, f"{body['model']} supports only one rank field")
        for position, doc in enumerate(body["documents"]):
            for field in fields:
                self.require(field in doc, f"document {position} is missing field {field!r}")
        parameters = body.get("parameters")
        self.require(parameters is None or isinstance(parameters, dict), "bad parameters")

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        return {"model": body["model"], "usage": {"rerank_units": 1}}

    def error(self, status: int, message: str) -> Reply:
        code = "INVALID_ARGUMENT" if status == 400 else "UNAUTHENTICATED"
        return Reply(
            status=status, body={"error": {"code": code, "message": message}, "status": status}
        )


class ZeroEntropyFake(TableFake):
    """ZeroEntropy ``POST /v1/models/rerank``: byte budget, ``latency``, figures beside results."""

    paths = ("/v1/models/rerank",)
    fields = frozenset({"model", "query", "documents", "top_n", "latency"})
    max_documents = 1_000_000
    return_field = None
    error_key = "detail"
    max_bytes = 5_000_000

    def __init__(self, api_key: str | None = "test-key", *, latency_mode: str = "fast") -> None:
        super().__init__(api_key)
        self.latency_mode = latency_mode

    def request_bytes(self, body: Any) -> int:
        query = len(body["query"].encode())
        return sum(150 + query + len(doc.encode()) for doc in body["documents"])

    def check(self, body: Any, request: ReceivedRequest) -> None:
        latency = body.get("latency")
        self.require(latency in (None, "fast", "slow"), "latency must be 'fast' or 'slow'")
        self.require(
            self.request_bytes(body) <= self.max_bytes,
            f"the request is larger than {self.max_bytes} bytes",
        )

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "total_bytes": self.request_bytes(body),
            "total_tokens": self.tokens(body),
            "actual_latency_mode": body.get("latency") or self.latency_mode,
            "e2e_latency": 0.05,
            "inference_latency": 0.04,
        }


class ContextualFake(TableFake):
    """Contextual AI ``POST /v1/rerank``: strings, ``instruction``, per-document ``metadata``."""

    paths = ("/v1/rerank",)
    fields = frozenset({"query", "documents", "model", "top_n", "instruction", "metadata"})
    max_documents = 1_000
    return_field = None
    error_key = "detail"

    def check(self, body: Any, request: ReceivedRequest) -> None:
        instruction = body.get("instruction")
        self.require(instruction is None or isinstance(instruction, str), "bad instruction")
        metadata = body.get("metadata")
        self.require(
            metadata is None
            or (
                isinstance(metadata, list)
                and len(metadata) == len(body["documents"])
                and all(isinstance(m, str) for m in metadata)
            ),
            "metadata must be a list of strings, one per document",
        )


class TEIFake(FakeVendor):
    """A Text Embeddings Inference server's ``POST /rerank``: a bare JSON array answer.

    It rejects more than ``max_client_batch_size`` texts (422, TEI's validation error) and any
    field TEI's ``RerankRequest`` lacks (``model``, ``top_n``: catching what TEI would silently
    ignore). ``raw_scores`` answers logits; the ``x-compute-tokens`` header carries the tokens.
    Without a key (the default) it expects no ``Authorization`` header.
    """

    paths = ("/rerank",)
    error_status = 422
    _FIELDS = frozenset(
        {"query", "texts", "return_text", "raw_scores", "truncate", "truncation_direction"}
    )

    def __init__(self, api_key: str | None = None, *, max_client_batch_size: int = 32) -> None:
        super().__init__(api_key)
        self.max_client_batch_size = max_client_batch_size

    def route_ok(self, request: ReceivedRequest) -> bool:
        return request.path.endswith("/rerank")

    def __call__(self, request: ReceivedRequest) -> Reply:
        reply = super().__call__(request)
        if reply.status == 200:
            body = request.json()
            tokens = fake_pair_tokens(body["query"], body["texts"])
            reply.headers["x-compute-tokens"] = str(tokens)
        return reply

    def extract(self, body: Any, request: ReceivedRequest) -> tuple[str, list[str], int | None]:
        self.require_known(body, self._FIELDS)
        self.require(isinstance(body.get("query"), str), "query must be a string")
        texts = body.get("texts")
        self.require(
            isinstance(texts, list) and bool(texts) and all(isinstance(t, str) for t in texts),
            "texts must be a non-empty list of strings",
        )
        self.require(
            len(texts) <= self.max_client_batch_size,
            f"batch size {len(texts)} > maximum allowed batch size {self.max_client_batch_size}",
        )
        for flag in ("return_text", "raw_scores", "truncate"):
            self.require(flag not in body or isinstance(body[flag], bool), f"{flag} must be bool")
        direction = body.get("truncation_direction")
        self.require(direction in (None, "Left", "Right"), "bad truncation_direction")
        return body["query"], texts, None

    def answer(
        self, scores: list[float], top_n: int | None, body: Any, request: ReceivedRequest
    ) -> Any:
        ranked: list[dict[str, Any]] = []
        for index, score in self.ranked(scores, None):
            item: dict[str, Any] = {
                "index": index,
                "score": fake_logit(score) if body.get("raw_scores") else score,
            }
            if body.get("return_text"):
                item["text"] = body["texts"][index]
            ranked.append(item)
        return ranked

    def error(self, status: int, message: str) -> Reply:
        return Reply(status=status, body={"error": message, "error_type": "Validation"})


class DeepInfraFake(FakeVendor):
    """DeepInfra ``POST /v1/inference/{model}``: ``queries`` paired with ``documents``.

    Answers every score in input order (unsorted, uncut) with ``input_tokens``, a
    ``request_id`` and ``inference_status``. Only Qwen3-Reranker models accept an
    ``instruction``. The fake scores one query, so it expects the same query in every
    ``queries`` entry (as rerankit sends it).
    """

    error_status = 422
    id_prefix = "di-"
    _FIELDS = frozenset({"queries", "documents", "instruction", "service_tier", "webhook"})

    def __init__(self, api_key: str | None = "test-key", *, cost: float = 0.0001) -> None:
        super().__init__(api_key)
        self.cost = cost

    def route_ok(self, request: ReceivedRequest) -> bool:
        return request.path.startswith("/v1/inference/") and len(request.path) > 14

    def model(self, request: ReceivedRequest) -> str:
        return request.path[len("/v1/inference/") :]

    def extract(self, body: Any, request: ReceivedRequest) -> tuple[str, list[str], int | None]:
        self.require_known(body, self._FIELDS)
        queries, docs = body.get("queries"), body.get("documents")
        self.require(
            isinstance(docs, list) and bool(docs) and all(isinstance(d, str) for d in docs),
            "documents must be a non-empty list of strings",
        )
        self.require(
            isinstance(queries, list) and all(isinstance(q, str) for q in queries),
            "queries must be a list of strings",
        )
        self.require(len(queries) == len(docs), "queries and documents must be the same length")
        self.require(len(set(queries)) == 1, "the fake expects one query, repeated")
        if "instruction" in body:
            self.require(isinstance(body["instruction"], str), "instruction must be a string")
            self.require(
                "Qwen3-Reranker" in self.model(request),
                f"{self.model(request)} takes no instruction",
            )
        return queries[0], docs, None

    def answer(
        self, scores: list[float], top_n: int | None, body: Any, request: ReceivedRequest
    ) -> Any:
        tokens = fake_tokens(*body["queries"], *body["documents"])
        return {
            "scores": scores,
            "input_tokens": tokens,
            "request_id": self.next_id(),
            "inference_status": {
                "status": "succeeded",
                "runtime_ms": 12,
                "cost": self.cost,
                "tokens_input": tokens,
                "tokens_generated": 0,
            },
        }

    def error(self, status: int, message: str) -> Reply:
        return Reply(status=status, body={"detail": {"error": message}})


class NvidiaNIMFake(FakeVendor):
    """NVIDIA NIM: ``/v1/retrieval/{model}/reranking`` (hosted) and ``/v1/ranking`` (NIMs).

    The retrieval route's path writes the model with ``_`` where the body has ``.``; the body
    must name the same model. ``/v1/ranking`` rejects ``top_k``. Answers ``rankings`` sorted by
    logit (``fake_logit`` of the overlap score), with ``usage`` when ``usage=True``. Without a
    key it expects no ``Authorization`` header (a self-hosted NIM).
    """

    _FIELDS = frozenset({"model", "query", "passages", "truncate", "top_k"})
    image_models = frozenset(
        {"nvidia/llama-nemotron-rerank-vl-1b-v2", "nvidia/Nemotron-3.5-Rerank-8B-BF16"}
    )
    error_status = 422
    error_key = "detail"

    def __init__(self, api_key: str | None = None, *, usage: bool = True) -> None:
        super().__init__(api_key)
        self.usage = usage

    def route_ok(self, request: ReceivedRequest) -> bool:
        path = request.path
        return path == "/v1/ranking" or (
            path.startswith("/v1/retrieval/") and path.endswith("/reranking")
        )

    def extract(self, body: Any, request: ReceivedRequest) -> tuple[str, list[str], int | None]:
        self.require_known(body, self._FIELDS)
        model = body.get("model")
        self.require(isinstance(model, str) and bool(model), "model is required")
        if request.path.startswith("/v1/retrieval/"):
            in_path = request.path[len("/v1/retrieval/") : -len("/reranking")]
            self.require("." not in in_path, f"the URL path writes '.' as '_': {in_path}")
            self.require(
                model.replace(".", "_") == in_path,
                f"body model {model!r} does not match the path model {in_path!r}",
            )
        else:
            self.require("top_k" not in body, "top_k is not a field of /v1/ranking")
        self.require(not re.search(r"\d_\d", model), f"the body writes versions with '.': {model}")
        query = body.get("query")
        self.require(
            isinstance(query, dict) and isinstance(query.get("text"), str), "query must be {text}"
        )
        passages = body.get("passages")
        self.require(
            isinstance(passages, list) and 0 < len(passages) <= 512,
            "passages must be a list of 1 to 512 passages",
        )
        self.require(body.get("truncate") in (None, "NONE", "END"), "truncate must be NONE or END")
        top_k = body.get("top_k")
        return query["text"], [self._passage(p, model) for p in passages], top_k

    def _passage(self, passage: Any, model: str) -> str:
        """A passage's text as scored: ``{text}``, or for ``image_models`` ``{image}`` (a PNG or
        JPEG data URL, scored on its bytes read as Latin-1) with or without a non-empty text."""
        self.require(isinstance(passage, dict), "each passage must be an object")
        self.require_known(passage, frozenset({"text", "image"}))
        text = passage.get("text")
        if "image" not in passage:
            self.require(isinstance(text, str), "each passage must have text or image")
            return str(text)
        self.require(model in self.image_models, f"model {model} does not take images")
        self.require(
            text is None or (isinstance(text, str) and bool(text)),
            "an image-only passage omits text (no empty string)",
        )
        data = png_jpeg_data_url(passage["image"], "passage image")
        return (text or "") + " " + image_words(data)

    def answer(
        self, scores: list[float], top_n: int | None, body: Any, request: ReceivedRequest
    ) -> Any:
        rankings = [{"index": i, "logit": fake_logit(s)} for i, s in self.ranked(scores, top_n)]
        answer: dict[str, Any] = {"rankings": rankings}
        if self.usage:
            texts = [p.get("text", "") for p in body["passages"]]
            answer["usage"] = {"total_tokens": fake_pair_tokens(body["query"]["text"], texts)}
        return answer
