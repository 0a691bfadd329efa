"""Response caches: an in-process LRU, and a SQLite file that processes on one machine share.

A client looks a call up under ``cache_key(...)``. An entry (``encode_entry``) holds the ranking
without documents; ``decode_entry`` gives fresh objects, and the client back-fills the documents
of the call that hit.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

import msgspec

from rerankit._errors import ConfigurationError
from rerankit._images import ImageText, keyed_sources
from rerankit._input import check_positive_int
from rerankit._lifetimes import PerProcess
from rerankit._offload import run_sized
from rerankit._redact import is_secret_name
from rerankit._types import RerankRequest, RerankResponse, RerankResult

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "CacheStats",
    "MemoryCache",
    "ResponseCache",
    "SQLiteCache",
    "acache_key",
    "cache_key",
    "decode_entry",
    "encode_entry",
    "lookup",
    "store",
]

logger = logging.getLogger("rerankit")
_T = TypeVar("_T")

_KEY_VERSION = 1
_BUSY_TIMEOUT = 5.0
_ENCODE_ERRORS = (TypeError, ValueError, OverflowError, msgspec.MsgspecError)


def _key_hook(value: object) -> object:
    """An image document's text keys as its text and its image's digest (of its bytes, or
    of its URL), never a file's path."""
    if type(value) is ImageText:
        return ("rerankit.image", str(value), value.image.digest)
    raise TypeError(f"cannot key a {type(value).__name__}")


_key_encoder = msgspec.msgpack.Encoder(order="deterministic", enc_hook=_key_hook)
_SCHEMA = """
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS responses
    (key BLOB PRIMARY KEY, value BLOB NOT NULL, stored REAL NOT NULL);
CREATE INDEX IF NOT EXISTS responses_stored ON responses (stored);
"""

KEY_INLINE_CHARS = 1 << 20
"""Characters of query and documents keyed inline: ~1.3 ns (ASCII) to ~4.3 ns (CJK) each, so
at most ~5 ms; larger calls are keyed on a worker thread."""

ENTRY_INLINE_BYTES = 1 << 19
"""Cache values decoded inline (~10 ns a byte, ~5 ms at most); larger ones are decoded on a
worker thread."""

ENTRY_INLINE_RESULTS = 1 << 15
"""Results encoded into a cache value inline (~0.13 µs each, ~4 ms at most)."""


class CacheStats(msgspec.Struct, frozen=True, kw_only=True):
    """Lookups one cache object answered (``hits``) and did not (``misses``); its ``entries``."""

    hits: int = 0
    misses: int = 0
    entries: int = 0


@runtime_checkable
class ResponseCache(Protocol):
    """Where a client keeps responses: ``bytes`` values under ``bytes`` keys.

    ``get`` counts each lookup as a hit or a miss; an expired, corrupt or unreadable entry is a
    miss, never an error.
    """

    async def get(self, key: bytes) -> bytes | None: ...

    async def set(self, key: bytes, value: bytes) -> None: ...

    async def clear(self) -> None: ...

    @property
    def stats(self) -> CacheStats: ...


def cache_key(
    provider: str,
    model: str,
    request: RerankRequest,
    *,
    api_base: str | None = None,
    extra_body: Mapping[str, Any] | None = None,
    drop_params: bool = False,
    variant: object = None,
) -> bytes | None:
    """A 32-byte key naming one call's answer, the same in every process and rerankit version
    that shares this key format; ``None`` when a value cannot be encoded (do not cache the call).

    The key is a BLAKE2b digest of: provider, model, ``api_base``, the query, the document texts
    as sent (and dict documents whole, when any; an image by its bytes, not its path),
    ``rank_fields``, ``top_n``, ``instruction``, ``max_tokens_per_doc``, ``max_chunks_per_doc``,
    the provider options (dict keys sorted), ``extra_body``, ``drop_params`` and ``variant``
    (anything else the answer depends on). The API key, headers, timeouts and retries are not
    part of it; a credential passed as an option
    only enters the one-way digest. Build it before anything changes ``request``.
    """
    r, options = request, {name: _option(name, value) for name, value in request.options.items()}
    sources = r.source_documents
    if sources is not None:
        sources = keyed_sources(sources, r.documents)
    parts = (
        ("rerankit.cache", _KEY_VERSION, provider, model, api_base, r.query, r.documents),
        (sources, r.rank_fields, r.top_n, r.instruction, r.max_tokens_per_doc),
        (r.max_chunks_per_doc, options, None if extra_body is None else dict(extra_body)),
        (bool(drop_params), variant),
    )
    try:
        data = _key_encoder.encode(parts)
    except _ENCODE_ERRORS:
        return None
    import hashlib

    return hashlib.blake2b(data, digest_size=32).digest()


