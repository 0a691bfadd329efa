"""Fakes of the cohere-compatible rerank APIs: one configurable fake, and a preset per vendor.

``CohereShapedFake`` is the Cohere v1 wire format with the details vendors vary as parameters
(accepted fields, where the results sit, the score field, whether documents are echoed by
default and how, object documents, a raw-score switch). Each vendor's fake sets those and adds
its own response envelope and checks.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, ClassVar, Literal

from rerankit.testing._server import ReceivedRequest
from rerankit.testing._vendor import BadRequest, FakeVendor

__all__ = [
    "CohereCompatibleFake",
    "CohereShapedFake",
    "FireworksFake",
    "InfinityFake",
    "JinaFake",
    "LiteLLMProxyFake",
    "SiliconFlowFake",
    "TogetherFake",
    "VLLMFake",
]

_WORD = re.compile(r"\w+")


def _tokens(text: str) -> int:
    return len(_WORD.findall(text))


class CohereShapedFake(FakeVendor):
    """A fake rerank API in the Cohere v1 shape, with the vendor-specific details as parameters.

    Class attributes (each also a keyword argument of the constructor):

    * ``paths``: the routes served.
    * ``fields``: the body fields accepted (any other is a 400); ``None`` ignores unknown fields,
      as vLLM and many self-hosted servers do.
    * ``object_documents``: dict documents are accepted, ranked on ``rank_fields`` (or ``text``).
    * ``text_objects``: ``{"text": ...}`` objects are accepted beside strings.
    * ``results_key``: where the result list goes (``""``: the answer is a bare array).
    * ``score_key``: the score field of each result.
    * ``return_documents_default``: whether documents are echoed when the request does not say.
    * ``echo``: how a document is echoed: ``"object"`` (``{"text": ...}`` or the dict) or
      ``"string"``.
    * ``raw_option``: a body field and the value that makes the fake answer raw logits.
    * ``max_documents``: the most documents one request may carry.

    With ``sort=False`` the fake answers every document in input order. ``tokens(body)`` is the
    fake's token count (words of the query per document plus words of the documents).
    """

    paths: tuple[str, ...] = ("/rerank",)
    fields: frozenset[str] | None = None
    object_documents: bool = False
    text_objects: bool = False
    results_key: str = "results"
    score_key: str = "relevance_score"
    return_documents_default: bool = False
    echo: Literal["object", "string"] = "object"
    raw_option: tuple[str, Any] | None = None
    max_documents: int | None = None

    _PARAMETERS: ClassVar[frozenset[str]] = frozenset(
        {
            "paths",
            "fields",
            "object_documents",
            "text_objects",
            "results_key",
            "score_key",
            "return_documents_default",
            "echo",
            "raw_option",
            "max_documents",
        }
    )

    def __init__(
        self, api_key: str | None = "test-key", *, sort: bool = True, **parameters: Any
    ) -> None:
        super().__init__(api_key)
        unknown = sorted(set(parameters) - self._PARAMETERS)
        if unknown:
            raise TypeError(f"unknown fake parameter {unknown[0]!r}")
        for key, value in parameters.items():
            setattr(self, key, value)
        self.sort = sort
        self._ids = itertools.count(1)

    def next_id(self) -> str:
        """A fresh response id."""
        return f"fake-{next(self._ids)}"

    def extract(self, body: Any, request: ReceivedRequest) -> tuple[str, list[str], int | None]:
        if self.fields is not None:
            unknown = sorted(set(body) - self.fields)
            self.require(not unknown, f"unknown field {unknown[0]!r}" if unknown else "")
        model = body.get("model")
        self.require(isinstance(model, str) and bool(model), "model is required")
        query = body.get("query")
        self.require(isinstance(query, str) and bool(query), "query is required")
        docs = body.get("documents")
        self.require(isinstance(docs, list) and bool(docs), "documents must be a non-empty list")
        self.require(
            self.max_documents is None or len(docs) <= self.max_documents,
            f"at most {self.max_documents} documents",
        )
        rank_fields = body.get("rank_fields")
        texts = [self._text(doc, rank_fields) for doc in docs]
        top_n = body.get("top_n")
        self.require(
            top_n is None or (type(top_n) is int and top_n >= 1), "top_n must be an int >= 1"
        )
        flag = body.get("return_documents")
        self.require(flag is None or isinstance(flag, bool), "return_documents must be a bool")
        self.check(body, request)
        return query, texts, top_n

    def _text(self, doc: Any, rank_fields: Any) -> str:
        if isinstance(doc, str):
            return doc
        if isinstance(doc, dict):
            if self.object_documents:
                return self.text_of(doc, rank_fields)
            if self.text_objects and set(doc) == {"text"} and isinstance(doc["text"], str):
                return doc["text"]
        raise BadRequest("documents must be strings")

    def check(self, body: Any, request: ReceivedRequest) -> None:
        """Vendor-specific checks on a request; raise ``BadRequest`` for what the API rejects."""

    def envelope(self, body: Any, tokens: int) -> dict[str, Any]:
        """The answer's fields beside the result list (ids, usage, model)."""
        return {}

    def tokens(self, body: Any) -> int:
        docs = body["documents"]
        query = _tokens(body["query"]) * len(docs)
        return query + sum(_tokens(d if isinstance(d, str) else str(d)) for d in docs)

    def answer(
        self, scores: list[float], top_n: int | None, body: Any, request: ReceivedRequest
    ) -> Any:
        option = self.raw_option
        if option is not None and body.get(option[0], None) == option[1]:
            scores = [score * 8 - 4 for score in scores]
        ranked = self.ranked(scores, top_n) if self.sort else list(enumerate(scores))
        echo = body.get("return_documents", self.return_documents_default)
        results: list[dict[str, Any]] = []
        for index, score in ranked:
            result: dict[str, Any] = {"index": index, self.score_key: score}
            if echo:
                doc = body["documents"][index]
                if self.echo == "string":
                    result["document"] = doc if isinstance(doc, str) else str(doc)
                else:
                    result["document"] = doc if isinstance(doc, dict) else {"text": doc}
            results.append(result)
        if not self.results_key:
            return results
        return {self.results_key: results, **self.envelope(body, self.tokens(body))}


