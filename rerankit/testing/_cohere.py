"""A fake Cohere rerank API (v1 and v2) that checks what it receives like the real one."""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

from rerankit.testing._server import ReceivedRequest, Reply

__all__ = ["CohereFake", "overlap_score"]

_WORD = re.compile(r"\w+")
_V1_FIELDS = frozenset(
    {
        "model",
        "query",
        "documents",
        "top_n",
        "return_documents",
        "rank_fields",
        "max_chunks_per_doc",
    }
)
_V2_FIELDS = frozenset({"model", "query", "documents", "top_n", "max_tokens_per_doc", "priority"})


def overlap_score(query: str, text: str) -> float:
    """The fake's relevance: the share of the query's distinct words found in ``text``."""
    words = set(_WORD.findall(query.lower()))
    if not words:
        return 0.0
    return len(words & set(_WORD.findall(text.lower()))) / len(words)


def _error(status: int, message: str) -> Reply:
    return Reply(status=status, body={"message": message})


class CohereFake:
    """Handler for ``FakeServer`` speaking Cohere's rerank wire format.

    It rejects what Cohere rejects (a wrong key, dict documents on v2, fields a version lacks,
    ``top_n`` < 1) and answers sorted results cut to ``top_n``, ``meta.billed_units`` and an id.
    """

    def __init__(self, api_key: str | None = "test-key", *, sort: bool = True) -> None:
        self.api_key = api_key
        self.sort = sort
        self._ids = itertools.count(1)

    def __call__(self, request: ReceivedRequest) -> Reply:
        version = {"/v1/rerank": "1", "/v2/rerank": "2"}.get(request.path)
        if request.method != "POST" or version is None:
            return _error(404, f"no route for {request.method} {request.path}")
        if (
            self.api_key is not None
            and request.headers.get("authorization") != f"Bearer {self.api_key}"
        ):
            return _error(401, "invalid api token")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _error(400, "content-type must be application/json")
        try:
            body = request.json()
        except Exception:
            return _error(400, "invalid JSON body")
        problem = self._check(body, version)
        if problem:
            return _error(400, problem)
        return Reply(body=self._answer(body, version))

    def _check(self, body: Any, version: str) -> str | None:
        if not isinstance(body, dict):
            return "body must be an object"
        allowed = _V2_FIELDS if version == "2" else _V1_FIELDS
        unknown = sorted(set(body) - allowed)
        if unknown:
            return f"invalid request: unknown field {unknown[0]!r} for v{version}"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "invalid request: model is required"
        if not isinstance(body.get("query"), str) or not body["query"]:
            return "invalid request: query is required"
        docs = body.get("documents")
        if not isinstance(docs, list) or not docs:
            return "invalid request: documents must be a non-empty list"
        if len(docs) > 10_000:
            return "invalid request: too many documents"
        for doc in docs:
            if version == "2" and not isinstance(doc, str):
                return "invalid request: v2 documents must be strings"
            if not isinstance(doc, (str, dict)):
                return "invalid request: documents must be strings or objects"
        top_n = body.get("top_n")
        if top_n is not None and (not isinstance(top_n, int) or top_n < 1):
            return "invalid request: top_n must be a positive integer"
        return None

    def _answer(self, body: dict[str, Any], version: str) -> dict[str, Any]:
        fields = body.get("rank_fields")
        texts = [_text(doc, fields) for doc in body["documents"]]
        results: list[dict[str, Any]] = [
            {"index": i, "relevance_score": overlap_score(body["query"], text)}
            for i, text in enumerate(texts)
        ]
        if self.sort:
            results.sort(key=lambda r: (-r["relevance_score"], r["index"]))
            if body.get("top_n"):
                del results[body["top_n"] :]
        if version == "1" and body.get("return_documents"):
            for result in results:
                doc = body["documents"][result["index"]]
                result["document"] = doc if isinstance(doc, dict) else {"text": doc}
        return {
            "id": f"fake-{next(self._ids)}",
            "results": results,
            "meta": {
                "api_version": {"version": version},
                "billed_units": {"search_units": math.ceil(len(texts) / 100)},
            },
        }


def _text(doc: str | dict[str, Any], fields: list[str] | None) -> str:
    if isinstance(doc, str):
        return doc
    return " ".join(str(doc.get(field, "")) for field in (fields or ["text"]))
