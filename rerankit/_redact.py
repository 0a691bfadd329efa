"""Keeping secrets out of reprs, messages and logs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["masked_repr", "redact_options", "redact_text"]

_SECRET_NAME = re.compile(r"key|secret|token|credential|password|auth", re.IGNORECASE)


def redact_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with the values of secret-looking names (``*key*``, ``*token*``...) masked."""
    return {
        name: "***" if _SECRET_NAME.search(name) and value is not None else value
        for name, value in options.items()
    }


def redact_text(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


def masked_repr(obj: Any) -> str:
    """``Name(field=value, ...)`` from ``obj.__rich_repr__()``, the field list a class that
    holds secrets gives with them masked (rich's pretty printer reads the same list)."""
    shown = ", ".join(f"{name}={value!r}" for name, value in obj.__rich_repr__())
    return f"{type(obj).__name__}({shown})"
