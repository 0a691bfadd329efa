"""Keeping secrets out of reprs, messages and logs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["masked_repr", "redact_all", "redact_options", "redact_text", "secrets"]

_SECRET_NAME = re.compile(r"key|secret|token|credential|password|auth", re.IGNORECASE)
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|signature", re.IGNORECASE)


def redact_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with the values of secret-looking names (``*key*``, ``*token*``...) masked."""
    return {
        name: "***" if _SECRET_NAME.search(name) and value is not None else value
        for name, value in options.items()
    }


def redact_text(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


def secrets(headers: Mapping[str, str], secret: str | None) -> list[str]:
    """What to hide in an error about a request: ``secret`` and the values of its
    secret-looking headers (``Authorization``, ``Api-Key``, ``X-Amz-Security-Token``...), with
    an ``Authorization`` value's credential also on its own; longest first."""
    found = {secret} if secret else set()
    for name, value in headers.items():
        if isinstance(value, str) and _SECRET_HEADER.search(str(name)):
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
