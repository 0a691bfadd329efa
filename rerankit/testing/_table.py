"""``TableFake``: one configurable fake for every rerank API shaped like Cohere's v1 API.

A query, a list of documents and a cut-off in; a list of ``{index, score}`` out. The vendors of
that shape (the cohere-compatible family, Voyage, Mixedbread, Pinecone, ZeroEntropy, Contextual)
differ only in field names, limits, how documents are echoed and the figures beside the
results, so each vendor's fake is a preset of this one class. ``CohereShapedFake`` is the same
class under its older name: its defaults are the Cohere v1 shape.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from rerankit.testing._server import ReceivedRequest
from rerankit.testing._vendor import FakeVendor, fake_logit, fake_pair_tokens

__all__ = ["COHERE_FIELDS", "CohereShapedFake", "TableFake"]

COHERE_FIELDS = frozenset({"model", "query", "documents", "top_n", "return_documents"})
"""The request fields every API of the Cohere v1 shape knows."""

DocumentKinds = Literal["strings", "objects", "either", "text_objects"]
Echo = Literal["as_sent", "object", "string"]


class TableFake(FakeVendor):
    """A fake rerank API in the Cohere v1 shape, with everything vendors vary as parameters.

    Class attributes (each also a keyword argument of the constructor):

    * ``paths``: the routes served.
    * ``fields``: the body fields accepted (any other is a 400); ``None`` ignores unknown fields,
      as vLLM and many self-hosted servers do.
    * ``required``: the fields that must be non-blank strings.
    * ``documents_field``: where the documents are, at most ``max_documents`` (``None``: any
      number) of ``document_kinds``: ``"strings"``, ``"objects"``, ``"either"``, or
      ``"text_objects"`` (strings or ``{"text": ...}`` objects). Objects are ranked on
      ``rank_fields`` (or ``text``) unless ``text()`` says otherwise.
    * ``top_field``: the cut-off, an int >= 1 (``None``: the API has none).
    * ``return_field``: the flag asking for the documents back, a bool (``None``: none);
      ``return_documents_default``: whether documents are echoed when the request does not say.
    * ``results_key``: where the result list goes (``""``: the answer is a bare array).
    * ``score_key`` and ``document_key``: the score and echoed-document fields of a result.
    * ``echo``: how a document is echoed: ``"object"`` (``{"text": ...}`` or the dict),
      ``"string"``, or ``"as_sent"``.
    * ``raw_option``: a body field and the value that make the fake answer raw logits
      (``fake_logit`` of the scores).

    With ``sort=False`` the fake answers every document in input order. Subclasses add checks
    (``check``) and the vendor's fields beside the result list (``envelope``); ``tokens(body)``
    is the fake's token count (words of the query per document plus words of the documents).
    """

    paths: tuple[str, ...] = ("/rerank",)
    fields: frozenset[str] | None = None
    required: tuple[str, ...] = ("model", "query")
    documents_field: str = "documents"
    document_kinds: DocumentKinds = "strings"
    max_documents: int | None = None
    top_field: str | None = "top_n"
    return_field: str | None = "return_documents"
    return_documents_default: bool = False
    results_key: str = "results"
    score_key: str = "relevance_score"
    document_key: str = "document"
    echo: Echo = "object"
    raw_option: tuple[str, Any] | None = None

    _PARAMETERS: ClassVar[frozenset[str]] = frozenset(
        {
            "paths",
            "fields",
            "required",
            "documents_field",
            "document_kinds",
            "max_documents",
            "top_field",
            "return_field",
            "return_documents_default",
            "results_key",
            "score_key",
            "document_key",
            "echo",
            "raw_option",
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

    def extract(self, body: Any, request: ReceivedRequest) -> tuple[str, list[str], int | None]:
        if self.fields is not None:
            self.require_known(body, self.fields)
        for field in self.required:
            value = body.get(field)
            self.require(isinstance(value, str) and bool(value.strip()), f"{field} is required")
        name, limit = self.documents_field, self.max_documents
        docs = body.get(name)
        self.require(isinstance(docs, list) and bool(docs), f"{name} must be a non-empty list")
        self.require(limit is None or len(docs) <= limit, f"at most {limit} {name}")
        self.require(
            all(self._kind_ok(doc) for doc in docs), f"{name} must be {self.document_kinds}"
        )
        top = body.get(self.top_field) if self.top_field else None
        self.require(
            top is None or (type(top) is int and top >= 1), f"{self.top_field} must be an int >= 1"
        )
        flag = body.get(self.return_field) if self.return_field else None
        self.require(flag is None or isinstance(flag, bool), f"{self.return_field} must be a bool")
        self.check(body, request)
        return body["query"], [self.text(doc, body) for doc in docs], top

    def _kind_ok(self, doc: Any) -> bool:
        kinds = self.document_kinds
        if isinstance(doc, str):
            return kinds != "objects"
        if not isinstance(doc, dict):
            return False
        if kinds == "text_objects":
            return set(doc) == {"text"} and isinstance(doc["text"], str)
        return kinds in ("objects", "either")

    def check(self, body: Any, request: ReceivedRequest) -> None:
        """Vendor-specific checks on a request; raise ``BadRequest`` for what the API rejects."""

    def text(self, doc: Any, body: Any) -> str:
        """What the vendor ranks a document on (an object: its ``rank_fields``, or ``text``)."""
        return self.text_of(doc, body.get("rank_fields"))

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        """The answer's fields beside the result list (ids, usage, model)."""
        return {}

    def tokens(self, body: Any) -> int:
        docs = body[self.documents_field]
        texts = [d if isinstance(d, str) else " ".join(map(str, d.values())) for d in docs]
        return fake_pair_tokens(body["query"], texts)

    def echoed(self, doc: Any) -> Any:
        """A document as the vendor echoes it (see ``echo``)."""
        if self.echo == "object":
            return self.as_object(doc)
        if self.echo == "string":
            return doc if isinstance(doc, str) else str(doc)
        return doc

    def answer(
        self, scores: list[float], top_n: int | None, body: Any, request: ReceivedRequest
    ) -> Any:
        option = self.raw_option
        if option is not None and body.get(option[0], None) == option[1]:
            scores = [fake_logit(score) for score in scores]
        ranked = self.ranked(scores, top_n) if self.sort else list(enumerate(scores))
        echo = self.return_documents_default
        if self.return_field and self.return_field in body:
            echo = body[self.return_field]
        results: list[dict[str, Any]] = []
        for index, score in ranked:
            result: dict[str, Any] = {"index": index, self.score_key: score}
            if echo:
                result[self.document_key] = self.echoed(body[self.documents_field][index])
            results.append(result)
        if not self.results_key:
            return results
        return {self.results_key: results, **self.envelope(body, results)}


CohereShapedFake = TableFake
"""The name the cohere-compatible presets grew up with: ``TableFake``, whose defaults are the
Cohere v1 shape."""
