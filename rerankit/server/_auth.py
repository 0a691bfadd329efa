"""Client keys: ``Authorization: Bearer <key>``, compared in constant time, never logged."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

__all__ = ["KeyRing"]


class KeyRing:
    """The client keys a server accepts; each is known in logs only as ``key-<n>``.

    Keys are kept as SHA-256 digests and a presented key is compared with every one of them
    with ``hmac.compare_digest``, so neither its content nor which key matched shows in timing.
    """

    __slots__ = ("_digests",)

    def __init__(self, keys: Sequence[str]) -> None:
        self._digests = [
            (f"key-{number}", hashlib.sha256(key.encode()).digest())
            for number, key in enumerate(dict.fromkeys(keys), 1)
        ]

    def __repr__(self) -> str:
        return f"KeyRing(<{len(self._digests)} keys>)"

    @property
    def enabled(self) -> bool:
        """Whether requests need a key at all."""
        return bool(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def identify(self, authorization: str | None) -> str | None:
        """The id of the key in an ``Authorization`` header value, or ``None`` if it has none
        of the keys."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for key_id, expected in self._digests:
            if hmac.compare_digest(digest, expected):
                found = key_id
        return found
