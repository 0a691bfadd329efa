"""``FakeVendor``: the common frame of fake provider APIs (route, auth, JSON, scoring)."""

from __future__ import annotations

import itertools
import re
from typing import Any

from rerankit.testing._server import ReceivedRequest, Reply

__all__ = [
    "BadRequest",
    "FakeVendor",
    "fake_logit",
    "fake_pair_tokens",
    "fake_tokens",
    "overlap_score",
]

_WORD = re.compile(r"\w+")


def overlap_score(query: str, text: str) -> float:
    """The fakes' relevance: the share of the query's distinct words found in ``text``."""
    words = set(_WORD.findall(query.lower()))
    if not words:
        return 0.0
    return len(words & set(_WORD.findall(text.lower()))) / len(words)


def fake_tokens(*texts: str) -> int:
    """The fakes' token count: words, which is all a test needs to check usage mapping."""
    return sum(len(_WORD.findall(text)) for text in texts)


def fake_pair_tokens(query: str, texts: list[str]) -> int:
    """The fakes' token count of scoring ``query`` against each of ``texts``."""
    return fake_tokens(query) * len(texts) + fake_tokens(*texts)


def fake_logit(score: float) -> float:
    """A raw, unbounded score with the same order as ``score`` (0..1): ``10 * score - 5``."""
    return 10.0 * score - 5.0


class BadRequest(Exception):
    """Raised by ``FakeVendor.extract`` for a request the real API would reject."""


class FakeVendor:
    """A fake rerank API: checks route, auth and JSON, then scores with ``overlap_score``.

    Subclasses set ``paths`` and implement ``extract`` (the query, document texts and cut-off in
    the request, raising ``BadRequest`` for what the vendor rejects) and ``answer`` (the vendor's
    response body for the scores). ``auth`` checks the ``Authorization: Bearer`` header by default.
    Errors are answered ``{error_key: message}``; ``next_id()`` gives ``id_prefix`` + 1, 2, ...
    """

    paths: tuple[str, ...] = ()
    error_status = 400
    error_key = "message"
    id_prefix = "fake-"

    def __init__(self, api_key: str | None = "test-key") -> None:
        self.api_key = api_key
        self._ids = itertools.count(1)

    def __call__(self, request: ReceivedRequest) -> Reply:
        if request.method != "POST" or not self.route_ok(request):
            return self.error(404, f"no route for {request.method} {request.path}")
        if not self.auth(request):
            return self.error(401, "invalid api key")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return self.error(400, "content-type must be application/json")
        try:
            body = request.json()
        except Exception:
            return self.error(400, "invalid JSON body")
        if not isinstance(body, dict) and not self.accepts_array():
            return self.error(400, "body must be an object")
        try:
            query, texts, top_n = self.extract(body, request)
        except BadRequest as exc:
            return self.error(self.error_status, str(exc))
        scores = [overlap_score(query, text) for text in texts]
        return Reply(body=self.answer(scores, top_n, body, request))

    def route_ok(self, request: ReceivedRequest) -> bool:
        return request.path in self.paths

    def auth(self, request: ReceivedRequest) -> bool:
        if self.api_key is None:
            return "authorization" not in request.headers
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    def accepts_array(self) -> bool:
        return False

    def error(self, status: int, message: str) -> Reply:
        return Reply(status=status, body={self.error_key: message})

    def next_id(self) -> str:
        """A fresh response id: ``id_prefix`` and a counter from 1."""
        return f"{self.id_prefix}{next(self._ids)}"

    def extract(self, body: Any, request: ReceivedRequest) -> tuple[str, list[str], int | None]:
        raise NotImplementedError

    def answer(
        self, scores: list[float], top_n: int | None, body: Any, request: ReceivedRequest
    ) -> Any:
        raise NotImplementedError

    @staticmethod
    def ranked(scores: list[float], top_n: int | None) -> list[tuple[int, float]]:
        """(index, score) sorted as the real APIs sort, cut to ``top_n``."""
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [(i, scores[i]) for i in order[:top_n]]

    @staticmethod
    def text_of(doc: Any, fields: list[str] | None = None) -> str:
        """A document's text as a vendor sees it: a string, or the named fields of an object."""
        if isinstance(doc, str):
            return doc
        if not isinstance(doc, dict):
            raise BadRequest("documents must be strings or objects")
        return " ".join(str(doc.get(field, "")) for field in (fields or ["text"]))

    @staticmethod
    def as_object(doc: Any) -> Any:
        """A document echoed as an object: a dict as it is, a string as ``{"text": ...}``."""
        return doc if isinstance(doc, dict) else {"text": doc}

    @staticmethod
    def require(condition: bool, message: str) -> None:
        """Raise ``BadRequest(message)`` unless ``condition``."""
        if not condition:
            raise BadRequest(message)

    @classmethod
    def require_known(cls, given: Any, known: frozenset[str], what: str = "field") -> None:
        """Raise ``BadRequest`` naming the first key of ``given`` that is not in ``known``."""
        unknown = sorted(set(given) - known)
        cls.require(not unknown, f"unknown {what} {unknown[0]!r}" if unknown else "")
