"""AWS Bedrock Agent Runtime ``Rerank``: SigV4-signed requests and paginated answers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import anyio.to_thread
import msgspec

from rerankit._errors import ConfigurationError, ResponseValidationError
from rerankit._install import install_hint
from rerankit._redact import SecretLogFilter
from rerankit._settings import first_env
from rerankit._types import RerankRequest, RerankResponse, RerankResult
from rerankit.providers._auth import TokenCache
from rerankit.providers._base import ModelCapabilities, Provider, ProviderContext
from rerankit.providers._rest import join_route

__all__ = ["BedrockProvider"]

REGION_ENV = ("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")
SERVICE = "bedrock"

_DEFAULT = ModelCapabilities(max_documents=1000, structured_documents=True)
_MODELS: dict[str, ModelCapabilities] = {
    "amazon.rerank-v1:0": _DEFAULT,
    "cohere.rerank-v3-5:0": msgspec.structs.replace(
        _DEFAULT, max_tokens_per_doc=4_096, max_query_tokens=2_048
    ),
}


class _Result(msgspec.Struct):
    index: int
    relevanceScore: float


class _Page(msgspec.Struct):
    results: list[_Result]
    nextToken: str | None = None


class BedrockProvider(Provider):
    """``bedrock/<model id or ARN>``: the Bedrock Agent Runtime ``Rerank`` API, signed with SigV4.

    Credentials come from the standard AWS chain through botocore (the ``bedrock`` extra): the
    ``aws_access_key_id`` / ``aws_secret_access_key`` / ``aws_session_token`` options, then
    ``AWS_ACCESS_KEY_ID`` and the rest of the chain (``AWS_PROFILE`` or ``aws_profile_name``,
    SSO, assumed roles, instance roles). They are looked up once per client in a worker thread
    and renewed there when they expire. The region is the ``region`` option (or
    ``aws_region_name``), then ``AWS_REGION_NAME``, ``AWS_REGION``, ``AWS_DEFAULT_REGION``, then
    the region of a model given as a full ARN.
    A bare model id becomes ``arn:aws:bedrock:{region}::foundation-model/{id}``. String
    documents go as ``TEXT`` sources, dicts natively as ``JSON`` sources (only their
    ``rank_fields`` when given). Every page of a paginated answer is fetched and merged.
    """

    name = "bedrock"
    example_model: ClassVar[str] = "bedrock/cohere.rerank-v3-5:0"
    install_extra: ClassVar[str] = "bedrock"
    api_base_env: ClassVar[tuple[str, ...]] = ("BEDROCK_API_BASE", "AWS_BEDROCK_RUNTIME_ENDPOINT")
    api_base_default_scheme: ClassVar[str | None] = "https"
    credential_chain: ClassVar[str | None] = "the AWS credential chain"
    api_key_refused: ClassVar[str | None] = (
        "bedrock signs requests with AWS credentials, not an API key: pass "
        "aws_access_key_id= and aws_secret_access_key=, or configure the AWS "
        "credential chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...)"
    )
    options = frozenset(
        {
            "region",
            "aws_region_name",
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
            "aws_profile_name",
            "additionalModelRequestFields",
        }
    )

    def __init__(self) -> None:
        self._credentials: TokenCache[Any] = TokenCache()

    def capabilities(self, model: str) -> ModelCapabilities:
        return _MODELS.get(model.rpartition("foundation-model/")[2], _DEFAULT)

    def model_table(self) -> Mapping[str, ModelCapabilities]:
        return _MODELS

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        if ctx.api_key:
            raise ConfigurationError(self.api_key_refused)
        region = _region(request)
        url = endpoint(ctx.api_base, region)
        body = self.body(request, region)
        if ctx.extra_body:
            body.update(ctx.extra_body)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if ctx.extra_headers:
            headers.update(ctx.extra_headers)
        results: list[RerankResult] = []
        request_id: str | None = None
        tokens_seen: set[str] = set()
        page_body = body
        while True:
            raw = ctx.encode(page_body)
            credentials = await self._frozen_credentials(request)
            signed = sign(credentials, region, url, raw, headers)
            answer = await ctx.post_bytes(url, raw, signed)
            page = ctx.decode(answer.body, _Page)
            if request_id is None:
                request_id = answer.headers.get("x-amzn-RequestId")
            results.extend(RerankResult(r.index, r.relevanceScore) for r in page.results)
            token = page.nextToken
            if not token:
                break
            if token in tokens_seen or len(tokens_seen) >= len(request.documents):
                raise ResponseValidationError(
                    f"bedrock kept answering with a nextToken for model {request.model!r} "
                    f"after {len(tokens_seen) + 1} pages",
                    provider=ctx.provider,
                    model=ctx.model,
                    request_id=request_id,
                )
            tokens_seen.add(token)
            page_body = {**body, "nextToken": token}
        return RerankResponse(results=results, id=request_id)

    def body(self, request: RerankRequest, region: str) -> dict[str, Any]:
        """The ``Rerank`` request body (without ``nextToken``)."""
        model_configuration: dict[str, Any] = {"modelArn": model_arn(request.model, region)}
        extra = request.options.get("additionalModelRequestFields")
        if extra is not None:
            if not isinstance(extra, dict):
                raise ConfigurationError(
                    "bedrock additionalModelRequestFields must be a dict, "
                    f"got {type(extra).__name__}"
                )
            model_configuration["additionalModelRequestFields"] = extra
        return {
            "queries": [{"type": "TEXT", "textQuery": {"text": request.query}}],
            "sources": sources(request),
            "rerankingConfiguration": {
                "type": "BEDROCK_RERANKING_MODEL",
                "bedrockRerankingConfiguration": {
                    "numberOfResults": request.top_n or len(request.documents),
                    "modelConfiguration": model_configuration,
                },
            },
        }

    async def _frozen_credentials(self, request: RerankRequest) -> Any:
        options = request.options
        key_id = options.get("aws_access_key_id")
        secret = options.get("aws_secret_access_key")
        if bool(key_id) != bool(secret):
            raise ConfigurationError(
                "bedrock needs both aws_access_key_id and aws_secret_access_key, or neither"
            )
        source = (options.get("aws_profile_name"), key_id, secret, options.get("aws_session_token"))
        credentials = await self._credentials.get(source, lambda: _lookup_in_thread(*source))
        refresh_needed = getattr(credentials, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            return await anyio.to_thread.run_sync(credentials.get_frozen_credentials)
        return credentials.get_frozen_credentials()


def _region(request: RerankRequest) -> str:
    region = (
        request.options.get("region")
        or request.options.get("aws_region_name")
        or first_env(REGION_ENV)
    )
    if not region and request.model.startswith("arn:"):
        region = request.model.split(":")[3]
    if not region or not isinstance(region, str):
        raise ConfigurationError(
            "no AWS region for provider 'bedrock': pass region=..., or set "
            f"{' or '.join(REGION_ENV)}, or give the model as a full ARN"
        )
    return region


def model_arn(model: str, region: str) -> str:
    """A full ARN passes through; a bare model id becomes its foundation-model ARN."""
    if model.startswith("arn:"):
        return model
    return f"arn:aws:bedrock:{region}::foundation-model/{model}"


def endpoint(base: str | None, region: str) -> str:
    """The ``/rerank`` URL: the regional default, or ``base`` with a runtime host rewritten.

    A ``bedrock-runtime`` host (the InvokeModel endpoint users often configure) becomes
    ``bedrock-agent-runtime``, where ``Rerank`` lives.
    """
    if not base:
        return f"https://bedrock-agent-runtime.{region}.amazonaws.com/rerank"
    if "://" not in base:
        base = f"https://{base}"
    parts = urlsplit(base)
    host = parts.netloc.replace("bedrock-runtime", "bedrock-agent-runtime")
    return join_route(urlunsplit(parts._replace(netloc=host)), "/rerank")


def sources(request: RerankRequest) -> list[dict[str, Any]]:
    """Strings as ``TEXT`` sources; dicts as ``JSON`` sources, cut to ``rank_fields`` if given."""
    items: list[Any] = request.source_documents or request.documents
    fields = request.rank_fields
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict):
            document = item if fields is None else {f: item[f] for f in fields}
            inline: dict[str, Any] = {"type": "JSON", "jsonDocument": document}
        else:
            inline = {"type": "TEXT", "textDocument": {"text": item}}
        out.append({"type": "INLINE", "inlineDocumentSource": inline})
    return out


_SECRET_LOG_FILTER = SecretLogFilter()
"""Keeps botocore's signing records, which hold credentials, out of its log."""


