"""What a client is told when a rerank call fails: the one table from rerankit errors to answers.

Clients learn the public model name, a status, what kind of failure it was and the request id;
never the upstream's model, address or own words (those go to the server log, under the id).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from rerankit._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    RateLimitError,
    RerankitError,
    ResponseValidationError,
    UnsupportedParameterError,
)
from rerankit.server._wire import RequestError

__all__ = ["to_request_error"]


def to_request_error(
    exc: RerankitError, model: str, request_id: str, hidden: Iterable[str] = ()
) -> RequestError:
    """The answer for ``exc``, raised while serving public model ``model``.

    The client's own input: 400 (422 for a parameter this model cannot honour), with rerankit's
    reason, the ``hidden`` upstream model strings in it replaced by ``model``. Upstream
    failures: 504 for a timeout, 503 when the upstream is rate limited or unavailable (with its
    ``Retry-After``), 502 for anything else it did (bad status, broken answer, unreachable);
    an upstream 400 or 422 keeps its status: the request itself was refused.
    """
    if isinstance(exc, UnsupportedParameterError):
        return RequestError(
            422, f"invalid request: model {model!r} does not support {exc.parameter!r}"
        )
    if isinstance(exc, ConfigurationError):
        return RequestError(400, f"invalid request: {_public(str(exc), model, hidden)}")
    status, kind, headers = _upstream_failure(exc)
    message = f"upstream error: the upstream reranker of model {model!r} {kind}"
    return RequestError(status, f"{message} (request id {request_id})", headers)


def _upstream_failure(exc: RerankitError) -> tuple[int, str, dict[str, str] | None]:
    """The status, the kind of failure in a few words, and headers for the client."""
    if isinstance(exc, APITimeoutError):
        return 504, "did not answer in time", None
    if isinstance(exc, APIConnectionError):
        return 502, "could not be reached", None
    if isinstance(exc, ResponseValidationError):
        return 502, "sent an answer rerankit cannot use", None
    if not isinstance(exc, APIStatusError):
        return 502, "failed", None
    if exc.status_code in (400, 422):
        return exc.status_code, "rejected the request", None
    if isinstance(exc, RateLimitError) or exc.status_code == 503:
        headers = None
        if exc.retry_after is not None:
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        kind = "is rate limited" if isinstance(exc, RateLimitError) else "is unavailable"
        return 503, kind, headers
    return 502, "failed", None


def _public(message: str, model: str, hidden: Iterable[str]) -> str:
    """``message`` with each hidden model string (``'provider/name'`` or ``'name'``, as
    rerankit's messages quote them) replaced by the public name."""
    for name in hidden:
        for form in (name, name.partition("/")[2]):
            if form:
                message = message.replace(repr(form), repr(model))
    return message
