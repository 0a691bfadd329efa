"""No API key ever appears in an error message, a log line or a repr."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import traceback
import types
from collections.abc import Iterator
from typing import Any

import pytest

import rerankit
from rerankit import AsyncClient, ProviderSettings, RetryPolicy
from rerankit._redact import mask_query_secrets
from rerankit.providers import ProviderContext
from rerankit.testing import FakeServer, ReceivedRequest, Reply

pytestmark = pytest.mark.anyio

SECRET = "sk-live-SECRET-0123456789abcdef"


async def test_key_echoed_by_the_provider_is_redacted(
    cohere_server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    echo = {"message": f"key {SECRET} is not valid for this model"}
    cohere_server.fail(
        Reply(status=500, body=echo),
        Reply(status=401, body=echo),
    )
    caplog.set_level(logging.DEBUG)
    async with AsyncClient(retry=RetryPolicy(initial_delay=0.01)) as client:
        with pytest.raises(rerankit.AuthenticationError) as info:
            await client.rerank(
                "cohere/rerank-v3.5", "q", ["d"], api_key=SECRET, api_base=cohere_server.url
            )
    error = info.value
    assert cohere_server.received[0].headers["authorization"] == f"Bearer {SECRET}"
    for text in (str(error), repr(error), error.body or "", caplog.text):
        assert SECRET not in text
    assert "***" in str(error)
    assert "retrying cohere" in caplog.text


async def test_connection_errors_do_not_carry_the_key() -> None:
    async with AsyncClient(retry=RetryPolicy(max_retries=0)) as client:
        with pytest.raises(rerankit.APIConnectionError) as info:
            await client.rerank(
                "cohere/rerank-v3.5", "q", ["d"], api_key=SECRET, api_base="http://127.0.0.1:9"
            )
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value.__cause__)


def test_reprs_hide_the_key() -> None:
    settings = ProviderSettings(api_key=SECRET, api_base="http://x")
    ctx = ProviderContext(provider="cohere", model="m", api_key=SECRET)
    client = AsyncClient(providers={"cohere": {"api_key": SECRET}})
    for obj in (settings, ctx, client):
        assert SECRET not in repr(obj)
        assert SECRET not in str(obj)
    for struct in (settings, ctx):  # rich's pretty printer reads __rich_repr__
        assert SECRET not in str(struct.__rich_repr__())
    assert "'***'" in repr(settings)
    assert "'***'" in repr(ctx)


def test_bad_settings_do_not_echo_values() -> None:
    with pytest.raises(rerankit.ConfigurationError) as info:
        AsyncClient(providers={"cohere": {"api_key": SECRET, "timeout": "slow"}})
    assert SECRET not in str(info.value)


def test_secret_options_are_masked_in_reprs() -> None:
    options = {
        "aws_secret_access_key": SECRET,
        "token": SECRET,
        "zen_api_key": SECRET,
        "credentials": {"private_key": SECRET},
        "region": "eu-west-1",
    }
    settings = ProviderSettings(options=options)
    request = rerankit.RerankRequest(model="m", query="q", documents=["d"], options=options)
    for obj in (settings, request):
        assert SECRET not in repr(obj)
        assert SECRET not in str(obj.__rich_repr__())
        assert "eu-west-1" in repr(obj)


def test_secret_query_parameters_are_masked() -> None:
    line = '1.2.3.4 "GET /v1/models?endpoint=rerank&api_key=sk-1&x-amz-signature=ab HTTP/1.1" 401'
    assert mask_query_secrets(line) == (
        '1.2.3.4 "GET /v1/models?endpoint=rerank&api_key=***&x-amz-signature=*** HTTP/1.1" 401'
    )
    assert mask_query_secrets("https://h/r?max_tokens_per_doc=5&token=") == (
        "https://h/r?max_tokens_per_doc=5&token="
    )


# --- nothing reachable from an error holds a secret ------------------------------------------

TOKEN = "ya29.SECRET-token-0123456789"
SESSION = "aws-SECRET-session-0123456789"
AWS_SECRET = "aws-SECRET-access-key-0123456789"
SECRETS = (SECRET, TOKEN, SESSION, AWS_SECRET)
_LEAVES = (str, bytes, int, float, bool, type(None))
_OPAQUE = (types.ModuleType, type, types.FunctionType, types.FrameType, types.TracebackType)


def _reachable_texts(error: BaseException) -> list[str]:
    """The formatted traceback, and the repr of everything reachable from ``error``: its
    ``__cause__`` and ``__context__`` (recursively), ``args``, attributes and their contents."""
    texts = ["".join(traceback.format_exception(error))]
    seen: set[int] = set()
    stack: list[tuple[object, int]] = [(error, 0)]
    while stack:
        obj, depth = stack.pop()
        if id(obj) in seen or depth > 8 or isinstance(obj, _OPAQUE):
            continue
        seen.add(id(obj))
        texts.append(repr(obj))
        if isinstance(obj, _LEAVES):
            continue
        children: list[object] = []
        if isinstance(obj, BaseException):
            children += [obj.__cause__, obj.__context__, *obj.args]
        if isinstance(obj, dict):
            children += [*obj.keys(), *obj.values()]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            children += list(obj)
        elif hasattr(obj, "items") and callable(obj.items):  # multidicts and other mappings
            children += [value for item in obj.items() for value in item]
        children += list(getattr(obj, "__dict__", {}).values())
        for name in getattr(type(obj), "__slots__", ()):
            children.append(getattr(obj, name, None))
        stack += [(child, depth + 1) for child in children]
    return texts


def assert_no_secret(error: BaseException, log: str) -> None:
    texts = _reachable_texts(error)
    for secret in SECRETS:
        assert not any(secret in text for text in texts), f"{secret} reachable from {error!r}"
        assert secret not in log


def _echo(status: int, body: bytes | None = None) -> Any:
    """A provider that answers ``status`` with everything it was sent: headers and body."""

    def handler(request: ReceivedRequest) -> Reply:
        if body is not None:
            return Reply(status=status, body=body + request.body + str(request.headers).encode())
        sent = {"headers": request.headers, "body": request.body.decode("utf-8", "replace")}
        return Reply(status=status, body={"message": f"rejected {sent}", "echo": sent})

    return handler


@contextlib.contextmanager
def _raw_server(answer: bytes) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that answers every connection with ``answer`` (bytes that
    need not be valid HTTP) and closes it; yields its base URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                conn.recv(65536)
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


async def _failed_call(caplog: pytest.LogCaptureFixture, model: str, **kwargs: Any) -> Exception:
    caplog.set_level(logging.DEBUG)
    async with AsyncClient(retry=RetryPolicy(max_retries=1, initial_delay=0.01)) as client:
        with pytest.raises(rerankit.RerankitError) as info:
            await client.rerank(model, "q", ["d"], fallbacks=[], **kwargs)
    return info.value


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 422, 429, 500, 503])
async def test_no_key_reachable_from_status_errors(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeServer(_echo(status)) as server:
        error = await _failed_call(
            caplog, "cohere/rerank-v3.5", api_key=SECRET, api_base=server.url
        )
        assert SECRET in server.received[0].headers["authorization"]
    assert isinstance(error, rerankit.APIStatusError)
    assert error.status_code == status
    assert_no_secret(error, caplog.text)


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(reset=True), id="reset"),
        pytest.param(Reply(body={"results": []}, truncate=True), id="truncated"),
        pytest.param(Reply(body={"results": []}, delay=2), id="timeout"),
    ],
)
async def test_no_key_reachable_from_connection_errors(
    reply: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeServer(lambda request: reply) as server:
        error = await _failed_call(
            caplog, "cohere/rerank-v3.5", api_key=SECRET, api_base=server.url, timeout=0.3
        )
    assert isinstance(error, rerankit.APIConnectionError)
    assert_no_secret(error, caplog.text)


async def test_no_key_reachable_when_the_connection_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = await _failed_call(
        caplog, "cohere/rerank-v3.5", api_key=SECRET, api_base="http://127.0.0.1:9"
    )
    assert isinstance(error, rerankit.APIConnectionError)
    assert_no_secret(error, caplog.text)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", id="bad-length"),
        pytest.param(b"not http at all\r\n\r\n", id="bad-status-line"),
        pytest.param(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", id="bad-header"),
    ],
)
async def test_no_key_reachable_from_malformed_http(
    answer: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp reports these with a ClientResponseError whose request_info holds the request
    headers, Authorization included; rerankit keeps only its redacted text."""
    with _raw_server(answer) as url:
        error = await _failed_call(caplog, "cohere/rerank-v3.5", api_key=SECRET, api_base=url)
    assert isinstance(error, rerankit.APIConnectionError)
    assert error.__cause__ is None
    assert error.__context__ is None
    assert_no_secret(error, caplog.text)


