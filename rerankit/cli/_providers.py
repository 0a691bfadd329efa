"""``rerankit providers``: installed providers, where they come from, whether they are set up.

Only environment variable *names* are shown, never their values.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import msgspec

from rerankit import ProviderError, available_providers
from rerankit.cli._common import EXIT_OK
from rerankit.providers import load_provider, provider_info

__all__ = ["ProviderStatus", "add_parser", "provider_status", "run"]


class Variables(msgspec.Struct, kw_only=True):
    """The environment variables a provider reads for one setting, and which one is set."""

    env: list[str]
    set: str | None
    required: bool


class ProviderStatus(msgspec.Struct, kw_only=True):
    """One provider's row."""

    name: str
    distribution: str
    ready: bool | None
    """Whether a call can be made with the environment as it is (``None``: it cannot be
    told from variables, e.g. a cloud credential chain, or the provider failed to load)."""
    api_key: Variables | None = None
    api_base: Variables | None = None
    default_api_base: bool = False
    credentials: str | None = None
    """Where credentials come from when not from an API key variable."""
    error: str | None = None


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "providers",
        help="list installed providers and whether their credentials are configured",
        description=(
            "List every provider a model string can start with, the distribution it comes "
            "from, and whether the environment variables it reads for its API key and base URL "
            "are set. Values are never printed."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def run(args: argparse.Namespace) -> int:
    rows = [provider_status(name) for name in available_providers()]
    if args.json:
        data = msgspec.json.encode(rows)
        sys.stdout.write(msgspec.json.format(data).decode() + "\n")
    else:
        _print_table(rows)
    return EXIT_OK


def provider_status(name: str) -> ProviderStatus:
    """What ``rerankit providers`` reports for ``name``."""
    distribution = _distribution(name)
    try:
        cls = load_provider(name)
    except ProviderError as exc:
        return ProviderStatus(name=name, distribution=distribution, ready=False, error=str(exc))
    base = _variables(cls.api_base_env, cls.api_base_required)
    base_value = os.environ.get(base.set) if base is not None and base.set else None
    key = _variables(cls.api_key_env, cls.needs_api_key(base_value))
    has_default = bool(cls.default_api_base)
    ready: bool | None = True
    if key is not None and key.required and key.set is None:
        ready = False
    if base is not None and base.required and base.set is None and not has_default:
        ready = False
    chain = cls.credential_chain
    if chain is not None:
        ready = None
    return ProviderStatus(
        name=name,
        distribution=distribution,
        ready=ready,
        api_key=key,
        api_base=base,
        default_api_base=has_default,
        credentials=chain,
    )


def _distribution(name: str) -> str:
    return ", ".join(provider_info(name).distributions)


def _variables(env: tuple[str, ...], required: bool) -> Variables | None:
    if not env:
        return None
    found = next((variable for variable in env if os.environ.get(variable)), None)
    return Variables(env=list(env), set=found, required=required)


def _key_text(row: ProviderStatus) -> str:
    key = row.api_key
    if key is None:
        return f"from {row.credentials}" if row.credentials else "not needed"
    if key.set is not None:
        return f"{key.set} set"
    return f"missing: {_names(key.env)}" if key.required else "optional, not set"


def _base_text(row: ProviderStatus) -> str:
    base = row.api_base
    if base is not None and base.set is not None:
        return f"{base.set} set"
    if row.default_api_base:
        return "default"
    if base is not None and base.required:
        return f"missing: {_names(base.env)}"
    return "-"


def _names(env: list[str]) -> str:
    return env[0] if len(env) == 1 else f"{env[0]} (or {len(env) - 1} more, see --json)"


def _print_table(rows: list[ProviderStatus]) -> None:
    table = [("provider", "distribution", "ready", "api key", "base url")]
    for row in rows:
        if row.error is not None:
            table.append((row.name, row.distribution, "no", f"failed to load: {row.error}", ""))
            continue
        ready = {True: "yes", False: "no", None: "?"}[row.ready]
        table.append((row.name, row.distribution, ready, _key_text(row), _base_text(row)))
    widths = [max(len(line[column]) for line in table) for column in range(4)]
    for line in table:
        cells = [line[column].ljust(widths[column]) for column in range(4)]
        sys.stdout.write("  ".join([*cells, line[4]]).rstrip() + "\n")
