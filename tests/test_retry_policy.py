"""The pure retry helpers: which failures retry, backoff growth and Retry-After parsing."""

from __future__ import annotations

import email.utils

import pytest

from rerankit import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
    ResponseValidationError,
    RetryPolicy,
)
from rerankit._errors import APIStatusError, status_error_class
from rerankit._retry import is_retryable, parse_retry_after, retry_delay


def status(code: int) -> APIStatusError:
    return status_error_class(code)("x", status_code=code)


@pytest.mark.parametrize("code", [408, 409, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(code: int) -> None:
    assert is_retryable(status(code))


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422, 418])
def test_client_errors_are_not_retried(code: int) -> None:
    assert not is_retryable(status(code))


def test_transport_failures_retry_and_bad_answers_do_not() -> None:
    assert is_retryable(APIConnectionError("x"))
    assert is_retryable(APITimeoutError("x"))
    assert not is_retryable(ResponseValidationError("x"))


def test_status_table() -> None:
    assert status_error_class(400) is BadRequestError
    assert status_error_class(429) is RateLimitError
    assert status_error_class(503) is InternalServerError
    assert status_error_class(418) is APIStatusError


def test_backoff_grows_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=3.0, jitter=0.25)
    no_jitter = [retry_delay(policy, attempt, rand=lambda: 0.0) for attempt in range(5)]
    assert no_jitter == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert retry_delay(policy, 1, rand=lambda: 1.0) == pytest.approx(0.75)


def test_retry_after_wins_and_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=10)
    assert retry_delay(policy, 0, retry_after=4.0) == 4.0
    assert retry_delay(policy, 0, retry_after=11.0) is None


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "junk", "retry-after": "9"}) == 9.0
    assert parse_retry_after({"retry-after": "-1"}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=1_000_000) == pytest.approx(30)
    assert parse_retry_after({"retry-after": date}, now=2_000_000) == 0.0
