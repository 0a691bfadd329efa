"""How to install an optional extra, the one wording error messages and docs use.

rerankit is not on PyPI yet: ``pip install 'rerankit[local]'`` is the published form, and
``pip install '.[local]'`` (in a checkout of the repository) is the one that works today.
"""

from __future__ import annotations

__all__ = ["install_commands", "install_hint"]


def install_commands(extra: str) -> tuple[str, str]:
    """The published command and the one for a checkout of the repository."""
    return f"pip install 'rerankit[{extra}]'", f"pip install '.[{extra}]'"


def install_hint(extra: str) -> str:
    """Both commands in one phrase, for an error message."""
    published, checkout = install_commands(extra)
    return f"{published} (or, in a checkout of rerankit's repository, {checkout})"
