"""``rerankit check MODEL``: what a call would use, resolved without calling the provider.

Only where a key comes from is shown (an environment variable's name...), never its value.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from rerankit._check import ModelCheck, check_model
from rerankit.cli._common import EXIT_OK, UsageError

__all__ = ["add_parser", "describe", "run"]

_CREDENTIALS = {
    "argument": "the api_key option",
    "settings": "the client settings ({})",
    "environment": "the environment variable {}",
    "option": "the {} option",
    "chain": "{}",
    "none": "none needed",
}


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "check",
        help="show what a call to MODEL would use, without calling the provider",
        description=(
            "Resolve MODEL, its options and credentials as a rerank call would, without "
            "calling the provider: the provider, base URL, where the key comes from (never "
            "its value), the model's limits, score kind and price. Exits 1 with the error a "
            "call would raise (unknown provider, unknown option, missing key...)."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="provider/model, e.g. cohere/rerank-v3.5")
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a call option or provider option (api_base=..., truncate=END); a value that "
        "reads as JSON is taken as JSON; repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print the check as JSON")


def run(args: argparse.Namespace) -> int:
    checked = check_model(args.model, parse_options(args.option), context="cli")
    if args.json:
        data = msgspec.json.format(msgspec.json.encode(checked)).decode()
        sys.stdout.write(data + "\n")
    else:
        sys.stdout.write(describe(checked))
    return EXIT_OK


def parse_options(items: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` strings as options; a value that is valid JSON is decoded."""
    options: dict[str, Any] = {}
    for item in items:
        name, equals, text = item.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"--option takes NAME=VALUE, got {item.partition('=')[0]!r}")
        try:
            options[name.strip()] = msgspec.json.decode(text)
        except msgspec.DecodeError:
            options[name.strip()] = text
    return options


def describe(checked: ModelCheck) -> str:
    """The check as aligned ``label  value`` lines."""
    base = checked.api_base or "-"
    if checked.api_base is not None:
        base += f" ({checked.api_base_source})"
    lines = [
        ("provider", f"{checked.provider} ({checked.provider_class}, from {checked.distribution})"),
        ("model", checked.model),
        ("base url", base),
        ("credentials", _CREDENTIALS[checked.credential_source].format(checked.credential)),
        ("options", _pairs(checked.options) or "-"),
        ("score kind", checked.score_kind),
        ("limits", _limits(checked) or "none declared"),
        ("timeout", _timeout(checked)),
        ("price", _price(checked)),
    ]
    width = max(len(label) for label, _ in lines)
    return "".join(f"{label.ljust(width)}  {value}\n" for label, value in lines)


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in values.items())


def _limits(checked: ModelCheck) -> str:
    caps = msgspec.structs.asdict(checked.capabilities)
    limits = {name: value for name, value in caps.items() if name.startswith("max_") and value}
    return _pairs(limits)


def _timeout(checked: ModelCheck) -> str:
    limit = "none" if checked.timeout is None else f"{checked.timeout:g} s"
    return f"{limit} per attempt, {checked.max_retries} retries"


def _price(checked: ModelCheck) -> str:
    price = checked.price
    if price is None:
        return "unknown"
    if price.kind == "per_million_tokens":
        return f"${price.per_million_tokens} per million {price.tokens} tokens"
    return f"${getattr(price, price.kind)} {price.kind.replace('_', ' ')}"
