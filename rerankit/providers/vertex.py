"""Google's Vertex AI ranking API (Discovery Engine ``rankingConfigs.rank``)."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

import anyio.to_thread
import msgspec

from rerankit._errors import (
    APIConnectionError,
    AuthenticationError,
    ConfigurationError,
    ResponseValidationError,
)
from rerankit._input import render
from rerankit._install import install_hint
from rerankit._settings import first_env
from rerankit._types import RerankRequest, RerankResponse, RerankResult
from rerankit.providers._auth import TokenCache, now
from rerankit.providers._base import ModelCapabilities, Provider, ProviderContext
from rerankit.providers._rest import join_route

__all__ = ["VertexAIProvider"]

PROJECT_ENV = ("VERTEXAI_PROJECT", "GOOGLE_CLOUD_PROJECT")
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
ROUTE = "/v1/projects/{project}/locations/{location}/rankingConfigs/default_ranking_config:rank"
_NO_EXPIRY_TTL = 1800.0
"""Seconds to keep a token whose credentials report no expiry."""

_DEFAULT = ModelCapabilities(max_documents=200)
_V004 = msgspec.structs.replace(_DEFAULT, max_tokens_per_doc=1_024)
_V003 = msgspec.structs.replace(_DEFAULT, max_tokens_per_doc=512)
_MODELS: dict[str, ModelCapabilities] = {
    "semantic-ranker-default@latest": _V004,
    "semantic-ranker-fast@latest": _V004,
    "semantic-ranker-default-004": _V004,
    "semantic-ranker-fast-004": _V004,
    "semantic-ranker-default-003": _V003,
    "semantic-ranker-default-002": _V003,
    "semantic-ranker-512@latest": _V003,
}


class _Record(msgspec.Struct):
    id: str
    score: float = 0.0
    """proto3 JSON leaves out a zero score."""


class _Answer(msgspec.Struct):
    records: list[_Record]


class _Google(msgspec.Struct):
    credentials: Any
    project: str | None


class VertexAIProvider(Provider):
    """``vertex_ai/<model>``: Google's ranking API (Discovery Engine), as Vertex AI offers it.

    Authentication: a ready OAuth2 access token (``api_key=`` or ``access_token=``), a
    service-account key (``credentials=``: a file path, its JSON text or its dict), else
    Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud user
    credentials, the metadata server). The last two need google-auth (the ``vertex``
    extra); tokens are fetched in a worker thread and cached
    until shortly before they expire. The project is the ``project`` option, then
    ``VERTEXAI_PROJECT``, ``GOOGLE_CLOUD_PROJECT``, then the credentials' project; it is also
    sent as ``X-Goog-User-Project``. ``location`` defaults to ``global``. Each document is a
    record with ``content``; a dict's ``title`` (when ranked on) becomes the record title and
    its other fields are rendered into ``content``. LiteLLM's ``vertex_project``,
    ``vertex_location`` and ``vertex_credentials`` are accepted too.
    """

    name = "vertex_ai"
    example_model: ClassVar[str] = "vertex_ai/semantic-ranker-default@latest"
    sources: ClassVar[tuple[str, ...]] = (
        "https://cloud.google.com/generative-ai-app-builder/docs/reference/rest/v1/"
        "projects.locations.rankingConfigs/rank: records[] 'At most 200 records to rank'; "
        "topN; the answer lists records by descending score",
    )
    install_extra: ClassVar[str] = "vertex"
    default_api_base: ClassVar[str | None] = "https://discoveryengine.googleapis.com"
    credential_chain: ClassVar[str | None] = "Google application default credentials"
    options = frozenset(
        {
            "project",
            "location",
            "access_token",
            "credentials",
            "vertex_project",
            "vertex_location",
            "vertex_credentials",
            "userLabels",
        }
    )

    def __init__(self) -> None:
        self._google: TokenCache[_Google] = TokenCache()
        self._tokens: TokenCache[str] = TokenCache()

    def capabilities(self, model: str) -> ModelCapabilities:
        return _MODELS.get(model, _DEFAULT)

    def model_table(self) -> Mapping[str, ModelCapabilities]:
        return _MODELS

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        token, project, token_key = await self._token_and_project(request, ctx)
        location = request.options.get("location") or request.options.get("vertex_location")
        url = join_route(
            ctx.api_base or self.default_api_base or "",
            ROUTE.format(project=project, location=location or "global"),
            complete=(":rank",),
        )
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "X-Goog-User-Project": project,
        }
        try:
            answer = await ctx.post(url, self.body(request), headers)
        except AuthenticationError:
            if token_key is not None:
                self._tokens.forget(token_key)
            raise
        decoded = ctx.decode(answer.body, _Answer)
        positions = {str(i): i for i in range(len(request.documents))}
        results = []
        for record in decoded.records:
            index = positions.get(record.id)
            if index is None:
                raise ResponseValidationError(
                    f"vertex_ai answered a record id {record.id!r} that was not sent "
                    f"(model {request.model!r})",
                    provider=ctx.provider,
                    model=ctx.model,
                )
            results.append(RerankResult(index, record.score))
        return RerankResponse(results=results)

    async def _token_and_project(
        self, request: RerankRequest, ctx: ProviderContext
    ) -> tuple[str, str, str | None]:
        """The access token, the project, and the token's cache key (``None``: a ready token)."""
        options = request.options
        project: str | None = (
            options.get("project") or options.get("vertex_project") or first_env(PROJECT_ENV)
        )
        ready_token: str | None = options.get("access_token") or ctx.api_key
        if ready_token is not None:
            if not project:
                raise ConfigurationError(_no_project())
            return ready_token, project, None
        source = options.get("credentials") or options.get("vertex_credentials")
        key = _source_key(source)
        google = await self._google.get(key, lambda: _load_in_thread(source))
        project = project or google.project
        if not project:
            raise ConfigurationError(_no_project())
        token = await self._tokens.get(key, lambda: _refresh_in_thread(google, ctx))
        return token, project, key

    def body(self, request: RerankRequest) -> dict[str, Any]:
        """The ``rank`` request body: one record per document, ids are positions."""
        body: dict[str, Any] = {
            "model": request.model,
            "query": request.query,
            "records": records(request),
            "ignoreRecordDetailsInResponse": True,
        }
        if request.top_n is not None:
            body["topN"] = request.top_n
        if "userLabels" in request.options:
            body["userLabels"] = request.options["userLabels"]
        return body


