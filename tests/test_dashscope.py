"""DashScope and QwenCloud over real HTTP against a fake that serves both protocols."""

from __future__ import annotations

from typing import Any

import pytest

import rerankit
from rerankit import (
    AsyncClient,
    BadRequestError,
    ConfigurationError,
    ResponseValidationError,
    UnsupportedParameterError,
)
from rerankit.providers.dashscope import (
    COMPATIBLE_ROUTE,
    NATIVE_ROUTE,
    DashScopeProvider,
    QwenCloudProvider,
    dashscope_url,
)
from rerankit.testing import FakeServer, ProviderContract, Reply
from rerankit.testing._dashscope import COMPATIBLE_PATH, NATIVE_PATH, DashScopeFake

from .support import (
    DOCS,
    EMULATED,
    QUERY,
    RECORDS,
    REFUSED,
    RENDERED,
    assert_emulated,
    clean_env,
    expected_order,
    fake_fixture,
    last_body,
    provider_url,
    rerank,
    server_fixture,
)

pytestmark = pytest.mark.anyio

KEY = "sk-dashscope-0123456789"

_clean_provider_env = clean_env(DashScopeProvider, QwenCloudProvider)
fake = fake_fixture(lambda: DashScopeFake(KEY))
server = server_fixture()


# --- contracts ------------------------------------------------------------------------------


class TestDashScopeCompatibleContract(ProviderContract):
    model = "dashscope/qwen3-rerank"
    fake_class = DashScopeFake


class TestDashScopeNativeContract(ProviderContract):
    model = "dashscope/gte-rerank-v2"
    fake_class = DashScopeFake


class TestDashScopeMultimodalContract(ProviderContract):
    model = "dashscope/qwen3-vl-rerank"
    fake_class = DashScopeFake


class TestQwenCloudContract(ProviderContract):
    model = "qwencloud/qwen3-rerank"
    fake_class = DashScopeFake

    def settings(self, server: FakeServer) -> dict[str, Any]:
        return {"api_key": self.api_key, "api_base": f"{server.url}/compatible-api/v1"}


# --- the two protocols ----------------------------------------------------------------------


async def test_qwen3_rerank_uses_the_compatible_protocol(server: FakeServer) -> None:
    response = await rerank("dashscope/qwen3-rerank", api_key=KEY, api_base=server.url, top_n=2)
    request = server.received[-1]
    assert request.path == COMPATIBLE_PATH
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.json() == {
        "model": "qwen3-rerank",
        "query": QUERY,
        "documents": DOCS,
        "top_n": 2,
        "return_documents": False,
    }
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:2]
    assert [r.document for r in response.results] == [
        {"text": DOCS[i]} for i in expected_order(QUERY, DOCS)[:2]
    ]
    assert response.id == "req-1"
    assert response.usage.total_tokens is not None
    assert response.usage.input_tokens is None
    assert response.usage.search_units is None
    assert response.score_kind == "unknown"
    assert response.provider_meta == {"protocol": "compatible"}


async def test_gte_rerank_v2_uses_the_native_protocol(server: FakeServer) -> None:
    response = await rerank("dashscope/gte-rerank-v2", api_key=KEY, api_base=server.url, top_n=3)
    request = server.received[-1]
    assert request.path == NATIVE_PATH
    assert request.json() == {
        "model": "gte-rerank-v2",
        "input": {"query": QUERY, "documents": DOCS},
        "parameters": {"return_documents": False, "top_n": 3},
    }
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:3]
    assert response.id == "req-1"
    assert response.usage.total_tokens is not None
    assert response.provider_meta == {"protocol": "native"}


async def test_qwen3_vl_rerank_sends_object_documents(server: FakeServer) -> None:
    await rerank("dashscope/qwen3-vl-rerank", api_key=KEY, api_base=server.url)
    body = last_body(server)
    assert server.received[-1].path == NATIVE_PATH
    assert body["input"]["documents"] == [{"text": d} for d in DOCS]


async def test_instruction_selects_native_where_the_model_takes_it(server: FakeServer) -> None:
    await rerank("dashscope/qwen3-rerank", api_key=KEY, api_base=server.url, instruction="QA")
    assert server.received[-1].path == NATIVE_PATH
    assert last_body(server)["parameters"] == {"return_documents": False, "instruct": "QA"}

    with pytest.raises(UnsupportedParameterError, match="instruction") as info:
        await rerank("dashscope/gte-rerank-v2", api_key=KEY, api_base=server.url, instruction="x")
    assert info.value.provider == "dashscope"
    assert info.value.model == "gte-rerank-v2"
    assert len(server.received) == 1


async def test_instruction_on_the_compatible_protocol_is_unsupported(server: FakeServer) -> None:
    kwargs: dict[str, Any] = {"api_key": KEY, "api_base": server.url, "protocol": "compatible"}
    with pytest.raises(UnsupportedParameterError, match="protocol='native'"):
        await rerank("dashscope/qwen3-rerank", instruction="QA", **kwargs)
    assert server.received == []
    with pytest.warns(rerankit.RerankitWarning, match="instruction"):
        await rerank("dashscope/qwen3-rerank", instruction="QA", drop_params=True, **kwargs)
    assert server.received[-1].path == COMPATIBLE_PATH
    assert "instruct" not in last_body(server)
    assert "instruction" not in last_body(server)


