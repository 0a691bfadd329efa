"""Whether what a caller passed can go on the wire: base URLs, keys and headers, JSON, text.

Each check raises a ``ConfigurationError`` naming the argument (``where``), before anything is
sent. Messages never show a key or a header value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec

from rerankit._errors import ConfigurationError
from rerankit._redact import shown_url

__all__ = [
    "bad_header",
    "check_base_url",
    "check_headers",
    "check_json",
    "check_secret",
    "check_text",
    "check_texts",
    "json_problem",
]

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""Control characters an HTTP header value must not hold (a tab is allowed)."""
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP token (RFC 9110), the form of a header name."""
_json = msgspec.json.Encoder()
_ENCODE_ERRORS = (TypeError, ValueError, OverflowError, msgspec.EncodeError)


def check_text(value: str, where: str) -> None:
    """``value`` must be encodable as UTF-8 (no lone surrogate such as ``"\\ud800"``)."""
    if value.isascii():
        return
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise ConfigurationError(
            f"{where} holds a lone surrogate ({value[exc.start]!r} at position {exc.start}), "
            "which cannot be sent as UTF-8; decode its source with errors='replace'"
        ) from None


def check_texts(texts: list[str], where: str) -> None:
    """``check_text`` for every item (``where[i]`` names a bad one); ASCII lists are quick."""
    if all(map(str.isascii, texts)):
        return
    for position, text in enumerate(texts):
        check_text(text, f"{where}[{position}]")


def check_secret(value: object, where: str) -> str:
    """A key or token that will be sent in a header: a str of visible ASCII characters (inner
    spaces allowed). The message says what is wrong, never the value."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{where} must be a str, got {type(value).__name__}")
    if value.isascii() and value.isprintable() and value == value.strip():
        return value
    if value.rstrip(" \t") != value.rstrip():
        problem = "ends with a line break (read from a file? strip it)"
    elif value != value.strip():
        problem = "starts or ends with whitespace"
    else:
        position = next(i for i, c in enumerate(value) if not (c.isascii() and c.isprintable()))
        kind = "a non-ASCII" if not value[position].isascii() else "a control"
        problem = f"holds {kind} character at position {position}"
    raise ConfigurationError(
        f"{where} {problem}; it cannot be sent in an HTTP header (the value is not shown)"
    )


def check_headers(headers: object, where: str) -> Mapping[str, str]:
    """Extra HTTP headers: a mapping of header names to str values without line breaks."""
    if not isinstance(headers, Mapping):
        raise ConfigurationError(
            f"{where} must be a dict of header names to str values, got {type(headers).__name__}"
        )
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ConfigurationError(f"{where} has an invalid header name {name!r}")
        if not isinstance(value, str):
            raise ConfigurationError(f"{where}[{name!r}] must be a str, got {type(value).__name__}")
        if _CONTROL.search(value):
            raise ConfigurationError(
                f"{where}[{name!r}] holds a line break or another control character "
                "(the value is not shown)"
            )
    return headers


def bad_header(headers: Mapping[str, str]) -> str | None:
    """The name of the first header whose value cannot be sent (not a str, or holding a
    control character), or ``None``: a quick last check on every request's headers."""
    try:
        if " ".join(headers.values()).isprintable():  # the usual case, in one quick scan
            return None
    except TypeError:  # a value that is not a str
        pass
    for name, value in headers.items():
        if type(value) is not str or _CONTROL.search(value):
            return str(name)
    return None


def check_base_url(base: object, where: str, default_scheme: str | None = None) -> str:
    """A base URL: ``http`` or ``https``, a host, no whitespace; ``default_scheme`` is put in
    front of a base given without one (for providers whose endpoints are often written bare)."""
    if not isinstance(base, str):
        raise ConfigurationError(f"{where} must be a str, got {type(base).__name__}")
    if default_scheme is not None and "://" not in base:
        base = f"{default_scheme}://{base}"
    problem = _base_problem(base)
    if problem is not None:
        raise ConfigurationError(
            f"{where} {problem}, got {shown_url(base)} "
            "(for example 'https://api.example.com' or 'http://localhost:8080')"
        )
    return base


@functools.lru_cache(maxsize=64)
def _base_problem(base: str) -> str | None:
    if any(c.isspace() for c in base) or _CONTROL.search(base):
        return "holds whitespace or a control character"
    try:
        parts = urlsplit(base)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host"
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        return "has an invalid host name"
    return None


def json_problem(value: Any) -> str | None:
    """Why ``value`` cannot be encoded as JSON, or ``None`` when it can."""
    try:
        _json.encode(value)
    except UnicodeEncodeError:
        return "it holds a lone surrogate (a str that cannot be sent as UTF-8)"
    except _ENCODE_ERRORS as exc:
        return str(exc) or type(exc).__name__
    return None


def check_json(value: Any, where: str) -> None:
    """``value`` must be encodable as JSON."""
    problem = json_problem(value)
    if problem is not None:
        raise ConfigurationError(f"{where} cannot be sent as JSON: {problem}")
