"""IBM watsonx.ai text rerank: IAM tokens from an API key, ready tokens, or ``ZenApiKey``."""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode

import msgspec

from rerankit._errors import APIStatusError, AuthenticationError, ConfigurationError
from rerankit._settings import first_env
from rerankit._types import RerankRequest, RerankResponse, RerankResult, Usage
from rerankit.providers._auth import TokenCache, now
from rerankit.providers._base import ModelCapabilities, ProviderContext
from rerankit.providers._rest import RestProvider, RestVendor

if TYPE_CHECKING:
    from rerankit._http import HTTPResponse

__all__ = ["WatsonxProvider"]

API_VERSION = "2024-03-13"
"""The ``version`` query parameter sent unless ``api_version`` overrides it."""
IAM_URL = "https://iam.cloud.ibm.com/identity/token"
TOKEN_ENV = ("WATSONX_TOKEN",)
ZEN_API_KEY_ENV = ("WATSONX_ZENAPIKEY",)
IAM_URL_ENV = ("WATSONX_IAM_URL",)
PROJECT_ENV = ("WATSONX_PROJECT_ID",)
SPACE_ENV = ("WATSONX_SPACE_ID",)
_GRANT_TYPE = "urn:ibm:params:oauth:grant-type:apikey"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_IAM_DEFAULT_LIFETIME = 3600.0

_DEFAULT = ModelCapabilities(score_kind="logit", parameters=frozenset({"max_tokens_per_doc"}))
_MODELS: dict[str, ModelCapabilities] = {
    "cross-encoder/ms-marco-minilm-l-12-v2": msgspec.structs.replace(_DEFAULT, max_pair_tokens=512),
}


class _Result(msgspec.Struct):
    index: int
    score: float


class _System(msgspec.Struct):
    warnings: list[Any] | None = None


class _Answer(msgspec.Struct):
    results: list[_Result]
    input_token_count: int | None = None
    model_version: str | None = None
    system: _System | None = None


class _IAMToken(msgspec.Struct):
    access_token: str
    expires_in: float | None = None
    expiration: float | None = None