async def test_protocol_option_overrides_the_model(server: FakeServer) -> None:
    await rerank("dashscope/qwen3-rerank", api_key=KEY, api_base=server.url, protocol="native")
    assert server.received[-1].path == NATIVE_PATH
    with pytest.raises(BadRequestError, match="Model not exist") as info:
        await rerank(
            "dashscope/gte-rerank-v2", api_key=KEY, api_base=server.url, protocol="compatible"
        )
    assert server.received[-1].path == COMPATIBLE_PATH
    assert info.value.request_id == "req-2"
    assert info.value.status_code == 400
    with pytest.raises(ConfigurationError, match="'compatible' or 'native'"):
        await rerank("dashscope/qwen3-rerank", api_key=KEY, api_base=server.url, protocol="v2")
    assert len(server.received) == 2


@pytest.mark.parametrize("model", ["dashscope/qwen3-rerank", "dashscope/gte-rerank-v2"])
async def test_dicts_are_rendered_on_both_protocols(server: FakeServer, model: str) -> None:
    response = await rerank(
        model, RECORDS, api_key=KEY, api_base=server.url, rank_fields=["title", "body"]
    )
    body = last_body(server)
    documents = body["input"]["documents"] if "input" in body else body["documents"]
    assert documents == RENDERED
    assert "rank_fields" not in body
    assert [r.document for r in response.results] == [RECORDS[1], RECORDS[0]]


@pytest.mark.parametrize("parameter", EMULATED)
async def test_token_limits_and_chunking_are_done_by_rerankit(
    server: FakeServer, parameter: dict[str, Any]
) -> None:
    async with AsyncClient(
        providers={"dashscope": {"api_key": KEY, "api_base": server.url}}
    ) as client:
        await assert_emulated(client, server, "dashscope/qwen3-rerank", parameter)


@pytest.mark.parametrize("parameter", [{"instruction": "x", "protocol": "compatible"}, {"rank": 1}])
async def test_unsupported_parameters_raise_before_any_request(
    server: FakeServer, parameter: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError):
        await rerank("dashscope/qwen3-rerank", api_key=KEY, api_base=server.url, **parameter)
    assert server.received == []


# --- answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "answer", "match"),
    [
        ("native", {"request_id": "r-9", "usage": {"total_tokens": 3}}, "without a result list"),
        ("native", {"output": {"results": [{"relevance_score": 0.4}]}}, "without index"),
        ("compatible", {"output": {"results": []}, "request_id": "r-9"}, "without a result list"),
        (
            "compatible",
            {"code": "Throttling", "message": "slow down", "request_id": "r-9"},
            "error 'Throttling'.*slow down",
        ),
    ],
)
async def test_bad_answers_raise_with_the_request_id(
    server: FakeServer, protocol: str, answer: dict[str, Any], match: str
) -> None:
    server.fail(Reply(body=answer))
    with pytest.raises(ResponseValidationError, match=match) as info:
        await rerank("dashscope/qwen3-rerank", api_key=KEY, api_base=server.url, protocol=protocol)
    if "request_id" in answer:
        assert info.value.request_id == "r-9"


async def test_compatible_answer_with_request_id_and_prompt_tokens(server: FakeServer) -> None:
    server.fail(
        Reply(
            body={
                "request_id": "r-7",
                "results": [{"index": 1, "relevance_score": 0.9}],
                "usage": {"prompt_tokens": 12, "total_tokens": 12},
            }
        )
    )
    response = await rerank("dashscope/qwen3-rerank", api_key=KEY, api_base=server.url)
    assert response.id == "r-7"
    assert response.usage == rerankit.Usage(input_tokens=12, total_tokens=12)


async def test_error_bodies_give_the_request_id(server: FakeServer) -> None:
    with pytest.raises(rerankit.AuthenticationError) as info:
        await rerank("dashscope/qwen3-rerank", api_key="sk-wrong-key-42", api_base=server.url)
    assert info.value.request_id == "req-1"
    assert "invalid api key" in str(info.value)
    server.fail(Reply(status=429, body=b"not json"))
    with pytest.raises(rerankit.RateLimitError) as limited:
        await rerank("dashscope/qwen3-rerank", api_key=KEY, api_base=server.url)
    assert limited.value.request_id is None


# --- URLs and environment -------------------------------------------------------------------

HOST = "https://dashscope.aliyuncs.com"


