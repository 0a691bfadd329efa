"""``ProviderContract``: the tests every provider passes, reusable by plugin authors.

Subclass it in a pytest test class, set ``model`` and implement ``fake`` (the vendor's fake
API); pytest collects the ``test_contract_*`` methods. They use the sync ``Client`` over real
HTTP against a ``FakeServer`` on 127.0.0.1, so they need pytest but no async test plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from rerankit._errors import AuthenticationError, ResponseValidationError
from rerankit._retry import RetryPolicy
from rerankit._sync._client import Client
from rerankit.testing._server import FakeServer, Handler, Reply
from rerankit.testing._vendor import FakeVendor, overlap_score

__all__ = ["DOCUMENTS", "FAST_RETRY", "QUERY", "RECORDS", "ProviderContract", "expected_order"]

FAST_RETRY = RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.01)
"""Retries that take milliseconds: what the contract tests (and rerankit's own tests) use."""

QUERY = "reset password settings"
DOCUMENTS = [
    "Invoices are sent monthly.",
    "Open settings to reset your password.",
    "Password rules: twelve characters.",
    "The app works offline.",
    "Reset the router settings.",
    "Settings sync across devices.",
]
RECORDS: list[dict[str, Any]] = [
    {"title": "Billing", "body": "Invoices are sent monthly.", "id": 1},
    {"title": "Password reset", "body": "Open settings to reset it.", "id": 2},
    {"title": "Offline", "body": "The app works offline.", "id": 3},
]


def expected_order(query: str, texts: Sequence[str]) -> list[int]:
    """The indices of ``texts`` in the order the fakes rank them (``overlap_score``, ties by
    position)."""
    return _order([overlap_score(query, text) for text in texts])


def _order(scores: list[float]) -> list[int]:
    return [index for index, _ in FakeVendor.ranked(scores, None)]


class ProviderContract:
    """Contract tests for one provider against its fake API.

    Set ``model`` (a full model string) and ``api_key`` (the key the fake expects, ``None`` when
    it expects none); set ``fake_class`` (called with ``api_key``) or implement ``fake()``;
    override ``settings()`` when the provider needs more than a key and a base URL, and
    ``expected_scores()`` when the fake does not score with ``overlap_score``.
    """

    model: ClassVar[str]
    api_key: ClassVar[str | None] = "contract-key"
    fake_class: ClassVar[Callable[[str | None], Handler] | None] = None

    def fake(self) -> Handler:
        """The handler of the vendor's fake API, expecting ``api_key``."""
        make = type(self).fake_class
        if make is None:
            raise NotImplementedError("set fake_class or implement fake()")
        return make(self.api_key)

    def settings(self, server: FakeServer) -> dict[str, Any]:
        """The client's settings for this provider, pointed at ``server``."""
        return {"api_key": self.api_key, "api_base": server.url}

    def expected_scores(self, query: str, texts: list[str]) -> list[float]:
        """What the fake scores each text (``overlap_score`` unless overridden)."""
        return [overlap_score(query, text) for text in texts]

    @property
    def provider(self) -> str:
        return self.model.partition("/")[0]

    @contextmanager
    def serve(self) -> Iterator[tuple[FakeServer, Client]]:
        """A running fake and a client configured for it."""
        with FakeServer(self.fake()) as server:
            client = Client(
                providers={self.provider: self.settings(server)}, retry=FAST_RETRY, timeout=10
            )
            try:
                yield server, client
            finally:
                client.close()

    def expected_order(self, query: str, texts: list[str]) -> list[int]:
        return _order(self.expected_scores(query, texts))

    def test_contract_ranking(self) -> None:
        with self.serve() as (server, client):
            response = client.rerank(self.model, QUERY, DOCUMENTS)
        assert [r.index for r in response.results] == self.expected_order(QUERY, DOCUMENTS)
        assert [r.document for r in response.results] == [
            {"text": DOCUMENTS[r.index]} for r in response.results
        ]
        scores = [r.relevance_score for r in response.results]
        assert scores == sorted(scores, reverse=True)
        assert response.provider == self.provider
        assert response.model == self.model.partition("/")[2]
        assert len(server.received) >= 1

    def test_contract_top_n_and_no_documents(self) -> None:
        with self.serve() as (_, client):
            response = client.rerank(self.model, QUERY, DOCUMENTS, top_n=2, return_documents=False)
        assert [r.index for r in response.results] == self.expected_order(QUERY, DOCUMENTS)[:2]
        assert all(r.document is None for r in response.results)

    def test_contract_dict_documents(self) -> None:
        with self.serve() as (_, client):
            response = client.rerank(self.model, QUERY, RECORDS, rank_fields=["title", "body"])
        texts = [f"{r['title']} {r['body']}" for r in RECORDS]
        assert [r.index for r in response.results] == self.expected_order(QUERY, texts)
        assert [r.document for r in response.results] == [
            RECORDS[i] for i in self.expected_order(QUERY, texts)
        ]

    def test_contract_empty_documents_send_nothing(self) -> None:
        with self.serve() as (server, client):
            assert client.rerank(self.model, QUERY, []).results == []
        assert server.received == []

    def test_contract_server_errors_are_retried(self) -> None:
        with self.serve() as (server, client):
            server.fail(Reply(status=503, body={"message": "busy"}))
            response = client.rerank(self.model, QUERY, DOCUMENTS, top_n=1)
        assert response.results[0].index == self.expected_order(QUERY, DOCUMENTS)[0]

    def test_contract_auth_failure(self) -> None:
        import pytest

        with self.serve() as (server, client):
            server.fail(Reply(status=401, body={"message": "unauthorised"}))
            with pytest.raises(AuthenticationError) as info:
                client.rerank(self.model, QUERY, DOCUMENTS)
        assert info.value.provider == self.provider

    def test_contract_malformed_answer(self) -> None:
        import pytest

        with self.serve() as (server, client):
            server.fail(Reply(body=b"{not json"))
            with pytest.raises(ResponseValidationError) as info:
                client.rerank(self.model, QUERY, DOCUMENTS)
        assert info.value.provider == self.provider

    def test_contract_key_is_sent_only_when_set(self) -> None:
        with self.serve() as (server, client):
            client.rerank(self.model, QUERY, DOCUMENTS[:2])
        headers = server.received[0].headers
        sent = " ".join(headers.values())
        if self.api_key is None:
            assert "authorization" not in headers
        else:
            assert self.api_key in sent