def records(request: RerankRequest) -> list[dict[str, str]]:
    """Records ``{id, title?, content?}``; ``title`` only from a caller's dict."""
    source = request.source_documents
    out: list[dict[str, str]] = []
    for position, text in enumerate(request.documents):
        record = {"id": str(position)}
        doc = source[position] if source is not None else text
        if isinstance(doc, dict):
            title, content = _title_and_content(doc, request.rank_fields, position)
            if title is not None:
                record["title"] = title
            if content is not None:
                record["content"] = content
        else:
            record["content"] = text
        out.append(record)
    return out


def _title_and_content(
    doc: dict[str, Any], rank_fields: list[str] | None, position: int
) -> tuple[str | None, str | None]:
    fields = list(doc) if rank_fields is None else rank_fields
    title = render(doc, ["title"], position) if "title" in fields else None
    if rank_fields is None and "content" in doc:
        rest = ["content"]
    elif rank_fields is None and isinstance(doc.get("text"), str):
        rest = ["text"]
    else:
        rest = [field for field in fields if field != "title"]
    return title, render(doc, rest, position) if rest else None


def _no_project() -> str:
    return (
        "no Google Cloud project for provider 'vertex_ai': pass project=..., or set "
        f"{' or '.join(PROJECT_ENV)}"
    )


def _source_key(source: object) -> str:
    """A cache key for a credentials option (``"adc"``: Application Default Credentials)."""
    if source is None:
        return "adc"
    if not isinstance(source, (dict, str, os.PathLike)):
        raise ConfigurationError(
            "vertex_ai credentials must be a service-account key: a file path, its JSON text or "
            f"its dict, got {type(source).__name__}"
        )
    try:
        if isinstance(source, dict):
            data = msgspec.json.encode(source, order="sorted")
        else:
            data = os.fsencode(source)
    except (TypeError, ValueError, msgspec.EncodeError):
        data = None  # the error is raised below, outside this block: its text holds the key
    if data is None:
        raise ConfigurationError(
            "vertex_ai credentials hold a value that is not JSON or not valid UTF-8 text "
            "(the value is not shown)"
        )
    return hashlib.sha256(data).hexdigest()