@pytest.mark.parametrize(
    ("base", "compatible", "native"),
    [
        (HOST, HOST + COMPATIBLE_ROUTE, HOST + NATIVE_ROUTE),
        (HOST + "/", HOST + COMPATIBLE_ROUTE, HOST + NATIVE_ROUTE),
        (HOST + "/compatible-mode/v1", HOST + COMPATIBLE_ROUTE, HOST + NATIVE_ROUTE),
        (HOST + "/compatible-api/v1", HOST + COMPATIBLE_ROUTE, HOST + NATIVE_ROUTE),
        (HOST + COMPATIBLE_ROUTE, HOST + COMPATIBLE_ROUTE, HOST + NATIVE_ROUTE),
        (HOST + NATIVE_ROUTE + "/", HOST + COMPATIBLE_ROUTE, HOST + NATIVE_ROUTE),
        (HOST + "/api/v1", HOST + COMPATIBLE_ROUTE, HOST + NATIVE_ROUTE),
        (
            "https://ws-1.ap-southeast-1.maas.aliyuncs.com/compatible-api/v1",
            "https://ws-1.ap-southeast-1.maas.aliyuncs.com" + COMPATIBLE_ROUTE,
            "https://ws-1.ap-southeast-1.maas.aliyuncs.com" + NATIVE_ROUTE,
        ),
        ("https://gw.example/ali/rerank", "https://gw.example/ali/rerank", None),
        ("https://gw.example/ali/reranks", "https://gw.example/ali/reranks", None),
    ],
)
def test_join_rules(base: str, compatible: str, native: str | None) -> None:
    assert dashscope_url(base, "compatible") == compatible
    assert dashscope_url(base, "native") == (native or compatible)


@pytest.mark.parametrize(
    ("cls", "model", "options", "url"),
    [
        (DashScopeProvider, "qwen3-rerank", {}, HOST + COMPATIBLE_ROUTE),
        (DashScopeProvider, "gte-rerank-v2", {}, HOST + NATIVE_ROUTE),
        (
            QwenCloudProvider,
            "qwen3-rerank",
            {},
            "https://dashscope-intl.aliyuncs.com" + COMPATIBLE_ROUTE,
        ),
        (
            QwenCloudProvider,
            "qwen3-rerank",
            {"protocol": "native"},
            "https://dashscope-intl.aliyuncs.com" + NATIVE_ROUTE,
        ),
    ],
)
def test_default_endpoints(
    cls: type[DashScopeProvider], model: str, options: dict[str, Any], url: str
) -> None:
    assert provider_url(cls, model, cls.default_api_base, **options) == url


async def test_dashscope_env_key_and_chat_base_remap(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match="DASHSCOPE_API_KEY"):
        await rerank("dashscope/qwen3-rerank", api_base=server.url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.setenv("DASHSCOPE_API_BASE", f"{server.url}/compatible-mode/v1")
    await rerank("dashscope/qwen3-rerank")
    await rerank("dashscope/gte-rerank-v2")
    assert [r.path for r in server.received] == [COMPATIBLE_PATH, NATIVE_PATH]
    with FakeServer(DashScopeFake(KEY)) as rerank_server:
        monkeypatch.setenv("DASHSCOPE_API_BASE_RERANK", f"{rerank_server.url}{COMPATIBLE_ROUTE}")
        await rerank("dashscope/qwen3-rerank")
        await rerank("dashscope/gte-rerank-v2")
        assert [r.path for r in rerank_server.received] == [COMPATIBLE_PATH, NATIVE_PATH]
    assert len(server.received) == 2


async def test_qwencloud_env_order(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHSCOPE_API_BASE_RERANK", f"{REFUSED}/never")
    with pytest.raises(ConfigurationError, match="QWENCLOUD_API_KEY or DASHSCOPE_API_KEY"):
        await rerank("qwencloud/qwen3-rerank")
    monkeypatch.setenv("QWENCLOUD_API_BASE_RERANK", server.url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    await rerank("qwencloud/qwen3-rerank")
    monkeypatch.setenv("QWENCLOUD_API_KEY", "sk-intl-key-first")
    with pytest.raises(rerankit.AuthenticationError):
        await rerank("qwencloud/qwen3-rerank")
    assert [r.headers["authorization"] for r in server.received] == [
        f"Bearer {KEY}",
        "Bearer sk-intl-key-first",
    ]
    assert QwenCloudProvider.api_base_env == ("QWENCLOUD_API_BASE_RERANK",)


# --- declared data --------------------------------------------------------------------------


def test_per_model_limits() -> None:
    provider = DashScopeProvider()
    gte = provider.capabilities("gte-rerank-v2")
    assert (gte.max_documents, gte.max_tokens_per_doc, gte.max_request_tokens) == (
        500,
        4_000,
        30_000,
    )
    assert "instruction" not in gte.parameters
    qwen3 = provider.capabilities("qwen3-rerank")
    assert (qwen3.max_documents, qwen3.max_request_tokens) == (500, 120_000)
    assert qwen3.parameters == frozenset({"instruction"})
    assert provider.capabilities("qwen3-vl-rerank").max_documents == 100
    assert all(caps.score_kind == "unknown" for caps in provider.model_table().values())
    assert QwenCloudProvider().model_table() == provider.model_table()


@pytest.mark.parametrize("cls", [DashScopeProvider, QwenCloudProvider])
def test_providers_are_registered_and_documented(cls: type[DashScopeProvider]) -> None:
    from rerankit._registry import load_provider

    assert load_provider(cls.name) is cls
    assert cls.__doc__
    assert cls.example_model == f"{cls.name}/qwen3-rerank"
    assert cls.api_key_required
    assert "protocol" in cls.options
