"""Response caches: LRU order, expiry, counts, keys, entries, SQLite shared between processes."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from rerankit import ConfigurationError, RerankRequest, RerankResponse, RerankResult, Usage
from rerankit._cache import (
    CacheStats,
    MemoryCache,
    ResponseCache,
    SQLiteCache,
    cache_key,
    decode_entry,
    encode_entry,
)

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": path},
        check=False,
    )


# --- MemoryCache ---------------------------------------------------------------------------


async def test_memory_cache_evicts_the_least_recently_used() -> None:
    cache = MemoryCache(max_entries=3)
    for key in (b"a", b"b", b"c"):
        await cache.set(key, key.upper())
    assert await cache.get(b"a") == b"A"  # a is now the most recently used
    await cache.set(b"d", b"D")  # evicts b
    assert await cache.get(b"b") is None
    await cache.set(b"c", b"C2")  # replacing refreshes c
    await cache.set(b"e", b"E")  # evicts a
    assert [await cache.get(key) for key in (b"a", b"c", b"d", b"e")] == [None, b"C2", b"D", b"E"]
    assert cache.stats.entries == 3


async def test_memory_cache_entries_expire_after_ttl() -> None:
    clock = Clock()
    cache = MemoryCache(ttl=10, clock=clock)
    await cache.set(b"k", b"v")
    clock.now += 9.9
    assert await cache.get(b"k") == b"v"  # reading does not extend the lifetime
    clock.now += 0.1
    assert await cache.get(b"k") is None
    assert cache.stats == CacheStats(hits=1, misses=1, entries=0)
    await cache.set(b"k", b"w")  # a new value lives a full ttl again
    clock.now += 5
    assert await cache.get(b"k") == b"w"


async def test_memory_cache_counts_hits_misses_and_entries() -> None:
    cache = MemoryCache()
    assert cache.stats == CacheStats(hits=0, misses=0, entries=0)
    assert await cache.get(b"x") is None
    await cache.set(b"x", b"1")
    await cache.set(b"y", b"2")
    assert await cache.get(b"x") == b"1"
    assert await cache.get(b"x") == b"1"
    assert cache.stats == CacheStats(hits=2, misses=1, entries=2)
    await cache.clear()
    assert await cache.get(b"x") is None
    assert cache.stats == CacheStats(hits=2, misses=2, entries=0)


def test_caches_check_their_settings(tmp_path: Path) -> None:
    for bad in ({"max_entries": 0}, {"max_entries": None}, {"ttl": 0}, {"ttl": True}):
        with pytest.raises(ConfigurationError):
            MemoryCache(**bad)
    with pytest.raises(ConfigurationError):
        SQLiteCache(tmp_path / "c.sqlite", ttl=-1)
    assert SQLiteCache(tmp_path / "c.sqlite", max_entries=None).max_entries is None
    assert isinstance(MemoryCache(), ResponseCache)
    assert isinstance(SQLiteCache(tmp_path / "c.sqlite"), ResponseCache)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_many_tasks_get_and_set_concurrently(kind: str, tmp_path: Path) -> None:
    cache: MemoryCache | SQLiteCache = (
        MemoryCache(max_entries=1000) if kind == "memory" else SQLiteCache(tmp_path / "c.sqlite")
    )
    found: dict[int, tuple[bytes | None, bytes | None]] = {}

    async def worker(n: int) -> None:
        key = f"key-{n % 50}".encode()
        before = await cache.get(key)
        await cache.set(key, f"value-{n % 50}".encode())
        found[n] = (before, await cache.get(key))

    async with anyio.create_task_group() as tasks:
        for n in range(200):
            tasks.start_soon(worker, n)
    for n, (before, after) in found.items():
        assert before in (None, f"value-{n % 50}".encode())
        assert after == f"value-{n % 50}".encode()
    stats = cache.stats
    assert stats.hits + stats.misses == 400
    assert stats.misses == sum(before is None for before, _ in found.values())
    if isinstance(cache, SQLiteCache):
        await cache.aclose()


# --- SQLiteCache ---------------------------------------------------------------------------


async def test_sqlite_cache_stores_expires_and_counts(tmp_path: Path) -> None:
    clock = Clock()
    cache = SQLiteCache(tmp_path / "sub" / "c.sqlite", ttl=60, clock=clock)
    assert await cache.get(b"k") is None
    await cache.set(b"k", b"value")
    await cache.set(b"empty", b"")
    assert await cache.get(b"k") == b"value"
    assert await cache.get(b"empty") == b""
    clock.now += 60
    assert await cache.get(b"k") is None
    assert cache.stats.hits == 2
    assert cache.stats.misses == 2
    await cache.clear()
    assert cache.stats.entries == 0
    cache.close()
    assert await cache.get(b"empty") is None  # reopened after close
    await cache.aclose()


async def test_sqlite_cache_keeps_the_newest_max_entries(tmp_path: Path) -> None:
    clock = Clock()
    cache = SQLiteCache(tmp_path / "c.sqlite", max_entries=3, ttl=100, clock=clock)
    cache.evict_every = 1
    for n in range(5):
        clock.now += 1
        await cache.set(bytes([n]), b"v")
    assert cache.stats.entries == 3
    assert [await cache.get(bytes([n])) for n in range(5)] == [None, None, b"v", b"v", b"v"]
    clock.now += 99.5  # 2 and 3 expired; the eviction pass of the next set removes them
    await cache.set(b"new", b"v")
    assert cache.stats.entries == 2  # entry 4 and the new one
    await cache.aclose()


def rows(path: Path) -> dict[bytes, Any]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT key, value FROM responses").fetchall())


async def test_corrupt_sqlite_entries_are_misses_and_are_deleted(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = SQLiteCache(path)
    for key in (b"flipped", b"short", b"text", b"stamp", b"good"):
        await cache.set(key, b"a cached response")
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        value = rows(path)[b"flipped"]
        flipped = value[:-1] + bytes([value[-1] ^ 1])
        db.execute("UPDATE responses SET value = ? WHERE key = ?", (flipped, b"flipped"))
        db.execute("UPDATE responses SET value = x'0102' WHERE key = ?", (b"short",))
        db.execute("UPDATE responses SET value = 'text' WHERE key = ?", (b"text",))
        db.execute("UPDATE responses SET stored = 'soon' WHERE key = ?", (b"stamp",))
    for key in (b"flipped", b"short", b"text", b"stamp"):
        assert await cache.get(key) is None, key
    assert await cache.get(b"good") == b"a cached response"
    assert cache.stats.misses == 4
    assert cache.stats.hits == 1
    assert list(rows(path)) == [b"good"]
    await cache.aclose()


async def test_an_unusable_sqlite_file_degrades_to_misses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database, " * 100)
    cache = SQLiteCache(path)
    with caplog.at_level(logging.DEBUG, logger="rerankit"):
        await cache.set(b"k", b"v")
        assert await cache.get(b"k") is None
        assert await cache.get(b"k") is None
    assert cache.stats == CacheStats(hits=0, misses=2, entries=0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "c.sqlite" in warnings[0].getMessage()
    assert path.read_bytes().startswith(b"this is not a database")  # never replaced
    with pytest.raises(sqlite3.DatabaseError):
        await cache.clear()  # an explicit clear reports the failure


class ThreadRecordingCache(SQLiteCache):
    """Records the thread each piece of SQLite work runs on."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.threads: set[int] = set()

    def _get(self, key: bytes) -> bytes | None:
        self.threads.add(threading.get_ident())
        return super()._get(key)

    def _set(self, key: bytes, value: bytes) -> None:
        self.threads.add(threading.get_ident())
        super()._set(key, value)

    def _clear(self) -> None:
        self.threads.add(threading.get_ident())
        super()._clear()

    def close(self) -> None:
        self.threads.add(threading.get_ident())
        super().close()


