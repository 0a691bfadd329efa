"""What the framework adapter tests share: the texts and metadata they index, the rankings
rerankit gives them directly (what each adapter must reproduce), and a client over the fake
Cohere server whose hook records the thread each request is sent from."""

from __future__ import annotations

import threading
from typing import Any

import rerankit
from rerankit import AsyncClient, RerankEvent
from rerankit.testing import FakeServer

from .conftest import API_KEY
from .support import DOCS_5, FAST_RETRY, QUERY, expected_order

__all__ = [
    "API_KEY",
    "METADATA",
    "QUERY",
    "TEXTS",
    "ThreadLog",
    "bm25_order",
    "cohere_order",
    "hooked_client",
    "rendered",
]

TEXTS = list(DOCS_5)
"""Five documents: two about passwords, one about invoices, one about a router, one offline."""
METADATA: list[dict[str, Any]] = [
    {"title": f"Article {position}", "position": position} for position in range(len(TEXTS))
]
"""Each document's metadata: a title, and its position in ``TEXTS``."""


def bm25_order(query: str, texts: list[str]) -> list[int]:
    """Indexes of ``texts`` by ``local/bm25`` relevance, as rerankit itself ranks them."""
    response = rerankit.rerank("local/bm25", query, texts)
    return [result.index for result in response.results]


def cohere_order(query: str, texts: list[str]) -> list[int]:
    """Indexes of ``texts`` in the order the fake Cohere server ranks them."""
    return expected_order(query, texts)


def rendered(position: int) -> str:
    """``TEXTS[position]`` as the fake receives it with ``rank_fields=["title", "text"]``."""
    return f"title: {METADATA[position]['title']}\ntext: {TEXTS[position]}"


class ThreadLog:
    """A hook recording the name of the thread each request is sent from."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def __call__(self, event: RerankEvent) -> None:
        if event.kind == "request":
            self.threads.append(threading.current_thread().name)


def hooked_client(server: FakeServer, log: ThreadLog, **options: Any) -> AsyncClient:
    """An ``AsyncClient`` for the fake Cohere ``server`` (with the key) that logs threads."""
    return AsyncClient(
        providers={"cohere": {"api_key": API_KEY, "api_base": server.url}},
        retry=FAST_RETRY,
        timeout=5,
        hooks=[log],
        **options,
    )