async def acache_key(
    provider: str,
    model: str,
    request: RerankRequest,
    *,
    api_base: str | None = None,
    extra_body: Mapping[str, Any] | None = None,
    drop_params: bool = False,
    variant: object = None,
) -> bytes | None:
    """``cache_key``, on a worker thread for calls of more than ``KEY_INLINE_CHARS``
    characters (dict documents count twice: their texts and themselves are both keyed)."""
    work = len(request.query) + sum(map(len, request.documents))
    if request.source_documents is not None:
        work *= 2
    return await run_sized(
        work,
        KEY_INLINE_CHARS,
        cache_key,
        provider,
        model,
        request,
        api_base=api_base,
        extra_body=extra_body,
        drop_params=drop_params,
        variant=variant,
    )


def _option(name: str, value: Any) -> Any:
    """A credential object (a secret-looking name whose value is not plain data) keys by type."""
    if is_secret_name(name):
        try:
            _key_encoder.encode(value)
        except _ENCODE_ERRORS:
            return ("<object>", type(value).__module__, type(value).__qualname__)
    return value


_entry_encoder = msgspec.msgpack.Encoder()
_entry_decoder = msgspec.msgpack.Decoder(tuple[Literal[1], RerankResponse])


def encode_entry(response: RerankResponse) -> bytes | None:
    """``response`` as a cache value, without documents; ``None`` if it cannot be encoded."""
    results = [RerankResult(result.index, result.relevance_score) for result in response.results]
    try:
        return _entry_encoder.encode((1, msgspec.structs.replace(response, results=results)))
    except _ENCODE_ERRORS:
        return None


def decode_entry(data: bytes) -> RerankResponse | None:
    """A new response (results without documents) from a cache value; ``None`` if it is bad."""
    try:
        response = _entry_decoder.decode(data)[1]
    except (msgspec.MsgspecError, ValueError, TypeError, RecursionError):
        return None
    results = response.results
    if len({result.index for result in results}) != len(results) or not all(
        result.index >= 0 and result.document is None and math.isfinite(result.relevance_score)
        for result in results
    ):
        return None
    return response


