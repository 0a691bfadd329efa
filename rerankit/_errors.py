"""The whole rerankit error tree and the one table that maps HTTP statuses to classes."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProviderConflictError",
    "ProviderError",
    "ProviderLoadError",
    "RateLimitError",
    "RerankitError",
    "RerankitWarning",
    "ResponseValidationError",
    "UnknownProviderError",
    "UnprocessableEntityError",
    "UnsupportedParameterError",
    "status_error_class",
]


class RerankitError(Exception):
    """Base class of every error rerankit raises."""


class RerankitWarning(UserWarning):
    """Warned when rerankit changes a call on the caller's behalf (``drop_params=True``)."""


class ConfigurationError(RerankitError, ValueError):
    """Bad model string, missing key, bad option or bad input, found before any request is sent."""


class UnsupportedParameterError(ConfigurationError):
    """A parameter the provider (or this model) cannot honour; ``drop_params=True`` drops it."""

    def __init__(self, message: str, *, provider: str, model: str, parameter: str) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.parameter = parameter


class ProviderError(RerankitError):
    """A provider could not be found or loaded."""


class UnknownProviderError(ProviderError, LookupError):
    """No provider is registered under the requested name."""

    def __init__(self, message: str, *, name: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.suggestion = suggestion


class ProviderConflictError(ProviderError):
    """Two installed distributions register the same provider name."""

    def __init__(self, message: str, *, name: str, distributions: tuple[str, ...]) -> None:
        super().__init__(message)
        self.name = name
        self.distributions = distributions


class ProviderLoadError(ProviderError):
    """A provider plugin failed to import or is not a valid provider class."""

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name


class APIError(RerankitError):
    """A call to a provider failed; carries the provider, model and request id when known."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.request_id = request_id
        self.batch: int | None = None
        """The batch (0-based) this error failed, when a call was split into several."""


class APIConnectionError(APIError):
    """The provider could not be reached, or the connection broke mid-request."""


class APITimeoutError(APIConnectionError, TimeoutError):
    """The provider did not answer within the timeout."""


class ResponseValidationError(APIError):
    """The provider answered something rerankit cannot trust (bad JSON, bad index, bad score)."""


class APIStatusError(APIError):
    """The provider answered with a non-success HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: str | None = None,
        retry_after: float | None = None,
        provider: str | None = None,
        model: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, model=model, request_id=request_id)
        self.status_code = status_code
        self.body = body
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """HTTP 400."""


class AuthenticationError(APIStatusError):
    """HTTP 401."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403."""


class NotFoundError(APIStatusError):
    """HTTP 404."""


class UnprocessableEntityError(APIStatusError):
    """HTTP 422."""


class RateLimitError(APIStatusError):
    """HTTP 429."""


class InternalServerError(APIStatusError):
    """HTTP 5xx."""


_STATUS_CLASSES: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The error class for an HTTP status: the one place this mapping lives."""
    if status >= 500:
        return InternalServerError
    return _STATUS_CLASSES.get(status, APIStatusError)
