"""``FaultInjector``: a fake vendor API that fails a share of its requests, the ways real ones do.

It wraps any handler (``CohereFake``, ``VoyageFake``, ...) and, with a seeded random stream,
answers a share of requests with a fault instead of (or made from) the handler's answer. The
kinds, and what a rerankit client raises when a kind is a call's last attempt:

- ``rate_limit``: 429 with ``Retry-After`` in seconds (``RateLimitError``);
- ``rate_limit_ms``: 429 with ``retry-after-ms`` (``RateLimitError``);
- ``server_error``: 500 (``InternalServerError``);
- ``unavailable``: 503, with ``Retry-After`` half of the time (``InternalServerError``);
- ``reset``: the connection dropped without an answer (``APIConnectionError``);
- ``truncated``: the right answer, cut short of its ``Content-Length`` (``APIConnectionError``);
- ``hang``: the right answer after ``hang`` seconds, past the client's timeout
  (``APITimeoutError``);
- ``slow``: the right answer after a short delay (no error: the call succeeds);
- ``malformed``: the right answer's JSON cut short, in a complete HTTP body
  (``ResponseValidationError``);
- ``bad_index``: the right answer with one index out of range or repeated
  (``ResponseValidationError``).

``FAULT_ERRORS`` holds the last column. Delays are awaited in the server's loop, so a slow or
hanging answer never holds up other requests. ``injected`` counts each kind served; with
``track="x-call-id"`` the injector also keeps a journal of what it did for each value of that
request header (``"ok"`` for a plain answer), so a test can check every call against the
attempts the server saw. ``open_tcp_connections`` counts this process's sockets to a port.
"""

from __future__ import annotations

import os
import random
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from rerankit._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    InternalServerError,
    RateLimitError,
    ResponseValidationError,
)
from rerankit.testing._server import Handler, ReceivedRequest, Reply

__all__ = ["FAULT_ERRORS", "FAULT_KINDS", "FaultInjector", "open_tcp_connections"]

FAULT_ERRORS: dict[str, type[APIError] | None] = {
    "rate_limit": RateLimitError,
    "rate_limit_ms": RateLimitError,
    "server_error": InternalServerError,
    "unavailable": InternalServerError,
    "reset": APIConnectionError,
    "truncated": APIConnectionError,
    "hang": APITimeoutError,
    "slow": None,
    "malformed": ResponseValidationError,
    "bad_index": ResponseValidationError,
}
"""The error a rerankit client raises for each fault kind when it is the call's last attempt
(``None``: the answer is right, only late)."""

FAULT_KINDS: tuple[str, ...] = tuple(FAULT_ERRORS)
"""Every fault kind, in the order of the table above."""

PASSED = "ok"
"""The journal's entry for a request answered by the wrapped handler unchanged."""

_OUT_OF_RANGE = 1_000_000
"""An index past any request's documents (vendors take at most 10,000 or so)."""