class CohereCompatibleFake(CohereShapedFake):
    """A generic self-hosted Cohere-shaped server (``/rerank`` and ``/v1/rerank``).

    It ignores unknown fields, answers an ``id`` and ``usage: {prompt_tokens, total_tokens}``;
    set ``results_key`` (``"data"``, ``""``) and ``score_key`` (``"score"``) for the variants.
    """

    paths = ("/rerank", "/v1/rerank")

    def envelope(self, body: Any, tokens: int) -> dict[str, Any]:
        return {"id": self.next_id(), "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


class LiteLLMProxyFake(CohereShapedFake):
    """A LiteLLM proxy's rerank routes: the Cohere v1 shape plus ``max_tokens_per_doc`` and
    ``instruction``; usage in ``meta.billed_units`` and ``meta.tokens``."""

    paths = ("/v1/rerank", "/rerank", "/v2/rerank")
    fields = frozenset(
        {
            "model",
            "query",
            "documents",
            "top_n",
            "return_documents",
            "rank_fields",
            "max_chunks_per_doc",
            "max_tokens_per_doc",
            "instruction",
        }
    )
    object_documents = True

    def envelope(self, body: Any, tokens: int) -> dict[str, Any]:
        return {
            "id": self.next_id(),
            "meta": {
                "billed_units": {"search_units": 1, "total_tokens": tokens},
                "tokens": {"input_tokens": tokens, "output_tokens": 0},
            },
        }


class TogetherFake(CohereShapedFake):
    """Together AI's ``/v1/rerank``: string or object documents with ``rank_fields``; answers
    ``{object, id, model, results, usage: {prompt_tokens, completion_tokens, total_tokens}}``."""

    paths = ("/v1/rerank",)
    fields = frozenset({"model", "query", "documents", "top_n", "return_documents", "rank_fields"})
    object_documents = True

    def envelope(self, body: Any, tokens: int) -> dict[str, Any]:
        return {
            "object": "rerank",
            "id": self.next_id(),
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
        }


class JinaFake(CohereShapedFake):
    """Jina AI's ``/v1/rerank``: strings or ``{text}`` objects; documents are echoed unless
    ``return_documents`` is false; answers ``{model, usage: {total_tokens}, results}``."""

    paths = ("/v1/rerank",)
    fields = frozenset({"model", "query", "documents", "top_n", "return_documents"})
    text_objects = True
    return_documents_default = True

    def envelope(self, body: Any, tokens: int) -> dict[str, Any]:
        return {"model": body["model"], "usage": {"total_tokens": tokens}}


class InfinityFake(CohereShapedFake):
    """An infinity server's ``/rerank``: ``raw_scores: true`` answers logits; answers
    ``{object, id, created, model, results, usage: {prompt_tokens, total_tokens}}``."""

    paths = ("/rerank",)
    fields = frozenset({"model", "query", "documents", "top_n", "return_documents", "raw_scores"})
    raw_option = ("raw_scores", True)
    max_documents = 2_048

    def envelope(self, body: Any, tokens: int) -> dict[str, Any]:
        return {
            "object": "rerank",
            "id": self.next_id(),
            "created": 1_700_000_000,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


class VLLMFake(CohereShapedFake):
    """A vLLM server's ``/rerank`` (and the ``/v1``, ``/v2`` aliases): ignores unknown fields,
    always echoes documents, answers logits with ``use_activation: false``; answers
    ``{id, model, usage: {total_tokens}, results}``."""

    paths = ("/rerank", "/v1/rerank", "/v2/rerank")
    return_documents_default = True
    raw_option = ("use_activation", False)

    def check(self, body: Any, request: ReceivedRequest) -> None:
        for field in ("max_tokens_per_doc", "truncate_prompt_tokens"):
            value = body.get(field)
            self.require(value is None or type(value) is int, f"{field} must be an int")
        instruction = body.get("instruction")
        self.require(instruction is None or isinstance(instruction, str), "bad instruction")

    def envelope(self, body: Any, tokens: int) -> dict[str, Any]:
        return {"id": self.next_id(), "model": body["model"], "usage": {"total_tokens": tokens}}


class FireworksFake(CohereShapedFake):
    """Fireworks AI's ``/inference/v1/rerank``: string documents only, no unknown fields, model
    ids ``fireworks/<name>`` or ``accounts/<account>/models/<name>``, instruction as ``task``;
    documents echoed as strings unless ``return_documents`` is false; results under ``data``."""

    paths = ("/inference/v1/rerank",)
    fields = frozenset({"model", "query", "documents", "top_n", "return_documents", "task"})
    results_key = "data"
    return_documents_default = True
    echo = "string"

    def check(self, body: Any, request: ReceivedRequest) -> None:
        model = body["model"]
        parts = model.split("/")
        self.require(
            (len(parts) == 2 and parts[0] == "fireworks")
            or (len(parts) == 4 and parts[0] == "accounts" and parts[2] == "models"),
            f"model not found: {model}",
        )
        task = body.get("task")
        self.require(task is None or isinstance(task, str), "task must be a string")

    def envelope(self, body: Any, tokens: int) -> dict[str, Any]:
        return {
            "object": "list",
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


_SF_CHUNKING = frozenset(
    {
        "BAAI/bge-reranker-v2-m3",
        "Pro/BAAI/bge-reranker-v2-m3",
        "netease-youdao/bce-reranker-base_v1",
    }
)
_SF_INSTRUCTION = frozenset(
    {"Qwen/Qwen3-Reranker-8B", "Qwen/Qwen3-Reranker-4B", "Qwen/Qwen3-Reranker-0.6B"}
)


class SiliconFlowFake(CohereShapedFake):
    """SiliconFlow's ``/v1/rerank``: ``instruction`` for the Qwen3 rerankers only,
    ``max_chunks_per_doc`` and ``overlap_tokens`` (at most 80) for bge and bce only; answers
    ``{id, results, tokens: {input_tokens, output_tokens}}``."""

    paths = ("/v1/rerank",)
    fields = frozenset(
        {
            "model",
            "query",
            "documents",
            "top_n",
            "return_documents",
            "instruction",
            "max_chunks_per_doc",
            "overlap_tokens",
        }
    )
    output_tokens = 0

    def check(self, body: Any, request: ReceivedRequest) -> None:
        model = body["model"]
        if "instruction" in body:
            self.require(model in _SF_INSTRUCTION, f"{model} does not support instruction")
            self.require(isinstance(body["instruction"], str), "instruction must be a string")
        for field in ("max_chunks_per_doc", "overlap_tokens"):
            if field in body:
                self.require(model in _SF_CHUNKING, f"{model} does not support {field}")
                self.require(type(body[field]) is int, f"{field} must be an int")
        self.require(body.get("overlap_tokens", 0) <= 80, "overlap_tokens must be <= 80")

    def envelope(self, body: Any, tokens: int) -> dict[str, Any]:
        return {
            "id": self.next_id(),
            "tokens": {"input_tokens": tokens, "output_tokens": self.output_tokens},
        }
