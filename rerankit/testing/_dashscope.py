"""A fake Alibaba Model Studio (DashScope) rerank API: the compatible and the native protocol."""

from __future__ import annotations

from typing import Any

from rerankit.testing._server import ReceivedRequest, Reply
from rerankit.testing._table import COHERE_FIELDS
from rerankit.testing._vendor import BadRequest, FakeVendor, fake_pair_tokens

__all__ = ["DashScopeFake"]

COMPATIBLE_PATH = "/compatible-api/v1/reranks"
NATIVE_PATH = "/api/v1/services/rerank/text-rerank/text-rerank"

_NATIVE_FIELDS = frozenset({"model", "input", "parameters"})
_NATIVE_PARAMETERS = frozenset({"top_n", "return_documents", "instruct"})


class DashScopeFake(FakeVendor):
    """DashScope rerank on both routes, checking each like the real service.

    Compatible (``/compatible-api/v1/reranks``): ``{model, query, documents, top_n,
    return_documents}``, answered ``{id, results, usage: {total_tokens}}``; models in
    ``native_only`` are refused there. Native
    (``/api/v1/services/rerank/text-rerank/text-rerank``): ``{model, input: {query, documents},
    parameters: {top_n, return_documents, instruct}}``, answered ``{output: {results}, usage:
    {total_tokens}, request_id}``;
    ``instruct`` only for ``instruct_models``, object documents (``{"text": ...}``) for
    ``object_document_models``. Errors are ``{code, message, request_id}``. Documents are echoed
    only when ``return_documents`` is true.
    """

    paths = (COMPATIBLE_PATH, NATIVE_PATH)
    native_only = frozenset({"gte-rerank-v2", "qwen3-vl-rerank", "qwen3.7-text-rerank"})
    instruct_models = frozenset({"qwen3-rerank", "qwen3-vl-rerank", "qwen3.7-text-rerank"})
    object_document_models = frozenset({"qwen3-vl-rerank"})
    max_documents = 500
    max_images = 40
    id_prefix = "req-"

    def error(self, status: int, message: str) -> Reply:
        code = {401: "InvalidApiKey", 404: "NotFound"}.get(status, "InvalidParameter")
        return Reply(
            status=status,
            body={"code": code, "message": message, "request_id": self.next_id()},
        )

    def extract(self, body: Any, request: ReceivedRequest) -> tuple[str, list[str], int | None]:
        model = body.get("model")
        self.require(isinstance(model, str) and bool(model), "Model not specified")
        if request.path == COMPATIBLE_PATH:
            self.require_known(body, COHERE_FIELDS)
            self.require(model not in self.native_only, f"Model not exist: {model}")
            query, docs, options = body.get("query"), body.get("documents"), body
        else:
            self.require_known(body, _NATIVE_FIELDS)
            given = body.get("input")
            self.require(isinstance(given, dict), "input is required")
            query, docs = given.get("query"), given.get("documents")
            options = body.get("parameters", {})
            self.require(isinstance(options, dict), "parameters must be an object")
            self.require_known(options, _NATIVE_PARAMETERS, "parameter")
            if "instruct" in options:
                self.require(model in self.instruct_models, f"{model} does not support instruct")
                self.require(isinstance(options["instruct"], str), "instruct must be a string")
        self.require(isinstance(query, str) and bool(query), "query is required")
        self.require(isinstance(docs, list) and bool(docs), "documents must be a non-empty list")
        self.require(len(docs) <= self.max_documents, f"at most {self.max_documents} documents")
        objects = request.path == NATIVE_PATH and model in self.object_document_models
        texts = [self._text(doc, objects) for doc in docs]
        images = sum(isinstance(doc, dict) and "image" in doc for doc in docs)
        self.require(images <= self.max_images, f"at most {self.max_images} image documents")
        top_n = options.get("top_n")
        self.require(top_n is None or (type(top_n) is int and top_n >= 1), "top_n must be >= 1")
        flag = options.get("return_documents")
        self.require(flag is None or isinstance(flag, bool), "return_documents must be a bool")
        return query, texts, top_n

    @staticmethod
    def _text(doc: Any, objects: bool) -> str:
        """A document as scored; a multimodal model's ``{image}`` (an http(s) URL, alone in its
        object) scores on its URL."""
        if objects:
            if isinstance(doc, dict) and len(doc) == 1:
                value = doc.get("text", doc.get("image"))
                if "text" in doc and isinstance(value, str):
                    return value
                if isinstance(value, str) and value.startswith(("http://", "https://")):
                    return value
            raise BadRequest("documents must be objects with text, image or video")
        if isinstance(doc, str):
            return doc
        raise BadRequest("documents must be strings")

    def answer(
        self, scores: list[float], top_n: int | None, body: Any, request: ReceivedRequest
    ) -> Any:
        native = request.path == NATIVE_PATH
        options = body.get("parameters", {}) if native else body
        docs = body["input"]["documents"] if native else body["documents"]
        query = body["input"]["query"] if native else body["query"]
        results: list[dict[str, Any]] = []
        for index, score in self.ranked(scores, top_n):
            result: dict[str, Any] = {"index": index, "relevance_score": score}
            if options.get("return_documents"):
                result["document"] = self.as_object(docs[index])
            results.append(result)
        texts = [d if isinstance(d, str) else str(d.get("text", "")) for d in docs]
        usage = {"total_tokens": fake_pair_tokens(query, texts)}
        if native:
            return {"output": {"results": results}, "usage": usage, "request_id": self.next_id()}
        return {"id": self.next_id(), "results": results, "usage": usage}
