"""What the provider tests share: the documents they rank and the order the fakes give them, a
fast retry policy, clean provider environments, and fixtures serving a fake and a client.

The query, documents and ranking come from ``ProviderContract``'s, so a module's own tests and
its contract tests rank the same texts the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import msgspec
import pytest

from rerankit import AsyncClient, RerankResponse, RetryPolicy
from rerankit._types import RerankRequest
from rerankit.providers import Provider, ProviderContext
from rerankit.testing import FakeServer, Handler, ReceivedRequest
from rerankit.testing._contract import DOCUMENTS, FAST_RETRY, QUERY, expected_order
from rerankit.testing._contract import RECORDS as CONTRACT_RECORDS

__all__ = [
    "DOCS",
    "DOCS_5",
    "DOCUMENTS",
    "FAST_RETRY",
    "NO_RETRY",
    "QUERY",
    "RECORDS",
    "REFUSED",
    "RENDERED",
    "UNSUPPORTED",
    "EMULATED",
    "LONG",
    "assert_emulated",
    "clean_env",
    "clear_env",
    "client_fixture",
    "expected_order",
    "fake_fixture",
    "last_body",
    "post",
    "provider_env",
    "provider_url",
    "rerank",
    "server_fixture",
]

DOCS = [DOCUMENTS[0], DOCUMENTS[1], DOCUMENTS[2], DOCUMENTS[4]]
"""Four documents: two about passwords, one about invoices, one about a router."""
DOCS_5 = DOCUMENTS[:5]
"""Five documents: ``DOCS`` and one about the app working offline."""
RECORDS: list[dict[str, Any]] = CONTRACT_RECORDS[:2]
"""Two dict documents with ``title``, ``body`` and ``id``."""
RENDERED = [
    "title: Billing\nbody: Invoices are sent monthly.",
    "title: Password reset\nbody: Open settings to reset it.",
]
"""``RECORDS`` rendered as text on ``rank_fields=["title", "body"]``."""
REFUSED = "http://127.0.0.1:9"
"""A local port nothing listens on: a base that must not be used fails fast, offline."""
NO_RETRY = RetryPolicy(max_retries=0)
UNSUPPORTED = [{"instruction": "be strict"}]
"""Options a provider without instructions must refuse."""
EMULATED = [{"max_tokens_per_doc": 100}, {"max_chunks_per_doc": 2}]
"""Options rerankit applies itself (by chunking) where the provider lacks them."""
LONG = " ".join(f"clause{i} about password settings" for i in range(200))
"""A document far longer than a 100-token window."""


# --- environment ------------------------------------------------------------------------------


def provider_env(*sources: type[Provider] | str) -> tuple[str, ...]:
    """The environment variables of ``sources``: a provider's ``api_key_env`` and
    ``api_base_env``, or a variable's name."""
    names: list[str] = []
    for source in sources:
        if isinstance(source, str):
            names.append(source)
        else:
            names += [*source.api_key_env, *source.api_base_env]
    return tuple(dict.fromkeys(names))


def clear_env(monkeypatch: pytest.MonkeyPatch, *sources: type[Provider] | str) -> None:
    """Unset every variable of ``provider_env(*sources)`` for one test."""
    for name in provider_env(*sources):
        monkeypatch.delenv(name, raising=False)


def clean_env(*sources: type[Provider] | str) -> Any:
    """An autouse fixture: no test of the module sees the machine's variables of ``sources``.

    Assign it in the module: ``_clean_provider_env = clean_env(VoyageProvider, ...)``.
    """

    @pytest.fixture(autouse=True, name="_clean_provider_env")
    def fixture(monkeypatch: pytest.MonkeyPatch) -> None:
        clear_env(monkeypatch, *sources)

    return fixture


# --- a fake and a client ----------------------------------------------------------------------


def fake_fixture(make: Callable[[], Handler]) -> Any:
    """A ``fake`` fixture: a fresh ``make()`` for each test, which ``server_fixture`` serves."""

    @pytest.fixture
    def fake() -> Handler:
        return make()

    return fake


def server_fixture() -> Any:
    """A ``server`` fixture: a ``FakeServer`` running the module's ``fake`` fixture."""

    @pytest.fixture
    def server(fake: Handler) -> Iterator[FakeServer]:
        with FakeServer(fake) as running:
            yield running

    return server


def client_fixture(settings: Callable[[FakeServer], dict[str, Any]], **options: Any) -> Any:
    """A ``client`` fixture: an ``AsyncClient`` for the ``server`` fixture, with the providers
    ``settings(server)`` (a name to its settings), ``FAST_RETRY`` and ``options``."""

    @pytest.fixture
    async def client(server: FakeServer) -> AsyncIterator[AsyncClient]:
        providers = settings(server)
        async with AsyncClient(providers=providers, retry=FAST_RETRY, **options) as client:
            yield client

    return client


async def rerank(model: str, documents: list[Any] | None = None, **kwargs: Any) -> RerankResponse:
    """One call with ``QUERY`` (and ``DOCS`` unless ``documents``), through a client of its own
    that does not retry."""
    async with AsyncClient(retry=NO_RETRY, timeout=10) as client:
        return await client.rerank(model, QUERY, DOCS if documents is None else documents, **kwargs)


async def assert_emulated(
    client: AsyncClient, server: FakeServer, model: str, parameter: dict[str, Any]
) -> None:
    """``parameter`` (from ``EMULATED``) is applied by rerankit, never sent: the call succeeds
    and ranks every document, the long one through its chunks."""
    before = len(server.received)
    documents = [*DOCS, LONG]
    response = await client.rerank(model, QUERY, documents, **parameter)
    sent = server.received[before:]
    assert sent
    for request in sent:
        assert not set(parameter) & set(request.json())
    assert sorted(r.index for r in response.results) == list(range(len(documents)))


def last_body(server: FakeServer) -> dict[str, Any]:
    """The JSON body of the last request ``server`` received."""
    body: dict[str, Any] = server.received[-1].json()
    return body


def post(path: str, body: Any, headers: dict[str, str] | None = None) -> ReceivedRequest:
    """A JSON ``POST`` as a fake receives it, to call a fake directly."""
    return ReceivedRequest(
        method="POST",
        path=path,
        query={},
        headers={"content-type": "application/json", **(headers or {})},
        body=msgspec.json.encode(body),
    )


def provider_url(
    provider: Any,
    model: str,
    api_base: str | None,
    *,
    api_key: str | None = None,
    **options: Any,
) -> str:
    """The URL a REST provider (an instance or its class) builds for a call, without sending it."""
    if isinstance(provider, type):
        provider = provider()
    request = RerankRequest(model=model, query=QUERY, documents=DOCS, options=options)
    ctx = ProviderContext(provider=provider.name, model=model, api_key=api_key, api_base=api_base)
    return str(provider.url(request, ctx))