class MemoryCache:
    """An in-process LRU of at most ``max_entries``; with ``ttl``, entries expire that many
    seconds after they are stored. Safe to share between threads and event loops.

    ``clock`` (seconds, monotonic) is for tests.
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        ttl: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        checked = check_positive_int("max_entries", max_entries)
        if checked is None:
            raise ConfigurationError("max_entries must be an int >= 1, got None")
        self.max_entries = checked
        self.ttl = _check_ttl(ttl)
        self._clock = clock
        self._data: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()
        self._lock = PerProcess(threading.Lock)  # one held at fork would never be released
        self._hits = self._misses = 0

    def __repr__(self) -> str:
        return f"MemoryCache(max_entries={self.max_entries}, ttl={self.ttl!r})"

    @property
    def stats(self) -> CacheStats:
        return CacheStats(hits=self._hits, misses=self._misses, entries=len(self._data))

    async def get(self, key: bytes) -> bytes | None:
        with self._locked():
            item = self._data.get(key)
            if item is not None:
                if self.ttl is None or self._clock() < item[1]:
                    self._data.move_to_end(key)
                    self._hits += 1
                    return item[0]
                del self._data[key]
            self._misses += 1
            return None

    async def set(self, key: bytes, value: bytes) -> None:
        expires = math.inf if self.ttl is None else self._clock() + self.ttl
        with self._locked():
            self._data[key] = (value, expires)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    async def clear(self) -> None:
        """Remove every entry (the hit and miss counts stay)."""
        with self._locked():
            self._data.clear()

    def _locked(self) -> threading.Lock:
        return self._lock.get()


class _Handle:
    """A process's SQLite connection and its lock (a forked child opens its own: the parent's
    connection must not be used or closed there)."""

    __slots__ = ("db", "lock")

    def __init__(self) -> None:
        self.db: sqlite3.Connection | None = None
        self.lock = threading.Lock()


class SQLiteCache:
    """A cache in a SQLite file that processes on one machine share (WAL mode, local disk).

    With ``ttl``, entries expire that many seconds after they are stored. Beyond
    ``max_entries``, the oldest stored entries are removed, checked every ``evict_every`` sets.
    All SQLite work runs in worker threads, never on the event loop. A corrupt entry is a miss
    (and is deleted); an unusable file is logged and every lookup misses. ``stats.entries`` is
    the row count when last counted (on opening and at each eviction check). ``clock`` (seconds
    since the epoch, shared by processes) is for tests.
    """

    evict_every = 100

    def __init__(
        self,
        path: str | os.PathLike[str],
        ttl: float | None = None,
        max_entries: int | None = 100_000,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = os.path.expanduser(os.fspath(path))
        self.ttl = _check_ttl(ttl)
        self.max_entries = check_positive_int("max_entries", max_entries)
        self._clock = clock
        self._handle = PerProcess(_Handle)
        self._hits = self._misses = self._entries = self._sets = 0
        self._warned = False

    def __repr__(self) -> str:
        return f"SQLiteCache({self.path!r}, ttl={self.ttl!r}, max_entries={self.max_entries!r})"

    @property
    def stats(self) -> CacheStats:
        return CacheStats(hits=self._hits, misses=self._misses, entries=self._entries)

    async def get(self, key: bytes) -> bytes | None:
        return await _in_thread(self._get, key)

    async def set(self, key: bytes, value: bytes) -> None:
        await _in_thread(self._set, key, value)

    async def clear(self) -> None:
        """Remove every entry, for every process sharing the file; raises if SQLite fails."""
        await _in_thread(self._clear)

    async def aclose(self) -> None:
        """``close()`` off the event loop."""
        await _in_thread(self.close)

    def close(self) -> None:
        """Close the connection; the cache reopens it if used again."""
        handle = self._handle.get()
        with handle.lock:
            db, handle.db = handle.db, None
            if db is not None:
                db.close()

    def _get(self, key: bytes) -> bytes | None:
        import sqlite3
        import zlib

        with self._locked():
            value = None
            try:
                db = self._connection()
                row = db.execute("SELECT value, stored FROM responses WHERE key = ?", (key,))
                found, stored = row.fetchone() or (None, None)
                if (
                    isinstance(found, bytes)
                    and len(found) >= 4
                    and isinstance(stored, float)
                    and zlib.crc32(memoryview(found)[4:]) == int.from_bytes(found[:4], "big")
                    and (self.ttl is None or self._clock() < stored + self.ttl)
                ):
                    value = found[4:]
                elif found is not None or stored is not None:  # corrupt or expired
                    db.execute("DELETE FROM responses WHERE key = ? AND stored IS ?", (key, stored))
            except (sqlite3.Error, OSError) as exc:
                self._failed(exc)
            if value is None:
                self._misses += 1
            else:
                self._hits += 1
            return value

    def _set(self, key: bytes, value: bytes) -> None:
        import sqlite3
        import zlib

        framed = zlib.crc32(value).to_bytes(4, "big") + value
        with self._locked():
            try:
                db = self._connection()
                db.execute(
                    "INSERT OR REPLACE INTO responses (key, value, stored) VALUES (?, ?, ?)",
                    (key, framed, float(self._clock())),
                )
                self._sets += 1
                if (self._sets - 1) % self.evict_every == 0:
                    self._evict(db)
            except (sqlite3.Error, OSError) as exc:
                self._failed(exc)

    def _evict(self, db: sqlite3.Connection) -> None:
        """Delete expired entries and the oldest beyond ``max_entries``; count the rest."""
        with db:  # commits, or rolls back on an error
            db.execute("BEGIN IMMEDIATE")
            if self.ttl is not None:
                db.execute("DELETE FROM responses WHERE stored <= ?", (self._clock() - self.ttl,))
            count: int = db.execute("SELECT count(*) FROM responses").fetchone()[0]
            if self.max_entries is not None and count > self.max_entries:
                db.execute(
                    "DELETE FROM responses WHERE key IN "
                    "(SELECT key FROM responses ORDER BY stored LIMIT ?)",
                    (count - self.max_entries,),
                )
                count = self.max_entries
        self._entries = count

    def _clear(self) -> None:
        with self._locked():
            self._connection().execute("DELETE FROM responses")
            self._entries = 0

    def _locked(self) -> threading.Lock:
        """The lock guarding this process's connection."""
        return self._handle.get().lock

    def _connection(self) -> sqlite3.Connection:
        """This process's connection, opened on first use (call with the lock held)."""
        handle = self._handle.get()
        if handle.db is None:
            import sqlite3

            if self.path != ":memory:" and not self.path.startswith("file:"):
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            try:
                db.executescript(_SCHEMA)
                self._entries = db.execute("SELECT count(*) FROM responses").fetchone()[0]
            except BaseException:
                db.close()
                raise
            handle.db = db
        return handle.db

    def _failed(self, exc: Exception) -> None:
        log = logger.debug if self._warned else logger.warning
        self._warned = True
        log("rerankit cache %s is unusable, calls go to the provider: %r", self.path, exc)


async def _in_thread(function: Callable[..., _T], *args: Any) -> _T:
    from anyio import to_thread

    return await to_thread.run_sync(function, *args)


def _check_ttl(ttl: object) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl < math.inf:
        raise ConfigurationError(f"ttl must be a number of seconds > 0 or None, got {ttl!r}")
    return float(ttl)


async def lookup(cache: ResponseCache, key: bytes | None) -> RerankResponse | None:
    """The cached answer for ``key`` (fresh objects, without documents), or ``None``; a cache
    that fails to read is logged and treated as a miss."""
    if key is None:
        return None
    try:
        data = await cache.get(key)
    except Exception:
        logger.warning("the response cache failed to read; calling the provider", exc_info=True)
        return None
    return (
        None if data is None else await run_sized(len(data), ENTRY_INLINE_BYTES, decode_entry, data)
    )


async def store(cache: ResponseCache, key: bytes, response: RerankResponse) -> None:
    """Keep ``response`` under ``key``; a cache that fails to write is logged, never raised."""
    data = await run_sized(len(response.results), ENTRY_INLINE_RESULTS, encode_entry, response)
    if data is None:
        return
    try:
        await cache.set(key, data)
    except Exception:
        logger.warning("the response cache failed to store an answer", exc_info=True)
