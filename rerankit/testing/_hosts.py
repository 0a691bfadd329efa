"""Fakes of the routers', serverless hosts' and self-hosted servers' rerank routes.

Each Cohere- or Jina-shaped one is a ``TableFake`` preset that encodes its API's differences:
which fields it accepts, whether and how it echoes documents, where results sit and what the
score is called, and the figures beside the results. ``CloudflareFake`` has Cloudflare's own
shape (model in the URL, ``contexts``, an envelope around an unordered answer).
"""

from __future__ import annotations

from typing import Any

from rerankit.testing._server import ReceivedRequest
from rerankit.testing._table import TableFake
from rerankit.testing._vendor import FakeVendor, fake_pair_tokens

__all__ = [
    "CloudflareFake",
    "LlamaCppFake",
    "LocalAIFake",
    "NovitaFake",
    "OpenRouterFake",
    "SGLangFake",
    "TensorRTLLMFake",
    "XinferenceFake",
]

_JINA_FIELDS = frozenset({"model", "query", "documents", "top_n"})


class OpenRouterFake(TableFake):
    """OpenRouter's ``/api/v1/rerank``: ``{model, query, documents, top_n, provider}`` only; model
    ids hold a slash; every result echoes ``document.text``; answers ``{id, model, provider,
    results, usage: {total_tokens, search_units, cost}}``."""

    paths = ("/api/v1/rerank",)
    fields = _JINA_FIELDS | {"provider"}
    return_field = None
    return_documents_default = True

    def check(self, body: Any, request: ReceivedRequest) -> None:
        self.require("/" in body["model"], f"model {body['model']!r} is not a routed id")
        provider = body.get("provider")
        self.require(provider is None or isinstance(provider, dict), "provider must be an object")

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        tokens = self.tokens(body)
        return {
            "id": self.next_id(),
            "model": body["model"],
            "provider": "Cohere",
            "usage": {"total_tokens": tokens, "search_units": 1, "cost": 0.002},
        }


class NovitaFake(TableFake):
    """Novita's ``/openai/v1/rerank``: ``{model, query, documents: string[], top_n}``; always
    echoes ``document.text``; answers ``{id, results, usage: {completion_tokens, prompt_tokens,
    total_tokens}}``."""

    paths = ("/openai/v1/rerank",)
    fields = _JINA_FIELDS
    return_field = None
    return_documents_default = True

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        tokens = self.tokens(body)
        usage = {"completion_tokens": 0, "prompt_tokens": tokens, "total_tokens": tokens}
        return {"id": self.next_id(), "usage": usage}


class XinferenceFake(TableFake):
    """A Xinference server's ``/v1/rerank``: Cohere v1 fields plus ``return_len`` and
    ``max_chunks_per_doc``; documents echoed as strings by default; ``meta.tokens`` with
    ``return_len: true``."""

    paths = ("/v1/rerank",)
    fields = frozenset({"model", "query", "documents", "top_n", "return_documents"}) | {
        "return_len",
        "max_chunks_per_doc",
        "kwargs",
    }
    return_documents_default = True
    echo = "string"

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        meta: dict[str, Any] = {"api_version": None, "billed_units": None, "warnings": None}
        meta["tokens"] = (
            {"input_tokens": self.tokens(body), "output_tokens": 0}
            if body.get("return_len")
            else None
        )
        return {"id": self.next_id(), "meta": meta}


