"""The ``eval`` extra's libraries, imported on first use with one clear error when missing."""

from __future__ import annotations

import importlib
from typing import Any

from rerankit._errors import ConfigurationError
from rerankit._install import install_hint

__all__ = ["import_extra"]


def import_extra(module: str, purpose: str) -> Any:
    """``module``, or a ``ConfigurationError`` saying what needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(
            f"{purpose} needs {module.split('.')[0]}: {install_hint('eval')}"
        ) from None