async def test_no_key_reachable_from_a_malformed_answer(caplog: pytest.LogCaptureFixture) -> None:
    with FakeServer(_echo(200, body=b'{"results": [ ' + SECRET.encode())) as server:
        error = await _failed_call(
            caplog, "cohere/rerank-v3.5", api_key=SECRET, api_base=server.url
        )
    assert isinstance(error, rerankit.ResponseValidationError)
    assert_no_secret(error, caplog.text)


@pytest.mark.parametrize("status", [400, 401, 500])
async def test_no_key_reachable_from_a_failed_iam_exchange(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """watsonx sends its API key in the IAM exchange's form body; the IAM endpoint echoes it."""
    with FakeServer(_echo(status)) as server:
        error = await _failed_call(
            caplog,
            "watsonx/m",
            api_key=SECRET,
            api_base=server.url,
            iam_url=f"{server.url}/identity/token",
            project_id="p",
        )
        assert SECRET in server.received[0].body.decode()
    assert isinstance(error, rerankit.APIStatusError)
    assert_no_secret(error, caplog.text)


@pytest.mark.parametrize("iam", ["http://127.0.0.1:9/token", "malformed"])
async def test_no_key_reachable_when_the_iam_endpoint_fails(
    iam: str, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeServer(_echo(200, body=b"{" + SECRET.encode())) as server:
        iam_url = f"{server.url}/identity/token" if iam == "malformed" else iam
        error = await _failed_call(
            caplog,
            "watsonx/m",
            api_key=SECRET,
            api_base=server.url,
            iam_url=iam_url,
            project_id="p",
        )
    assert isinstance(error, (rerankit.APIConnectionError, rerankit.ResponseValidationError))
    assert_no_secret(error, caplog.text)


@pytest.mark.parametrize(
    ("model", "options"),
    [
        pytest.param("watsonx/m", {"token": TOKEN, "project_id": "p"}, id="watsonx-token"),
        pytest.param("watsonx/m", {"zen_api_key": TOKEN, "project_id": "p"}, id="watsonx-zen"),
        pytest.param("vertex_ai/m", {"access_token": TOKEN, "project": "p"}, id="vertex-token"),
        pytest.param(
            "bedrock/m",
            {
                "aws_access_key_id": "AKIDEXAMPLE",
                "aws_secret_access_key": AWS_SECRET,
                "aws_session_token": SESSION,
                "region": "us-east-1",
            },
            id="bedrock-session",
        ),
    ],
)
async def test_no_token_reachable_when_the_provider_echoes_it(
    model: str, options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Tokens from provider options (not ``api_key``) are sent in headers and hidden too."""
    with FakeServer(_echo(403)) as server:
        error = await _failed_call(caplog, model, api_base=server.url, **options)
        sent = str(server.received[0].headers)
        assert TOKEN in sent or SESSION in sent
    assert isinstance(error, rerankit.PermissionDeniedError)
    assert_no_secret(error, caplog.text)


@pytest.mark.parametrize("token_endpoint", ["echo", "refused"])
async def test_no_key_reachable_from_a_failed_google_token_refresh(
    token_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("google.auth")
    from rerankit.testing import VertexFake

    with FakeServer(_echo(400)) as server:
        token_uri = f"{server.url}/token" if token_endpoint == "echo" else "http://127.0.0.1:9/t"
        info = VertexFake().service_account_info(token_uri, project_id="p")
        error = await _failed_call(caplog, "vertex_ai/m", api_base=server.url, credentials=info)
    assert isinstance(error, (rerankit.AuthenticationError, rerankit.APIConnectionError))
    key = info["private_key"].splitlines()[5]  # a line of the PEM body
    for text in [*_reachable_texts(error), caplog.text]:
        assert key not in text
    assert_no_secret(error, caplog.text)


def test_no_key_reachable_through_the_sync_client(caplog: pytest.LogCaptureFixture) -> None:
    """The sync facade re-raises the loop thread's error; that adds no chain holding a key."""
    caplog.set_level(logging.DEBUG)
    with _raw_server(b"not http at all\r\n\r\n") as url:
        client = rerankit.Client(retry=RetryPolicy(max_retries=0))
        with client, pytest.raises(rerankit.APIConnectionError) as info:
            client.rerank("cohere/rerank-v3.5", "q", ["d"], api_key=SECRET, api_base=url)
    assert_no_secret(info.value, caplog.text)
