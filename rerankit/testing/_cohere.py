"""A fake Cohere rerank API (v1 and v2) that checks what it receives like the real one."""

from __future__ import annotations

import math
from typing import Any

from rerankit.testing._server import ReceivedRequest
from rerankit.testing._table import COHERE_FIELDS
from rerankit.testing._vendor import FakeVendor

__all__ = ["CohereFake"]

V1_FIELDS = COHERE_FIELDS | {"rank_fields", "max_chunks_per_doc"}
_V2_FIELDS = frozenset({"model", "query", "documents", "top_n", "max_tokens_per_doc", "priority"})


class CohereFake(FakeVendor):
    """Cohere's rerank wire format, v1 (``/v1/rerank``) and v2 (``/v2/rerank``).

    It rejects what Cohere rejects (a wrong key, dict documents on v2, fields a version lacks,
    ``top_n`` < 1) and answers sorted results cut to ``top_n``, ``meta.billed_units`` and an id.
    With ``sort=False`` it answers every document in input order, to test client-side sorting.
    """

    paths = ("/v1/rerank", "/v2/rerank")

    def __init__(self, api_key: str | None = "test-key", *, sort: bool = True) -> None:
        super().__init__(api_key)
        self.sort = sort

    def extract(self, body: Any, request: ReceivedRequest) -> tuple[str, list[str], int | None]:
        v2 = request.path.startswith("/v2")
        unknown = sorted(set(body) - (_V2_FIELDS if v2 else V1_FIELDS))
        self.require(not unknown, f"invalid request: unknown field {unknown[:1]}")
        self.require(isinstance(body.get("model"), str) and body["model"], "model is required")
        self.require(isinstance(body.get("query"), str) and body["query"], "query is required")
        docs = body.get("documents")
        self.require(isinstance(docs, list) and 0 < len(docs) <= 10_000, "bad documents")
        self.require(
            not v2 or all(isinstance(d, str) for d in docs), "v2 documents must be strings"
        )
        top_n = body.get("top_n")
        self.require(top_n is None or (isinstance(top_n, int) and top_n >= 1), "bad top_n")
        return body["query"], [self.text_of(d, body.get("rank_fields")) for d in docs], top_n

    def answer(
        self, scores: list[float], top_n: int | None, body: Any, request: ReceivedRequest
    ) -> Any:
        ranked = self.ranked(scores, top_n) if self.sort else list(enumerate(scores))
        results: list[dict[str, Any]] = [{"index": i, "relevance_score": s} for i, s in ranked]
        if request.path.startswith("/v1") and body.get("return_documents"):
            for result in results:
                result["document"] = self.as_object(body["documents"][result["index"]])
        return {
            "id": self.next_id(),
            "results": results,
            "meta": {
                "api_version": {"version": request.path[2]},
                "billed_units": {"search_units": math.ceil(len(scores) / 100)},
            },
        }
