"""Where evaluation answers are kept: a SQLite cache per dataset and model, on by default.

Besides the responses (``rerankit._cache`` keys), the cache holds each query's measured latency
under a key of its own, so a run served from the cache still reports the latency it measured.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence

import msgspec

from rerankit._cache import ResponseCache, SQLiteCache
from rerankit._settings import cache_home

__all__ = ["eval_cache", "latency_key", "load_latency", "save_latency"]

_LATENCY = msgspec.msgpack.Decoder(float)
_KEY = msgspec.msgpack.Encoder(order="deterministic")


def eval_cache(dataset: str, model: str, path: str | os.PathLike[str] | None) -> SQLiteCache:
    """The cache for ``model`` on ``dataset``: ``path`` when given (one file may serve every
    model: keys name the model), else ``<cache_home>/eval/<dataset>/<model>.sqlite``."""
    if path is None:
        path = cache_home() / "eval" / _slug(dataset) / f"{_slug(model)}.sqlite"
    return SQLiteCache(path, max_entries=None)


def latency_key(model: str, query: str, documents: Sequence[str]) -> bytes:
    """The key of one query's latency with ``model`` on these candidates."""
    data = _KEY.encode(("rerankit.eval.latency", 1, model, query, list(documents)))
    return hashlib.blake2b(data, digest_size=32).digest()


async def load_latency(cache: ResponseCache, key: bytes) -> float | None:
    """A latency stored by an earlier run; ``None`` when there is none (or it is unreadable)."""
    data = await cache.get(key)
    if data is None:
        return None
    try:
        return _LATENCY.decode(data)
    except msgspec.DecodeError:
        return None


async def save_latency(cache: ResponseCache, key: bytes, seconds: float) -> None:
    await cache.set(key, msgspec.msgpack.encode(seconds))


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "_"