def sign(
    credentials: Any, region: str, url: str, body: bytes, headers: Mapping[str, str]
) -> dict[str, str]:
    """``headers`` plus the SigV4 headers (``Authorization``, ``X-Amz-Date``, ...) for ``body``."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    logging.getLogger("botocore.auth").addFilter(_SECRET_LOG_FILTER)  # added once

    aws_request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    SigV4Auth(credentials, SERVICE, region).add_auth(aws_request)
    return dict(aws_request.headers.items())


async def _lookup_in_thread(
    profile: str | None, key_id: str | None, secret: str | None, token: str | None
) -> tuple[Any, float | None]:
    credentials = await anyio.to_thread.run_sync(_lookup, profile, key_id, secret, token)
    return credentials, None


def _lookup(profile: str | None, key_id: str | None, secret: str | None, token: str | None) -> Any:
    """botocore credentials from explicit keys or the AWS chain (blocking: file and network)."""
    try:
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        import botocore.exceptions
        import botocore.session
    except ImportError as exc:
        raise ConfigurationError(
            "the bedrock provider needs botocore for AWS request signing: "
            + install_hint("bedrock")
        ) from exc
    if key_id:
        return botocore.credentials.Credentials(key_id, secret, token)
    problem: str | None = None
    try:
        credentials = botocore.session.Session(profile=profile).get_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        problem = str(exc)
    if problem is not None:  # raised here: botocore's exceptions are not chained
        raise ConfigurationError(f"bedrock could not load AWS credentials: {problem}")
    if credentials is None:
        raise ConfigurationError(
            "no AWS credentials for provider 'bedrock': pass aws_access_key_id= and "
            "aws_secret_access_key=, or configure the AWS credential chain "
            "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...)"
        )
    return credentials