class WatsonxProvider(RestProvider):
    """``watsonx/<model_id>``: IBM watsonx.ai text rerank (``/ml/v1/text/rerank``).

    Authentication, first match wins: a ready bearer token (the ``token`` option, then
    ``WATSONX_TOKEN``); a Cloud Pak for Data ``ZenApiKey`` (``zen_api_key``, then
    ``WATSONX_ZENAPIKEY``); an IBM Cloud API key (``api_key``, then ``WATSONX_APIKEY``,
    ``WATSONX_API_KEY``) exchanged for an IAM token through the client's own HTTP session,
    cached per client and renewed shortly before it expires, one exchange however many calls
    wait for it. ``iam_url`` (or ``WATSONX_IAM_URL``) points the exchange elsewhere. The body
    names ``project_id`` or ``space_id`` (options, then ``WATSONX_PROJECT_ID`` /
    ``WATSONX_SPACE_ID``). ``api_version`` overrides the pinned ``version`` date;
    ``max_tokens_per_doc`` is sent as ``truncate_input_tokens``; ``return_options`` adds to
    the API's return options. Scores are raw cross-encoder logits.
    """

    name = "watsonx"
    example_model: ClassVar[str] = "watsonx/cross-encoder/ms-marco-minilm-l-12-v2"
    api_key_env: ClassVar[tuple[str, ...]] = ("WATSONX_APIKEY", "WATSONX_API_KEY")
    api_base_env: ClassVar[tuple[str, ...]] = (
        "WATSONX_API_BASE",
        "WATSONX_URL",
        "WX_URL",
        "WML_URL",
    )
    api_base_required = True
    options = frozenset(
        {
            "token",
            "zen_api_key",
            "project_id",
            "space_id",
            "api_version",
            "iam_url",
            "return_options",
        }
    )
    vendor = RestVendor(
        route="/ml/v1/text/rerank",
        model_field="model_id",
        documents_field="inputs",
        top_n_field=None,
        return_documents_field=None,
        score_fields=("score",),
        default=_DEFAULT,
        models=_MODELS,
    )

    def __init__(self) -> None:
        self._iam_tokens: TokenCache[str] = TokenCache()

    def documents(self, request: RerankRequest) -> list[Any]:
        return [{"text": text} for text in request.documents]

    def url(self, request: RerankRequest, ctx: ProviderContext) -> str:
        version = request.options.get("api_version", API_VERSION)
        if not isinstance(version, str) or not _DATE.fullmatch(version):
            raise ConfigurationError(
                f"watsonx api_version must be a date like {API_VERSION!r}, got {version!r}"
            )
        url = super().url(request, ctx)
        return f"{url}{'&' if '?' in url else '?'}{urlencode({'version': version})}"

    def body(self, request: RerankRequest, ctx: ProviderContext) -> dict[str, Any]:
        body = super().body(request, ctx)
        extra = request.options.get("return_options", {})
        if not isinstance(extra, dict):
            raise ConfigurationError(
                f"watsonx return_options must be a dict, got {type(extra).__name__}"
            )
        return_options: dict[str, Any] = {**extra, "inputs": False}
        if request.top_n is not None:
            return_options["top_n"] = request.top_n
        parameters: dict[str, Any] = {"return_options": return_options}
        if request.max_tokens_per_doc is not None:
            parameters["truncate_input_tokens"] = request.max_tokens_per_doc
        body["parameters"] = parameters
        body.update(_scope(request.options))
        return body

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        url, body = self.url(request, ctx), self.body(request, ctx)
        authorization, iam_key = await self._authorization(request, ctx)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": authorization,
        }
        try:
            answer = await ctx.post(url, body, headers)
        except AuthenticationError:
            if iam_key is not None:
                self._iam_tokens.forget(iam_key)
            raise
        return self.parse(answer, request, ctx)

    def parse(
        self, answer: HTTPResponse, request: RerankRequest, ctx: ProviderContext
    ) -> RerankResponse:
        decoded = ctx.decode(answer.body, _Answer)
        meta: dict[str, Any] = {}
        if decoded.model_version:
            meta["model_version"] = decoded.model_version
        if decoded.system is not None and decoded.system.warnings:
            meta["warnings"] = decoded.system.warnings
        return RerankResponse(
            results=[RerankResult(r.index, r.score) for r in decoded.results],
            usage=Usage(input_tokens=decoded.input_token_count),
            provider_meta=meta,
        )

    async def _authorization(
        self, request: RerankRequest, ctx: ProviderContext
    ) -> tuple[str, Hashable | None]:
        """The ``Authorization`` value, and the IAM cache key when it holds an IAM token."""
        options = request.options
        token = options.get("token") or first_env(TOKEN_ENV)
        if token:
            return f"Bearer {token}", None
        zen_api_key = options.get("zen_api_key") or first_env(ZEN_API_KEY_ENV)
        if zen_api_key:
            return f"ZenApiKey {zen_api_key}", None
        api_key = ctx.api_key
        if not api_key:
            raise ConfigurationError(
                "no credentials for provider 'watsonx': pass token=..., zen_api_key=... or "
                "api_key=..., or set WATSONX_TOKEN, WATSONX_ZENAPIKEY, WATSONX_APIKEY or "
                "WATSONX_API_KEY"
            )
        iam_url = options.get("iam_url") or first_env(IAM_URL_ENV) or IAM_URL
        key = (iam_url, api_key)
        token = await self._iam_tokens.get(key, lambda: _exchange(iam_url, api_key, ctx))
        return f"Bearer {token}", key

    def model_table(self) -> Mapping[str, ModelCapabilities]:
        return _MODELS


async def _exchange(iam_url: str, api_key: str, ctx: ProviderContext) -> tuple[str, float]:
    """An IAM access token for ``api_key`` and its expiry, through the client's session."""
    form = urlencode({"grant_type": _GRANT_TYPE, "apikey": api_key}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    try:
        answer = await ctx.post_bytes(iam_url, form, headers)
    except APIStatusError as exc:
        if exc.status_code >= 500 or exc.status_code == 429:
            raise
        raise AuthenticationError(
            f"IBM Cloud IAM at {iam_url} did not exchange the watsonx API key for a token: "
            f"{exc.message}",
            status_code=exc.status_code,
            body=exc.body,
            provider=ctx.provider,
            model=ctx.model,
            request_id=exc.request_id,
        ) from exc
    token = ctx.decode(answer.body, _IAMToken)
    if token.expires_in:  # relative, so a skewed local clock does not matter
        return token.access_token, now() + token.expires_in
    return token.access_token, token.expiration or now() + _IAM_DEFAULT_LIFETIME


def _scope(options: Mapping[str, Any]) -> dict[str, str]:
    """``project_id`` or ``space_id``: the options first, then the environment."""
    project, space = options.get("project_id"), options.get("space_id")
    if project and space:
        raise ConfigurationError("watsonx takes project_id or space_id, not both")
    if project:
        return {"project_id": project}
    if space:
        return {"space_id": space}
    project = first_env(PROJECT_ENV)
    if project:
        return {"project_id": project}
    space = first_env(SPACE_ENV)
    if space:
        return {"space_id": space}
    raise ConfigurationError(
        "watsonx needs a project or a deployment space: pass project_id=... or space_id=..., "
        f"or set {PROJECT_ENV[0]} or {SPACE_ENV[0]}"
    )
