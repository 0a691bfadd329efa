"""Which HTTP status a failed rerank call gets: the one table from rerankit errors to answers."""

from __future__ import annotations

import math

from rerankit._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    RateLimitError,
    RerankitError,
    UnsupportedParameterError,
)
from rerankit.server._wire import RequestError

__all__ = ["to_request_error"]


def to_request_error(exc: RerankitError, model: str) -> RequestError:
    """The answer for ``exc``, raised while serving public model ``model``.

    The client's own input: 400 (422 for a parameter this model cannot honour). Upstream
    failures: 504 for a timeout, 503 when the upstream is rate limited or unavailable (with its
    ``Retry-After``), 502 for anything else it did (bad status, broken answer, unreachable).
    Upstream 400 and 422 pass through: the request itself was refused.
    """
    if isinstance(exc, UnsupportedParameterError):
        return RequestError(422, f"invalid request: {exc}")
    if isinstance(exc, ConfigurationError):
        return RequestError(400, f"invalid request: {exc}")
    if isinstance(exc, APITimeoutError):
        return RequestError(504, f"upstream timeout: model {model!r} did not answer in time")
    if isinstance(exc, APIConnectionError):
        return RequestError(502, f"upstream unreachable: model {model!r}: {exc}")
    if isinstance(exc, APIStatusError):
        if exc.status_code in (400, 422):
            return RequestError(exc.status_code, f"upstream rejected the request: {exc}")
        if isinstance(exc, RateLimitError) or exc.status_code == 503:
            headers = None
            if exc.retry_after is not None:
                headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
            return RequestError(503, f"upstream unavailable: model {model!r}: {exc}", headers)
        return RequestError(502, f"upstream error: model {model!r}: {exc}")
    return RequestError(502, f"upstream error: model {model!r}: {exc}")