class FaultInjector:
    """A ``FakeServer`` handler: ``handler``'s answers, with a share ``rate`` of them faults.

    Args:
        handler: the fake vendor API that gives the right answers.
        rate: the share of requests answered with a fault, from 0 to 1.
        mix: relative weights of the fault kinds (``FAULT_KINDS``); kinds left out are never
            injected. Default: every kind, equally.
        seed: seeds the random stream that picks faults, delays and cuts.
        retry_after: the range of waits, in seconds, that 429 and 503 answers ask for.
        slow: the range of delays, in seconds, of a ``slow`` answer.
        hang: the delay, in seconds, of a ``hang`` answer; make it longer than the client's
            timeout (the client is expected to give up and close the connection first).
        track: a request header naming each call; the journal then records every attempt.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        rate: float = 0.1,
        mix: Mapping[str, float] | None = None,
        seed: int | None = 0,
        retry_after: tuple[float, float] = (0.0, 0.05),
        slow: tuple[float, float] = (0.01, 0.1),
        hang: float = 30.0,
        track: str | None = None,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {rate!r}")
        weights = dict.fromkeys(FAULT_KINDS, 1.0) if mix is None else dict(mix)
        unknown = sorted(set(weights) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
        if any(not weight >= 0 for weight in weights.values()):
            raise ValueError("fault weights must be numbers >= 0")
        self._kinds = [kind for kind, weight in weights.items() if weight > 0]
        self._weights = [weights[kind] for kind in self._kinds]
        if rate > 0 and not self._kinds:
            raise ValueError("a fault rate above 0 needs at least one kind with a weight above 0")
        for name, (low, high) in (("retry_after", retry_after), ("slow", slow)):
            if not 0 <= low <= high:
                raise ValueError(f"{name} must be a range (low, high) with 0 <= low <= high")
        self.handler = handler
        self.rate = rate
        self.random = random.Random(seed)
        self.retry_after = retry_after
        self.slow = slow
        self.hang = hang
        self.track = None if track is None else track.lower()
        self.requests = 0
        """Requests seen."""
        self.passed = 0
        """Requests answered by ``handler`` unchanged."""
        self.injected: Counter[str] = Counter()
        """Faults served, by kind."""
        self._journal: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, request: ReceivedRequest) -> Reply:
        self.requests += 1
        kind = self._pick()
        if kind is None:
            reply = self.handler(request)
        else:
            kind, reply = self._fault(kind, request)
        if kind is None:
            self.passed += 1
        else:
            self.injected[kind] += 1
        if self.track is not None:
            call = request.headers.get(self.track)
            if call is not None:
                with self._lock:
                    self._journal.setdefault(call, []).append(kind or PASSED)
        return reply

    def take_journal(self) -> dict[str, list[str]]:
        """What was served to each tracked call since the last take (then forgotten), in order:
        a fault kind, or ``"ok"``."""
        with self._lock:
            journal, self._journal = self._journal, {}
        return journal

    def take_attempts(self, call: str) -> list[str]:
        """What was served to the tracked ``call`` so far (then forgotten), in order."""
        with self._lock:
            return self._journal.pop(call, [])

    def stats(self) -> dict[str, int]:
        """``requests``, ``passed`` and the count of every fault kind, for reports."""
        return {
            "requests": self.requests,
            "passed": self.passed,
            **{kind: self.injected[kind] for kind in FAULT_KINDS},
        }

    def _pick(self) -> str | None:
        rng = self.random
        if not self.rate or rng.random() >= self.rate:
            return None
        return rng.choices(self._kinds, self._weights)[0]

    def _fault(self, kind: str, request: ReceivedRequest) -> tuple[str | None, Reply]:
        """The reply for ``kind``, and ``kind``; or the handler's answer unchanged, and ``None``,
        when that answer is an error or has nothing to spoil."""
        rng = self.random
        if kind in ("rate_limit", "rate_limit_ms", "unavailable"):
            wait = rng.uniform(*self.retry_after)
            if kind == "rate_limit":
                return kind, _error(429, "rate limited", {"Retry-After": f"{wait:.3f}"})
            if kind == "rate_limit_ms":
                return kind, _error(429, "rate limited", {"retry-after-ms": f"{wait * 1000:.0f}"})
            headers = {"Retry-After": f"{wait:.3f}"} if rng.random() < 0.5 else {}
            return kind, _error(503, "service unavailable", headers)
        if kind == "server_error":
            return kind, _error(500, "internal server error")
        if kind == "reset":
            return kind, Reply(reset=True)
        right = self.handler(request)
        if right.status != 200 or right.reset or right.truncate or right.body is None:
            return None, right
        if kind == "truncated":
            return kind, _replace(right, truncate=True)
        if kind == "hang":
            return kind, _replace(right, delay=right.delay + self.hang)
        if kind == "slow":
            return kind, _replace(right, delay=right.delay + rng.uniform(*self.slow))
        body = right.body if isinstance(right.body, bytes) else msgspec.json.encode(right.body)
        spoiled = _bad_index(body, rng) if kind == "bad_index" else _cut(body, rng)
        return (None, right) if spoiled is None else (kind, _replace(right, body=spoiled))


def _cut(body: bytes, rng: random.Random) -> bytes | None:
    """``body`` cut short at a random byte: JSON no decoder can read (for an object or list)."""
    return body[: rng.randrange(1, len(body))] if len(body) >= 2 else None


def _bad_index(body: bytes, rng: random.Random) -> bytes | None:
    """``body`` with one result's index out of range, or (when it has two) repeated."""
    try:
        data: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    results = _results(data)
    if not results:
        return None
    if len(results) >= 2 and rng.random() < 0.5:
        first, other = results[0], results[rng.randrange(1, len(results))]
        other["index"] = first["index"]
    else:
        results[rng.randrange(len(results))]["index"] = _OUT_OF_RANGE + rng.randrange(1000)
    return msgspec.json.encode(data)


def _results(data: Any, depth: int = 0) -> list[dict[str, Any]] | None:
    """The first list of objects with an integer ``index`` in ``data`` (a vendor's results)."""
    if depth > 4:
        return None
    if isinstance(data, list):
        if data and all(isinstance(x, dict) and isinstance(x.get("index"), int) for x in data):
            return data
        children: list[Any] = data
    elif isinstance(data, dict):
        children = list(data.values())
    else:
        return None
    for child in children:
        found = _results(child, depth + 1)
        if found:
            return found
    return None


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body={"message": f"{message} (injected)"}, headers=headers or {})


def _replace(reply: Reply, **changes: Any) -> Reply:
    return msgspec.structs.replace(reply, **changes)


def open_tcp_connections(port: int, *, side: Literal["client", "server"] = "client") -> int:
    """This process's open TCP sockets connected to ``port`` (``side="client"``), or accepted
    on it (``side="server"``), listening sockets aside. Linux only: reads ``/proc``.

    A socket the process has closed no longer counts, even while the kernel keeps it in
    ``TIME_WAIT``; one the peer closed but this process did not (``CLOSE_WAIT``) still does.
    """
    inodes: set[str] = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since the listing
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    column = 2 if side == "client" else 1
    wanted = f":{port:04X}"
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for fields in _rows(table):
            listening = fields[3] == "0A"
            if fields[9] in inodes and fields[column].endswith(wanted) and not listening:
                count += 1
    return count


def _rows(table: str) -> list[list[str]]:
    """The rows of a ``/proc/net/tcp``-style table, split in fields (none when it is missing)."""
    try:
        with open(table) as lines:
            return [line.split() for line in lines.readlines()[1:]]
    except FileNotFoundError:
        return []
