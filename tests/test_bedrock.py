"""Bedrock Agent Runtime Rerank over real HTTP, against a fake that verifies SigV4 signatures."""

from __future__ import annotations

import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import rerankit
from rerankit import AsyncClient, ConfigurationError, UnsupportedParameterError
from rerankit._types import RerankRequest
from rerankit.providers import bedrock
from rerankit.providers.bedrock import BedrockProvider, endpoint
from rerankit.testing import FakeServer, ProviderContract, ReceivedRequest, Reply
from rerankit.testing._cloud import BedrockFake

from .support import DOCS_5 as DOCS
from .support import (
    NO_RETRY,
    QUERY,
    REFUSED,
    clear_env,
    client_fixture,
    expected_order,
    fake_fixture,
    server_fixture,
)

pytestmark = pytest.mark.anyio

KEY_ID = "AKIDEXAMPLE0123"
SECRET = "bedrock-test-secret-0123456789"
REGION = "us-west-2"
MODEL = "bedrock/amazon.rerank-v1:0"
ARN = f"arn:aws:bedrock:{REGION}::foundation-model/amazon.rerank-v1:0"
AWS_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION_NAME",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)


@pytest.fixture(autouse=True)
def _no_machine_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS credential, profile, region or instance role of this machine leaks in."""
    clear_env(monkeypatch, BedrockProvider, *AWS_ENV)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def calls(server: FakeServer) -> list[ReceivedRequest]:
    """The first page of each rerank call (later pages carry a ``nextToken``)."""
    return [r for r in server.received if "nextToken" not in r.json()]


fake = fake_fixture(lambda: BedrockFake(KEY_ID, SECRET, region=REGION, page_size=3))
server = server_fixture()


def settings(server: FakeServer, **options: Any) -> dict[str, Any]:
    return {
        "api_base": server.url,
        "options": {
            "region": REGION,
            "aws_access_key_id": KEY_ID,
            "aws_secret_access_key": SECRET,
            **options,
        },
    }


client = client_fixture(lambda s: {"bedrock": settings(s)}, timeout=10)


async def test_sends_the_documented_signed_request(client: AsyncClient, server: FakeServer) -> None:
    response = await client.rerank(MODEL, QUERY, DOCS[:3], top_n=2)

    (sent,) = server.received
    assert sent.path == "/rerank"
    assert sent.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
    assert f"/{REGION}/bedrock/aws4_request" in sent.headers["authorization"]
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {
        "queries": [{"type": "TEXT", "textQuery": {"text": QUERY}}],
        "sources": [
            {
                "type": "INLINE",
                "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": d}},
            }
            for d in DOCS[:3]
        ],
        "rerankingConfiguration": {
            "type": "BEDROCK_RERANKING_MODEL",
            "bedrockRerankingConfiguration": {
                "numberOfResults": 2,
                "modelConfiguration": {"modelArn": ARN},
            },
        },
    }
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS[:3])[:2]
    assert [r.document for r in response.results] == [
        {"text": DOCS[i]} for i in expected_order(QUERY, DOCS[:3])[:2]
    ]
    assert response.id == "fake-request-1"
    assert response.score_kind == "unknown"
    assert response.usage == rerankit.Usage()


async def test_every_page_is_fetched_signed_and_merged(
    client: AsyncClient, server: FakeServer
) -> None:
    docs = ["reset settings", "password settings", *(f"{c} settings" for c in "abcdefgh")]
    response = await client.rerank(MODEL, QUERY, docs, return_documents=False)

    assert len(server.received) == 4  # 10 results, 3 per page
    bodies = [r.json() for r in server.received]
    assert "nextToken" not in bodies[0]
    assert [b.get("nextToken", "").partition(".")[0] for b in bodies[1:]] == ["3", "6", "9"]
    for body in bodies:
        body.pop("nextToken", None)
        assert body == bodies[0]
    assert bodies[0]["rerankingConfiguration"]["bedrockRerankingConfiguration"][
        "numberOfResults"
    ] == len(docs)
    assert len({r.headers["authorization"] for r in server.received}) == 4
    assert [r.index for r in response.results] == expected_order(QUERY, docs)
    assert response.id == "fake-request-1"

    response = await client.rerank(MODEL, QUERY, docs, top_n=5)
    assert len(server.received) == 6
    assert [r.index for r in response.results] == expected_order(QUERY, docs)[:5]


async def test_credentials_and_region_from_the_environment(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.handler = BedrockFake(KEY_ID, SECRET, session_token="session-token-1", region=REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("BEDROCK_API_BASE", server.url)
    async with AsyncClient() as client:
        response = await client.rerank(MODEL, QUERY, DOCS)
    assert response.results[0].index == expected_order(QUERY, DOCS)[0]
    assert len(server.received) == 2  # two pages
    for sent in server.received:
        assert sent.headers["x-amz-security-token"] == "session-token-1"
        assert "x-amz-security-token" in sent.headers["authorization"]


async def test_credentials_from_a_named_profile(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[rerank]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    async with AsyncClient() as client:
        await client.rerank(
            MODEL, QUERY, DOCS, aws_profile_name="rerank", region=REGION, api_base=server.url
        )
        monkeypatch.setenv("AWS_PROFILE", "rerank")
        await client.rerank(MODEL, QUERY, DOCS, aws_region_name=REGION, api_base=server.url)
        with pytest.raises(ConfigurationError, match="could not load AWS credentials"):
            await client.rerank(
                MODEL, QUERY, DOCS, aws_profile_name="nope", region=REGION, api_base=server.url
            )
    assert len(calls(server)) == 2


async def test_a_wrong_secret_fails_the_signature_check(server: FakeServer) -> None:
    async with AsyncClient(retry=NO_RETRY) as client:
        with pytest.raises(rerankit.PermissionDeniedError, match="signature") as info:
            await client.rerank(
                MODEL,
                QUERY,
                DOCS,
                api_base=server.url,
                region=REGION,
                aws_access_key_id=KEY_ID,
                aws_secret_access_key="not-the-secret",
            )
    assert "not-the-secret" not in str(info.value)
    assert info.value.provider == "bedrock"


def test_the_fake_rejects_a_body_changed_after_signing(fake: BedrockFake) -> None:
    import botocore.credentials

    credentials = botocore.credentials.Credentials(KEY_ID, SECRET)
    body = b'{"queries": []}'
    url = "http://127.0.0.1:8080/rerank"
    headers = bedrock.sign(credentials, REGION, url, body, {"Content-Type": "application/json"})
    received = ReceivedRequest(
        method="POST",
        path="/rerank",
        query={},
        headers={k.lower(): v for k, v in {**headers, "Host": "127.0.0.1:8080"}.items()},
        body=body,
    )
    assert fake.signature_problem(received) is None
    received.body = b'{"queries": [] }'
    assert "does not match" in (fake.signature_problem(received) or "")


async def test_region_order_and_arn_models(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def region(model: str = "amazon.rerank-v1:0", **options: Any) -> str:
        request = RerankRequest(model=model, query="q", documents=["d"], options=options)
        return bedrock._region(request)

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert region() == "eu-central-1"
    monkeypatch.setenv("AWS_REGION", "ca-central-1")
    assert region() == "ca-central-1"
    monkeypatch.setenv("AWS_REGION_NAME", "ap-northeast-1")
    assert region() == "ap-northeast-1"
    assert region(aws_region_name="us-east-1") == "us-east-1"
    assert region(region="us-west-2", aws_region_name="us-east-1") == "us-west-2"
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_REGION_NAME"):
        monkeypatch.delenv(name)
    assert region(ARN) == REGION
    with pytest.raises(ConfigurationError, match="AWS_REGION_NAME or AWS_REGION or AWS_DEFAULT"):
        region()

    async with AsyncClient(providers={"bedrock": settings(server)}) as client:
        await client.rerank(f"bedrock/{ARN}", QUERY, DOCS, region=None)
    assert (
        server.received[-1].json()["rerankingConfiguration"]["bedrockRerankingConfiguration"][
            "modelConfiguration"
        ]["modelArn"]
        == ARN
    )
    assert BedrockProvider().capabilities(ARN.replace("amazon.rerank-v1:0", "cohere.rerank-v3-5:0"))
    assert BedrockProvider().capabilities("cohere.rerank-v3-5:0").max_tokens_per_doc == 4_096


async def test_missing_region_or_credentials_fail_before_any_request(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AsyncClient() as client:
        with pytest.raises(ConfigurationError, match="no AWS region"):
            await client.rerank(MODEL, QUERY, DOCS, api_base=server.url)
        with pytest.raises(ConfigurationError, match="no AWS credentials"):
            await client.rerank(MODEL, QUERY, DOCS, api_base=server.url, region=REGION)
        with pytest.raises(ConfigurationError, match="both aws_access_key_id"):
            await client.rerank(
                MODEL, QUERY, DOCS, api_base=server.url, region=REGION, aws_access_key_id=KEY_ID
            )
        with pytest.raises(ConfigurationError, match="not an API key"):
            await client.rerank(MODEL, QUERY, DOCS, api_base=server.url, api_key="sk-1")
    assert server.received == []


async def test_missing_botocore_names_the_extra(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "botocore", None)
    async with AsyncClient(providers={"bedrock": settings(server)}) as client:
        with pytest.raises(
            ConfigurationError,
            match=r"pip install 'rerankit\[bedrock\]' .*pip install '\.\[bedrock\]'",
        ):
            await client.rerank(MODEL, QUERY, DOCS)
    assert server.received == []


async def test_base_url_from_the_environment_in_order(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = settings(server)["options"]
    monkeypatch.setenv("AWS_BEDROCK_RUNTIME_ENDPOINT", server.url)
    async with AsyncClient(providers={"bedrock": {"options": options}}) as client:
        await client.rerank(MODEL, QUERY, DOCS)
        monkeypatch.setenv("AWS_BEDROCK_RUNTIME_ENDPOINT", REFUSED)
        monkeypatch.setenv("BEDROCK_API_BASE", f"{server.url}/rerank/")
        await client.rerank(MODEL, QUERY, DOCS)
    assert len(calls(server)) == 2
    assert {r.path for r in server.received} == {"/rerank"}


def test_endpoint_rewrites_runtime_hosts_and_joins_the_route() -> None:
    assert endpoint(None, "eu-central-1") == (
        "https://bedrock-agent-runtime.eu-central-1.amazonaws.com/rerank"
    )
    assert endpoint("https://bedrock-runtime.us-east-1.amazonaws.com", "us-east-1") == (
        "https://bedrock-agent-runtime.us-east-1.amazonaws.com/rerank"
    )
    assert endpoint("https://bedrock-runtime-fips.us-east-1.amazonaws.com/", "us-east-1") == (
        "https://bedrock-agent-runtime-fips.us-east-1.amazonaws.com/rerank"
    )
    vpce = "https://vpce-0a1b.bedrock-runtime.us-east-1.vpce.amazonaws.com"
    assert endpoint(vpce, "us-east-1") == (
        "https://vpce-0a1b.bedrock-agent-runtime.us-east-1.vpce.amazonaws.com/rerank"
    )
    agent = "https://bedrock-agent-runtime.us-west-2.amazonaws.com/rerank"
    assert endpoint(agent, "us-west-2") == agent
    assert endpoint("bedrock-runtime.us-west-2.amazonaws.com", "us-west-2") == agent
    assert (
        endpoint("http://127.0.0.1:8080/proxy", "us-west-2") == "http://127.0.0.1:8080/proxy/rerank"
    )


async def test_dicts_go_as_json_sources_cut_to_rank_fields(
    client: AsyncClient, server: FakeServer
) -> None:
    docs: list[Any] = [
        {"title": "Billing", "body": "Invoices are sent monthly.", "id": 1},
        "Open settings to reset your password.",
        {"title": "Password reset", "body": "Open settings to reset it.", "id": 2},
    ]
    response = await client.rerank(MODEL, QUERY, docs, rank_fields=["title", "body"])
    sources = server.received[-1].json()["sources"]
    assert [s["inlineDocumentSource"] for s in sources] == [
        {
            "type": "JSON",
            "jsonDocument": {"title": "Billing", "body": "Invoices are sent monthly."},
        },
        {"type": "TEXT", "textDocument": {"text": docs[1]}},
        {
            "type": "JSON",
            "jsonDocument": {"title": "Password reset", "body": "Open settings to reset it."},
        },
    ]
    assert {r.index: r.document for r in response.results} == {
        0: docs[0],
        1: {"text": docs[1]},
        2: docs[2],
    }
    assert response.results[1].document is docs[2]

    await client.rerank(MODEL, QUERY, [docs[0]])
    (source,) = server.received[-1].json()["sources"]
    assert source["inlineDocumentSource"]["jsonDocument"] == docs[0]


async def test_unsupported_parameters_raise_before_any_request(
    client: AsyncClient, server: FakeServer
) -> None:
    with pytest.raises(UnsupportedParameterError, match="instruction") as info:
        await client.rerank(MODEL, QUERY, DOCS, instruction="be strict")
    assert info.value.provider == "bedrock"
    assert server.received == []
    with pytest.warns(rerankit.RerankitWarning, match="instruction"):
        await client.rerank(MODEL, QUERY, DOCS, instruction="be strict", drop_params=True)
    assert len(calls(server)) == 1


async def test_token_limits_and_chunking_are_done_by_rerankit(
    client: AsyncClient, server: FakeServer
) -> None:
    long = " ".join(f"clause{i} about password settings" for i in range(200))
    response = await client.rerank(MODEL, QUERY, [*DOCS, long], max_tokens_per_doc=100)
    (body,) = [r.json() for r in calls(server)]
    assert len(body["sources"]) > len(DOCS) + 1  # the long document went as several chunks
    assert "max_tokens_per_doc" not in str(body)
    assert sorted(r.index for r in response.results) == list(range(len(DOCS) + 1))
    await client.rerank(MODEL, QUERY, DOCS, max_chunks_per_doc=2)
    assert "max_chunks_per_doc" not in str(calls(server)[-1].json())


async def test_extras_extra_body_and_extra_headers_are_signed(
    client: AsyncClient, server: FakeServer
) -> None:
    await client.rerank(
        MODEL,
        QUERY,
        DOCS,
        additionalModelRequestFields={"max_tokens_per_doc": 512},
        extra_headers={"X-Trace": "t-1"},
    )
    sent = server.received[-1]
    configuration = sent.json()["rerankingConfiguration"]["bedrockRerankingConfiguration"]
    assert configuration["modelConfiguration"]["additionalModelRequestFields"] == {
        "max_tokens_per_doc": 512
    }
    assert sent.headers["x-trace"] == "t-1"
    assert "x-trace" in sent.headers["authorization"]

    with pytest.raises(rerankit.BadRequestError, match="Unknown fields"):
        await client.rerank(MODEL, QUERY, DOCS, extra_body={"guardrail": "x"})
    assert server.received[-1].json()["guardrail"] == "x"  # signed: 400, not 403
    with pytest.raises(ConfigurationError, match="must be a dict"):
        await client.rerank(MODEL, QUERY, DOCS, additionalModelRequestFields=["x"])
    with pytest.raises(ConfigurationError, match="unknown argument 'region_name'"):
        await client.rerank(MODEL, QUERY, DOCS, region_name=REGION)


async def test_answers_that_do_not_fit_raise(client: AsyncClient, server: FakeServer) -> None:
    server.fail(Reply(body={"results": [{"index": 0}]}))
    with pytest.raises(rerankit.ResponseValidationError, match="relevanceScore"):
        await client.rerank(MODEL, QUERY, DOCS)
    server.fail(Reply(body={"results": [{"index": 7, "relevanceScore": 0.5}]}))
    with pytest.raises(rerankit.ResponseValidationError, match="out of range"):
        await client.rerank(MODEL, QUERY, DOCS)

    def endless(request: ReceivedRequest) -> Reply:
        return Reply(body={"results": [], "nextToken": "again"})

    server.handler = endless
    with pytest.raises(rerankit.ResponseValidationError, match="nextToken"):
        await client.rerank(MODEL, QUERY, DOCS)


async def test_credentials_are_looked_up_once_in_a_worker_thread(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []
    lookup = bedrock._lookup

    def counting_lookup(*args: Any) -> Any:
        threads.append(threading.current_thread())
        return lookup(*args)

    monkeypatch.setattr(bedrock, "_lookup", counting_lookup)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    async with AsyncClient(providers={"bedrock": {"api_base": server.url}}) as client:
        import asyncio

        await asyncio.gather(*(client.rerank(MODEL, QUERY, DOCS, region=REGION) for _ in range(4)))
        await client.rerank(MODEL, QUERY, DOCS, region=REGION)
    assert len(calls(server)) == 5
    assert len(threads) == 1
    assert threads[0] is not threading.main_thread()


async def test_expiring_credentials_are_refreshed_in_a_worker_thread(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.credentials

    refreshes: list[threading.Thread] = []

    def metadata(minutes: int) -> dict[str, str]:
        expiry = datetime.now(timezone.utc) + timedelta(minutes=minutes)
        return {
            "access_key": KEY_ID,
            "secret_key": SECRET,
            "token": "",
            "expiry_time": expiry.isoformat(),
        }

    def refresh() -> dict[str, str]:
        refreshes.append(threading.current_thread())
        return metadata(60)

    def assumed_role(*args: Any) -> Any:
        return botocore.credentials.RefreshableCredentials.create_from_metadata(
            metadata(5), refresh, "test-role"
        )

    monkeypatch.setattr(bedrock, "_lookup", assumed_role)
    async with AsyncClient(providers={"bedrock": {"api_base": server.url}}) as client:
        await client.rerank(MODEL, QUERY, DOCS, region=REGION)
        await client.rerank(MODEL, QUERY, DOCS, region=REGION)
    assert len(refreshes) == 1
    assert refreshes[0] is not threading.main_thread()
    assert len(calls(server)) == 2


def test_capabilities_and_class_data() -> None:
    provider = BedrockProvider()
    caps = provider.capabilities("amazon.rerank-v1:0")
    assert caps.max_documents == 1000
    assert caps.structured_documents
    assert caps.parameters == frozenset()
    assert caps.score_kind == "unknown"
    assert set(provider.model_table()) == {"amazon.rerank-v1:0", "cohere.rerank-v3-5:0"}
    assert BedrockProvider.example_model.startswith("bedrock/")
    assert (BedrockProvider.__doc__ or "").startswith("``bedrock/")


class TestBedrockContract(ProviderContract):
    model = "bedrock/cohere.rerank-v3-5:0"
    api_key = "AKIDCONTRACT0001"
    """The access key id: it appears in the SigV4 ``Authorization`` header."""

    def fake(self) -> BedrockFake:
        return BedrockFake(self.api_key or "", "contract-secret", region="eu-central-1")

    def settings(self, server: FakeServer) -> dict[str, Any]:
        return {
            "api_base": server.url,
            "options": {
                "region": "eu-central-1",
                "aws_access_key_id": self.api_key,
                "aws_secret_access_key": "contract-secret",
            },
        }
