"""Keeping secrets out of reprs, messages and logs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

__all__ = [
    "is_secret_name",
    "mask_query_secrets",
    "masked_repr",
    "redact_all",
    "redact_options",
    "redact_text",
    "secrets",
]

_SECRET_NAME = re.compile(
    r"(?:^|[^a-z0-9])"
    r"(?:key|api_?key|secret|password|passwd|token|access_?token|credentials?|signature|sig|auth)"
    r"(?:$|[^a-z0-9])|authorization|cookie",
    re.IGNORECASE,
)
"""Names that hold secrets, as whole words of the name: ``api_key``, ``X-Api-Key``, ``token``,
``aws_secret_access_key``, ``X-Amz-Signature``, ``Authorization``; not ``max_tokens_per_doc``."""

_QUERY_PARAMETER = re.compile(r"(?<=[?&;])([^=&;?#\s\"']+)=([^&;#\s\"']*)")


def is_secret_name(name: str) -> bool:
    """Whether an option, header or query parameter called ``name`` holds a secret."""
    return _SECRET_NAME.search(name) is not None


def redact_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with the values of secret-looking names (``*key*``, ``*token*``...) masked."""
    return {
        name: "***" if is_secret_name(name) and value is not None else value
        for name, value in options.items()
    }


def redact_text(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


def mask_query_secrets(text: str) -> str:
    """``text`` (a URL, a request line, a log message) with the values of secret-looking query
    parameters masked: ``/v1/rerank?api_key=sk-1&top=3`` -> ``/v1/rerank?api_key=***&top=3``."""
    if "=" not in text:
        return text
    return _QUERY_PARAMETER.sub(_mask_parameter, text)


def _mask_parameter(match: re.Match[str]) -> str:
    name = match[1]
    if not match[2] or not is_secret_name(unquote_plus(name)):
        return match[0]
    return f"{name}=***"


def secrets(headers: Mapping[str, str], secret: str | None) -> list[str]:
    """What to hide in an error about a request: ``secret`` and the values of its
    secret-looking headers (``Authorization``, ``Api-Key``, ``X-Amz-Security-Token``...), with
    an ``Authorization`` value's credential also on its own; longest first."""
    found = {secret} if secret else set()
    for name, value in headers.items():
        if isinstance(value, str) and is_secret_name(str(name)):
            found.add(value)
            credential = value.partition(" ")[2].strip()
            if credential:
                found.add(credential)
    return sorted(found, key=len, reverse=True)


def redact_all(text: str, hidden: list[str]) -> str:
    """``text`` with every occurrence of each of ``hidden`` replaced by ``***``."""
    for secret in hidden:
        text = redact_text(text, secret)
    return text


def masked_repr(obj: Any) -> str:
    """``Name(field=value, ...)`` from ``obj.__rich_repr__()``, the field list a class that
    holds secrets gives with them masked (rich's pretty printer reads the same list)."""
    shown = ", ".join(f"{name}={value!r}" for name, value in obj.__rich_repr__())
    return f"{type(obj).__name__}({shown})"
