"""One rerank call as a value: ``rerank``'s arguments turned once into a ``Call``, its call
settings (checked) apart from its provider options."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import msgspec

from rerankit._errors import ConfigurationError
from rerankit._events import call_tags
from rerankit._fallback import Fallback
from rerankit._input import check_positive_int, check_timeout
from rerankit._prepare import CALL_OPTIONS, LITELLM_IGNORED, check_extra_body, check_tokenizer
from rerankit._redact import masked_repr
from rerankit._tokens import TokenCounter
from rerankit._types import Document

__all__ = [
    "NOT_GIVEN",
    "NO_OPTIONS",
    "NO_SETTINGS",
    "Call",
    "CallSettings",
    "call_settings",
    "check_retries",
]

NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})
"""The provider options of a call that gives none."""


class CallSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How one call is made, whatever its provider: credentials, endpoint, limits, what it adds
    to the request, what hooks see. None of it is a provider option. Values are checked."""

    api_key: str | None = None
    api_base: str | None = None
    base_url: str | None = None
    timeout: float | msgspec.UnsetType | None = msgspec.UNSET
    """Seconds per attempt (``None``: no limit); unset: the client's for the provider."""
    max_retries: int | None = None
    tokenizer: TokenCounter | None = None
    batch_concurrency: int | None = None
    drop_params: bool | None = None
    extra_body: Mapping[str, Any] | None = None
    extra_headers: Mapping[str, str] | None = None
    tags: Mapping[str, Any] | None = None
    """The call's ``metadata`` and ``user``, for hooks (never sent)."""

    def credentials(self) -> dict[str, Any]:
        """``api_key``, ``api_base`` and ``base_url`` as ``_prepare.api_key`` reads them."""
        return {"api_key": self.api_key, "api_base": self.api_base, "base_url": self.base_url}

    def __repr__(self) -> str:
        return masked_repr(self)

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        """The settings given, the key masked (``repr`` and rich use this)."""
        shown = [(name, getattr(self, name)) for name in self.__struct_fields__]
        return [
            (name, "***" if name == "api_key" else value)
            for name, value in shown
            if value is not None and value is not msgspec.UNSET
        ]


NO_SETTINGS = CallSettings()
"""The settings of a call that gives none."""

NOT_GIVEN = (None,) * 7
"""``call_settings``'s arguments after ``kwargs`` (``options``, ``extra_body``,
``extra_headers``, ``drop_params``, ``metadata``, ``user``, ``num_retries``) when a call gives
none of them."""


class Call(msgspec.Struct, frozen=True, kw_only=True):
    """One ``rerank`` call for one model: what the caller asked, as one value. Its settings are
    checked; the query, documents and the other arguments are checked by the "check input"
    stage. A fallback is the same call for another model (``for_fallback``)."""

    model: str
    provider: str | None
    query: str
    documents: Sequence[Document]
    rank_fields: Sequence[str] | None = None
    top_n: int | None = None
    return_documents: bool = True
    instruction: str | None = None
    max_tokens_per_doc: int | None = None
    max_chunks_per_doc: int | None = None
    settings: CallSettings = NO_SETTINGS
    options: Mapping[str, Any] = NO_OPTIONS
    """Provider options (e.g. Cohere's ``api_version``), checked against the provider later."""

    @property
    def label(self) -> str:
        """The model as a log line or ``fallback_from`` names it."""
        return self.model if self.provider is None else f"{self.provider}/{self.model}"

    def for_fallback(self, fallback: Fallback) -> Call:
        """This call for ``fallback``'s model with its own settings and options (parameters the
        fallback's provider cannot honour are dropped, with a warning)."""
        settings, options = call_settings(fallback.options)
        settings = msgspec.structs.replace(settings, drop_params=True, tags=self.settings.tags)
        return msgspec.structs.replace(
            self, model=fallback.model, provider=None, settings=settings, options=options
        )


def call_settings(
    kwargs: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
    extra_body: Mapping[str, Any] | None = None,
    extra_headers: Mapping[str, str] | None = None,
    drop_params: bool | None = None,
    metadata: Mapping[str, Any] | list[Any] | None = None,
    user: str | None = None,
    num_retries: int | None = None,
) -> tuple[CallSettings, Mapping[str, Any]]:
    """A call's settings and provider options, from ``rerank``'s keyword arguments: in
    ``kwargs`` the names of ``CALL_OPTIONS`` are settings, LiteLLM's logging arguments are
    ignored and anything else is a provider option; ``options`` holds only provider options.
    The arguments after ``kwargs`` are in ``NOT_GIVEN`` order: a call that gives none of them
    can skip this function."""
    if options is not None and not isinstance(options, Mapping):
        raise ConfigurationError(f"options must be a dict, got {type(options).__name__}")
    found: dict[str, Any] = {}
    provider_options = dict(options or {})
    if isinstance(metadata, list):  # a provider's per-document option (contextual)
        kwargs, metadata = {**kwargs, "metadata": metadata}, None
    for name, value in kwargs.items():
        if name in CALL_OPTIONS:
            found[name] = value
        elif name in provider_options:
            raise ConfigurationError(
                f"{name!r} is given both as a keyword argument and in options=; pass it once"
            )
        elif name not in LITELLM_IGNORED:
            provider_options[name] = value
    if num_retries is not None:
        found["max_retries"] = _num_retries(num_retries, found.get("max_retries"))
    tags = call_tags(metadata, user)
    if not found and (extra_body, extra_headers, drop_params, tags) == (None, None, None, None):
        return NO_SETTINGS, provider_options or NO_OPTIONS
    return _checked(found, extra_body, extra_headers, drop_params, tags), provider_options


def _checked(
    found: dict[str, Any],
    extra_body: object,
    extra_headers: Mapping[str, str] | None,
    drop_params: bool | None,
    tags: Mapping[str, Any] | None,
) -> CallSettings:
    if "timeout" in found:
        found["timeout"] = check_timeout(found["timeout"])
    if "max_retries" in found:
        found["max_retries"] = check_retries("max_retries", found["max_retries"])
    if "tokenizer" in found:
        found["tokenizer"] = check_tokenizer(found["tokenizer"])
    if "batch_concurrency" in found:
        found["batch_concurrency"] = check_positive_int(
            "batch_concurrency", found["batch_concurrency"]
        )
    return CallSettings(
        **found,
        extra_body=check_extra_body(extra_body),
        extra_headers=extra_headers,
        drop_params=None if drop_params is None else bool(drop_params),
        tags=tags,
    )


def check_retries(name: str, value: object) -> int:
    """A number of retries: an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{name} must be an int >= 0, got {value!r}")
    return value


def _num_retries(num_retries: object, max_retries: object) -> int:
    """LiteLLM's ``num_retries``, which must agree with ``max_retries`` when both are given."""
    value = check_retries("num_retries", num_retries)
    if max_retries is not None and max_retries != value:
        raise ConfigurationError(
            f"num_retries={value!r} and max_retries={max_retries!r} disagree; "
            "num_retries is LiteLLM's name for max_retries: pass one of them"
        )
    return value