async def test_sqlite_work_runs_off_the_event_loop_thread(tmp_path: Path) -> None:
    cache = ThreadRecordingCache(tmp_path / "c.sqlite")
    await cache.set(b"k", b"v")
    assert await cache.get(b"k") == b"v"
    await cache.clear()
    await cache.aclose()
    assert cache.threads
    assert threading.get_ident() not in cache.threads


@pytest.mark.slow
def test_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    parent = SQLiteCache(path)
    anyio.run(parent.set, b"from-parent", b"parent value")
    result = run_python(
        """
        import asyncio, sys
        from rerankit._cache import SQLiteCache

        async def main():
            cache = SQLiteCache(sys.argv[1])
            assert await cache.get(b"from-parent") == b"parent value"
            await cache.set(b"from-child", b"child value")
            await cache.aclose()

        asyncio.run(main())
        """,
        str(path),
    )
    assert result.returncode == 0, result.stderr
    assert anyio.run(parent.get, b"from-child") == b"child value"
    assert parent.stats.hits == 1
    parent.close()


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    result = run_python(
        """
        import asyncio, os, sys, warnings
        from rerankit._cache import SQLiteCache

        warnings.filterwarnings("ignore", ".*fork", DeprecationWarning)
        cache = SQLiteCache(sys.argv[1])
        asyncio.run(cache.set(b"before", b"1"))  # the parent's connection is open
        pid = os.fork()
        if pid == 0:
            ok = asyncio.run(cache.get(b"before")) == b"1"
            asyncio.run(cache.set(b"child", b"2"))
            os._exit(0 if ok else 1)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        assert asyncio.run(cache.get(b"child")) == b"2"
        print("ok")
        """,
        str(tmp_path / "c.sqlite"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


# --- keys ----------------------------------------------------------------------------------

REQUEST = RerankRequest(
    model="rerank-v3.5",
    query="how do I reset my password",
    documents=["Open Settings.", "Invoices arrive monthly."],
    top_n=2,
    rank_fields=None,
    max_chunks_per_doc=None,
    max_tokens_per_doc=512,
    instruction="prefer how-to pages",
    options={"api_version": "v2", "priority": 1},
)
BASE = "https://api.cohere.com"


def key(request: RerankRequest = REQUEST, **kwargs: Any) -> bytes | None:
    kwargs.setdefault("api_base", BASE)
    provider = kwargs.pop("provider", "cohere")
    model = kwargs.pop("model", "rerank-v3.5")
    return cache_key(provider, model, request, **kwargs)


def changed(**fields: Any) -> RerankRequest:
    return msgspec.structs.replace(REQUEST, **fields)


def test_a_key_is_a_stable_digest_and_ignores_option_order() -> None:
    first = key()
    assert isinstance(first, bytes)
    assert len(first) == 32
    assert key() == first
    reordered = changed(
        options={"priority": 1, "api_version": "v2"}, documents=list(REQUEST.documents)
    )
    assert key(reordered) == first
    assert key(changed(return_documents=False)) == first  # documents are back-filled on a hit


def test_every_field_that_can_change_the_answer_changes_the_key() -> None:
    variants = [
        key(provider="cohere_compatible"),
        key(model="rerank-v3.0"),
        key(api_base="http://127.0.0.1:8080"),
        key(api_base=None),
        key(changed(query="how do I reset my password?")),
        key(changed(documents=["Open Settings.", "Invoices arrive monthly"])),
        key(changed(documents=["Invoices arrive monthly.", "Open Settings."])),
        key(changed(source_documents=[{"text": "Open Settings.", "id": 1}, "x"])),
        key(changed(rank_fields=["text"])),
        key(changed(top_n=1)),
        key(changed(top_n=None)),
        key(changed(instruction=None)),
        key(changed(max_tokens_per_doc=256)),
        key(changed(max_chunks_per_doc=3)),
        key(changed(options={"api_version": "v1", "priority": 1})),
        key(changed(options={"api_version": "v2"})),
        key(changed(options={"api_version": "v2", "priority": 1.0})),
        key(extra_body={"truncate": "END"}),
        key(drop_params=True),
        key(variant="exact-tokenizer"),
    ]
    assert None not in variants
    assert len({key(), *variants}) == len(variants) + 1


class Credentials:
    """Stands in for a credentials object passed as a provider option."""

    def __init__(self, token: str) -> None:
        self.token = token


def test_credential_objects_key_by_type_and_unencodable_options_disable_caching() -> None:
    with_secret = key(changed(options={**REQUEST.options, "aws_secret_access_key": "s3cr3t"}))
    assert with_secret is not None
    assert b"s3cr3t" not in with_secret
    one = key(changed(options={"credentials": Credentials("a")}))
    assert one is not None
    assert one == key(changed(options={"credentials": Credentials("b")}))
    assert key(changed(options={"priority": object()})) is None
    assert key(extra_body={1: "not a str key"}) is None


@pytest.mark.slow
def test_a_new_process_computes_the_same_key() -> None:
    result = run_python(
        """
        from rerankit import RerankRequest
        from rerankit._cache import cache_key

        request = RerankRequest(
            model="rerank-v3.5",
            query="how do I reset my password",
            documents=["Open Settings.", "Invoices arrive monthly."],
            top_n=2,
            max_tokens_per_doc=512,
            instruction="prefer how-to pages",
            options={"priority": 1, "api_version": "v2"},
        )
        print(cache_key("cohere", "rerank-v3.5", request, api_base="https://api.cohere.com").hex())
        """
    )
    assert result.returncode == 0, result.stderr
    first = key()
    assert first is not None
    assert result.stdout.strip() == first.hex()


# --- entries -------------------------------------------------------------------------------


def response() -> RerankResponse:
    return RerankResponse(
        results=[
            RerankResult(1, 0.9, {"text": "Open Settings."}),
            RerankResult(0, 0.25, {"title": "caller's own dict"}),
        ],
        id="req-1",
        model="rerank-v3.5",
        provider="cohere",
        usage=Usage(search_units=1),
        score_kind="probability",
        api_version="2",
        provider_meta={"batches": 2, "request_ids": ["a", "b"]},
        fallback_from=["voyage/rerank-2.5"],
        cost=0.002,
    )


def test_an_entry_round_trips_without_documents_into_fresh_objects() -> None:
    original = response()
    data = encode_entry(original)
    assert data is not None
    assert b"caller's own dict" not in data
    assert original.results[1].document == {"title": "caller's own dict"}  # left untouched
    first, second = decode_entry(data), decode_entry(data)
    assert first is not None
    assert second is not None
    expected = msgspec.structs.replace(
        original, results=[RerankResult(1, 0.9), RerankResult(0, 0.25)]
    )
    assert first == expected
    assert first.meta == original.meta
    first.results[0].document = {"text": "filled"}
    first.provider_meta["request_ids"].append("c")
    first.usage.search_units = 5
    first.fallback_from.append("local/bm25")
    assert second == expected


def test_bad_entries_decode_to_none() -> None:
    good = encode_entry(response())
    assert good is not None
    encoder = msgspec.msgpack.Encoder()

    def entry(*results: dict[str, Any], version: int = 1) -> bytes:
        return encoder.encode((version, {"results": list(results)}))

    bad = [
        b"",
        b"\xc1",
        good[:-3],
        entry({"index": 0, "relevance_score": float("nan")}),
        entry({"index": 0, "relevance_score": 0.5}, {"index": 0, "relevance_score": 0.4}),
        entry({"index": -1, "relevance_score": 0.5}),
        entry({"index": 0, "relevance_score": "high"}),
        entry({"index": 0, "relevance_score": 0.5, "document": {"text": "x"}}),
        entry({"index": 0, "relevance_score": 0.5}, version=2),
        encoder.encode({"results": []}),
    ]
    for data in bad:
        assert decode_entry(data) is None, data
    minimal = decode_entry(entry({"index": 0, "relevance_score": 0.5}))
    assert minimal == RerankResponse(results=[RerankResult(0, 0.5)])


def test_an_unencodable_response_is_not_cached() -> None:
    bad = msgspec.structs.replace(response(), provider_meta={"raw": object()})
    assert encode_entry(bad) is None