class LlamaCppFake(TableFake):
    """llama.cpp's ``llama-server --rerank``: ``/v1/rerank`` and its aliases; the model is
    optional; no document flag and no echo; answers ``{model, object, usage, results}``."""

    paths = ("/v1/rerank", "/rerank", "/reranking", "/v1/reranking")
    fields = _JINA_FIELDS
    required = ("query",)
    return_field = None

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        tokens = self.tokens(body)
        return {
            "model": body.get("model", "loaded-model"),
            "object": "list",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


class LocalAIFake(TableFake):
    """LocalAI's Jina-compatible ``/v1/rerank``: ``{model, query, documents, top_n, backend}``;
    always echoes ``document.text``; answers in input order (as its llama.cpp backend does)
    ``{model, usage: {total_tokens, prompt_tokens}, results}``."""

    paths = ("/v1/rerank",)
    fields = _JINA_FIELDS | {"backend"}
    return_field = None
    return_documents_default = True

    def __init__(self, api_key: str | None = "test-key", **parameters: Any) -> None:
        parameters.setdefault("sort", False)
        super().__init__(api_key, **parameters)

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        tokens = self.tokens(body)
        return {"model": body["model"], "usage": {"total_tokens": tokens, "prompt_tokens": tokens}}


class SGLangFake(TableFake):
    """SGLang's ``/v1/rerank``: ignores unknown fields, takes ``instruct``, echoes documents
    unless ``return_documents`` is false, and answers a bare array ``[{index, score, document,
    meta_info}]`` sorted by score."""

    paths = ("/v1/rerank",)
    required = ("query",)
    return_documents_default = True
    results_key = ""
    score_key = "score"
    echo = "string"

    def check(self, body: Any, request: ReceivedRequest) -> None:
        instruct = body.get("instruct")
        self.require(instruct is None or isinstance(instruct, str), "instruct must be a string")

    def answer(
        self, scores: list[float], top_n: int | None, body: Any, request: ReceivedRequest
    ) -> Any:
        results = super().answer(scores, top_n, body, request)
        for result in results:
            result["meta_info"] = {"id": self.next_id()}
        return results


class TensorRTLLMFake(TableFake):
    """``trtllm-serve rerank``: ``/rerank`` and ``/v1/rerank`` (Jina/vLLM style) with
    ``return_documents``, ``max_tokens_per_doc`` and ``instruction``; answers ``{id, model,
    results, usage: {prompt_tokens, total_tokens}}`` sorted by descending score."""

    paths = ("/rerank", "/v1/rerank")
    fields = _JINA_FIELDS | {"return_documents", "max_tokens_per_doc", "instruction"}

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        tokens = self.tokens(body)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return {"id": self.next_id(), "model": body["model"], "usage": usage}


class CloudflareFake(FakeVendor):
    """Workers AI's ``/accounts/{account_id}/ai/run/{model}`` for rerankers: ``{query, contexts:
    [{text}], top_k}`` (non-empty texts, no other fields); answers the REST envelope
    ``{result: {response: [{id, score}]}, success, errors, messages}`` in input order, cut to
    ``top_k`` after sorting only when ``top_k`` is given."""

    account = "acct-123"
    error_key = "errors"

    def route_ok(self, request: ReceivedRequest) -> bool:
        prefix = f"/client/v4/accounts/{self.account}/ai/run/"
        return request.path.startswith(prefix) and request.path[len(prefix) :].startswith("@cf/")

    def error(self, status: int, message: str) -> Any:
        from rerankit.testing._server import Reply

        body = {"success": False, "errors": [{"code": status, "message": message}], "result": None}
        return Reply(status=status, body=body)

    def extract(self, body: Any, request: ReceivedRequest) -> tuple[str, list[str], int | None]:
        self.require_known(body, frozenset({"query", "contexts", "top_k"}))
        query = body.get("query")
        self.require(isinstance(query, str) and bool(query), "query must be a non-empty string")
        contexts = body.get("contexts")
        self.require(isinstance(contexts, list) and bool(contexts), "contexts are required")
        for context in contexts:
            self.require(
                isinstance(context, dict)
                and set(context) == {"text"}
                and isinstance(context["text"], str)
                and bool(context["text"]),
                "each context must be {text} with a non-empty text",
            )
        top_k = body.get("top_k")
        self.require(top_k is None or (type(top_k) is int and top_k >= 1), "top_k must be >= 1")
        return query, [context["text"] for context in contexts], top_k

    def answer(
        self, scores: list[float], top_n: int | None, body: Any, request: ReceivedRequest
    ) -> Any:
        pairs = self.ranked(scores, top_n) if top_n is not None else list(enumerate(scores))
        texts = [context["text"] for context in body["contexts"]]
        tokens = fake_pair_tokens(body["query"], texts)
        response = [{"id": index, "score": score} for index, score in pairs]
        result = {"response": response, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        return {"result": result, "success": True, "errors": [], "messages": []}