async def _load_in_thread(source: Any) -> tuple[_Google, float | None]:
    return await anyio.to_thread.run_sync(_load, source), None


def _load(source: Any) -> _Google:
    """Google credentials and their project (blocking: reads files, may probe the network)."""
    try:
        import google.auth
        import google.auth.exceptions
        from google.oauth2 import service_account
    except ImportError as exc:
        raise ConfigurationError(
            "the vertex_ai provider needs google-auth for Google credentials: "
            f"{install_hint('vertex')}, "
            "or pass a ready token as access_token="
        ) from exc
    try:
        if source is None:
            credentials, project = google.auth.default(scopes=SCOPES)
            return _Google(credentials, project)
        info: Any = source
        if isinstance(source, str) and source.lstrip().startswith("{"):
            info = msgspec.json.decode(source)
        elif not isinstance(source, dict):
            with open(os.fspath(source), "rb") as file:
                info = msgspec.json.decode(file.read())
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise ConfigurationError(
                "vertex_ai credentials= takes a service-account key; for other credential "
                "types use Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS)"
            )
        credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        return _Google(credentials, info.get("project_id"))
    except ConfigurationError:
        raise
    except OSError as exc:
        problem = _os_problem(exc)
    except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
        problem = str(exc)
    # raised here, not in a handler: Google's and the OS's exceptions may hold the key's text
    raise ConfigurationError(
        f"vertex_ai could not load Google credentials: {problem}. Set "
        "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, run "
        "`gcloud auth application-default login`, or pass credentials=... or access_token=..."
    )


def _os_problem(exc: OSError) -> str:
    """An OS error reading a credentials file, its file name left out when it looks like key
    text rather than a path."""
    name = exc.filename
    if isinstance(name, str) and "{" not in name and "\n" not in name and len(name) < 1024:
        return f"{exc.strerror or type(exc).__name__}: {name!r}"
    return exc.strerror or type(exc).__name__


async def _refresh_in_thread(google: _Google, ctx: ProviderContext) -> tuple[str, float | None]:
    return await anyio.to_thread.run_sync(_refresh, google.credentials, ctx)


def _refresh(credentials: Any, ctx: ProviderContext) -> tuple[str, float | None]:
    """A new access token and its expiry (blocking: calls the token endpoint)."""
    import google.auth.exceptions

    error: Exception | None = None
    try:
        credentials.refresh(_UrllibRequest())
    except google.auth.exceptions.RefreshError as exc:
        if getattr(exc, "retryable", False):
            error = APIConnectionError(
                f"vertex_ai could not refresh its Google access token: {exc}",
                provider=ctx.provider,
                model=ctx.model,
            )
        else:
            error = AuthenticationError(
                f"Google rejected the vertex_ai credentials: {exc}",
                status_code=401,
                provider=ctx.provider,
                model=ctx.model,
            )
    except google.auth.exceptions.TransportError as exc:
        error = APIConnectionError(
            f"vertex_ai could not reach the Google token endpoint: {exc}",
            provider=ctx.provider,
            model=ctx.model,
        )
    if error is not None:  # raised here: google-auth's exceptions are not chained
        raise error
    expiry: datetime | None = credentials.expiry
    if expiry is None:
        return credentials.token, now() + _NO_EXPIRY_TTL
    return credentials.token, expiry.replace(tzinfo=timezone.utc).timestamp()


class _Response:
    """What google-auth reads from an HTTP answer."""

    __slots__ = ("data", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self.status = status
        self.headers = headers
        self.data = data


class _UrllibRequest:
    """google-auth's transport interface over the standard library (no ``requests`` needed).

    It runs only in worker threads, for the few token and metadata calls google-auth makes.
    """

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _Response:
        import google.auth.exceptions

        request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout or 120) as answer:
                return _Response(answer.status, dict(answer.headers), answer.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return _Response(exc.code, dict(exc.headers), exc.read())
        except OSError as exc:
            raise google.auth.exceptions.TransportError(exc) from exc
