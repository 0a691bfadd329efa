"""The server's log lines: an access log, and secret-looking query parameters masked in all.

A client may send its key as ``?api_key=...`` (refused, but logged): every line the server's
loggers write has such values replaced by ``***``.
"""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from rerankit._redact import SecretLogFilter, mask_query_secrets

__all__ = ["AccessLogger", "mask_log_secrets"]

_LOGGERS = ("rerankit.server", "rerankit.server.access", "aiohttp.server", "aiohttp.web")
"""The loggers a running server writes to: its own and aiohttp.web's."""


class AccessLogger(AbstractAccessLogger):
    """One line per request: address, request line (secrets in its query masked), status, body
    size and seconds. Never a header: keys travel in headers."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        version = request.version
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.6f',
            request.remote or "-",
            request.method,
            mask_query_secrets(request.path_qs),
            version.major,
            version.minor,
            response.status,
            response.body_length,
            time,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


_FILTER = SecretLogFilter()


def mask_log_secrets() -> None:
    """Mask secret-looking query parameters in every line the server's loggers write (once
    per process; calling it again changes nothing)."""
    for name in _LOGGERS:
        log = logging.getLogger(name)
        if _FILTER not in log.filters:
            log.addFilter(_FILTER)
