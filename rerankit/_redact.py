"""rerankit's one secrets policy: what is a secret, and how it is kept out of reprs, messages,
logs and JSON.

A *name* holds a secret when one of its words is a credential word (``is_secret_name``): options,
settings, headers, query parameters and config keys are all judged by it. A URL's user:password
part is a secret (``mask_url``). A known log record that holds credentials is dropped
(``SecretLogFilter``). Whatever is masked shows as ``MASK``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

__all__ = [
    "MASK",
    "SecretLogFilter",
    "fingerprint",
    "is_secret_name",
    "mask",
    "mask_query_secrets",
    "mask_url",
    "mask_userinfo",
    "masked_repr",
    "redact_all",
    "redact_options",
    "redact_text",
    "secrets",
    "shown_url",
]

_SECRET_NAME = re.compile(
    r"(?:^|[^a-z0-9])"
    r"(?:(?:api_?)?keys?|secrets?|passwords?|passwd|token|access_?token|credentials?|signature"
    r"|sig|auth)"
    r"(?:$|[^a-z0-9])|authorization|cookie",
    re.IGNORECASE,
)
"""Names that hold secrets, as whole words of the name: ``api_key``, ``X-Api-Key``, ``token``,
``aws_secret_access_key``, ``X-Amz-Signature``, ``Authorization``, ``api_keys``; not
``max_tokens_per_doc`` (a count of tokens, so ``tokens`` is not a secret word)."""

MASK = "***"
"""What a masked secret shows as."""

_USERINFO = re.compile(r"(?<=//)[^/@?#]*@")
"""The ``user:password@`` part of a URL."""

_SECRET_RECORDS = ("CanonicalRequest",)
"""Log messages that start like this hold credentials whatever their names (botocore's debug
record of a SigV4 canonical request holds the session token)."""

_QUERY_PARAMETER = re.compile(r"(?<=[?&;])([^=&;?#\s\"']+)=([^&;#\s\"']*)")


def is_secret_name(name: str) -> bool:
    """Whether an option, header or query parameter called ``name`` holds a secret."""
    return _SECRET_NAME.search(name) is not None


def mask(value: object) -> str | None:
    """``MASK`` for a secret that is set, ``None`` for one that is not."""
    return None if value is None else MASK


def redact_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with the values of secret-looking names (``*key*``, ``*token*``...) masked,
    in nested dicts too."""
    return {str(name): _redacted(str(name), value) for name, value in options.items()}


def _redacted(name: str, value: Any) -> Any:
    if is_secret_name(name):
        return mask(value)
    return redact_options(value) if isinstance(value, Mapping) else value


def fingerprint(secret: str | None) -> str | None:
    """A stable, irreversible name for a secret, to tell keys apart without keeping them (rate
    limits are kept per API key)."""
    if secret is None:
        return None
    import hashlib

    return hashlib.blake2b(secret.encode(), digest_size=8).hexdigest()


def redact_text(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    return text.replace(secret, MASK) if secret and len(secret) >= 4 else text


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
    return f"{name}={MASK}"


def mask_userinfo(url: str) -> str:
    """``url`` with a ``user:password@`` part shown as ``***@``."""
    return _USERINFO.sub(f"{MASK}@", url) if "@" in url else url


def shown_url(url: str) -> str:
    """``url`` quoted for an error message: its ``user:password@`` part and its whole query
    masked (a URL rerankit could not use may not parse as one)."""
    head, query, _ = mask_userinfo(url).partition("?")
    return repr(head + (f"?{MASK}" if query else ""))


def mask_url(url: str) -> str:
    """``url`` with its ``user:password@`` part and secret-looking query parameters masked."""
    return mask_query_secrets(mask_userinfo(url))


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


class SecretLogFilter(logging.Filter):
    """A logging filter: drops records known to hold credentials and masks secret-looking
    query parameters in the others (``?api_key=sk-1`` -> ``?api_key=***``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(_SECRET_RECORDS):
            return False
        message = record.getMessage()
        masked = mask_query_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
