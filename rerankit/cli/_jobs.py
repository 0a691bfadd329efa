"""Batch jobs as JSON Lines: the input line format, job keys, and the result lines written."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from rerankit._errors import APIError, APIStatusError
from rerankit._types import RerankResponse

__all__ = ["Job", "InvalidJob", "JobKey", "error_line", "job_key", "parse_job", "success_line"]

JobKey = tuple[str, str | int]
"""How a job is known across runs: ``("id", <its id>)``, else ``("line", <line number>)``."""


class Job(msgspec.Struct, forbid_unknown_fields=True):
    """One input line: ``{"query": ..., "documents": [...], "top_n"?: N, "id"?: ...}``."""

    query: str
    documents: list[str | dict[str, Any]]
    top_n: Annotated[int, msgspec.Meta(ge=1)] | None = None
    id: str | int | None = None


class InvalidJob(Exception):
    """An input line that is not a valid job; ``job_id`` is its id if one could be read."""

    def __init__(self, message: str, job_id: str | int | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


_decoder = msgspec.json.Decoder(Job)
_encoder = msgspec.json.Encoder()


def parse_job(line: bytes) -> Job:
    """The job on one input line; raises ``InvalidJob`` with the reason."""
    try:
        return _decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise InvalidJob(f"invalid job: {exc}", _lenient_id(line)) from None


def _lenient_id(line: bytes) -> str | int | None:
    try:
        value = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return None
    job_id = value.get("id") if isinstance(value, dict) else None
    return job_id if isinstance(job_id, (str, int)) and not isinstance(job_id, bool) else None


def job_key(job_id: str | int | None, line: int) -> JobKey:
    """A job's key: its ``id`` when it has one, else its line number."""
    return ("line", line) if job_id is None else ("id", job_id)


def success_line(line: int, job_id: str | int | None, response: RerankResponse) -> bytes:
    """``{"line", "id"?, "results", "model", "provider", "usage"?, "request_id"?, ...}``."""
    record: dict[str, Any] = {"line": line}
    if job_id is not None:
        record["id"] = job_id
    record["results"] = response.results
    record["model"] = response.model
    record["provider"] = response.provider
    usage = msgspec.to_builtins(response.usage)
    if usage:
        record["usage"] = usage
    if response.id is not None:
        record["request_id"] = response.id
    if response.fallback_from:
        record["fallback_from"] = response.fallback_from
    return _encoder.encode(record) + b"\n"


def error_line(line: int, job_id: str | int | None, error: Exception) -> bytes:
    """``{"line", "id"?, "error": {"type", "message", "status_code"?}}``."""
    detail: dict[str, Any] = {
        "type": type(error).__name__,
        "message": error.message if isinstance(error, APIError) else str(error),
    }
    if isinstance(error, APIStatusError):
        detail["status_code"] = error.status_code
    record: dict[str, Any] = {"line": line}
    if job_id is not None:
        record["id"] = job_id
    record["error"] = detail
    return _encoder.encode(record) + b"\n"
