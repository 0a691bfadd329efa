"""Image documents end to end over real HTTP: checked at the boundary, sent in each API's form,
refused before any request where a model takes none, batched and cached by their bytes."""

from __future__ import annotations

import base64
import os
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rerankit import (
    AsyncClient,
    Client,
    ConfigurationError,
    MemoryCache,
    UnsupportedParameterError,
)
from rerankit._cache import cache_key
from rerankit._images import ImageInput, ImageText, image_of, load_image
from rerankit._input import prepare_documents
from rerankit._plan import plan_requests
from rerankit._tokens import TokenEstimator
from rerankit._types import RerankRequest
from rerankit.providers import ModelCapabilities
from rerankit.testing import CohereFake, FakeServer, JinaFake
from rerankit.testing._dashscope import DashScopeFake
from rerankit.testing._images import fake_image
from rerankit.testing._vendors import NvidiaNIMFake

pytestmark = pytest.mark.anyio

KEY = "image-key-0123456789"
M0 = "jina_ai/jina-reranker-m0"
VL = "nvidia_nim/nvidia/llama-nemotron-rerank-vl-1b-v2"
QWEN_VL = "dashscope/qwen3-vl-rerank"
CAT = fake_image("a cat on a mat")
DOG = fake_image("a dog in the park", "jpeg")


@pytest.fixture
def cat_file(tmp_path: Path) -> Path:
    path = tmp_path / "cat.png"
    path.write_bytes(CAT)
    return path


def serve(fake: Any, provider: str) -> Iterator[tuple[FakeServer, dict[str, Any]]]:
    with FakeServer(fake) as server:
        yield server, {provider: {"api_key": KEY, "api_base": server.url}}


@pytest.fixture
def jina() -> Iterator[tuple[FakeServer, dict[str, Any]]]:
    yield from serve(JinaFake(KEY), "jina_ai")


@pytest.fixture
def nim() -> Iterator[tuple[FakeServer, dict[str, Any]]]:
    yield from serve(NvidiaNIMFake(KEY), "nvidia_nim")


@pytest.fixture
def dashscope() -> Iterator[tuple[FakeServer, dict[str, Any]]]:
    yield from serve(DashScopeFake(KEY), "dashscope")


# --- the boundary ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("missing.png", "documents[1]['image']: cannot read the file"),
        ("/dev/null", "documents[1]['image']: '/dev/null' is not a regular file"),
        (b"GIF8 not an image", "documents[1]['image'] is not a PNG, JPEG, GIF, WebP or BMP"),
        ("ftp://host/cat.png", "documents[1]['image'] is a ftp:// URL"),
        ("s3://bucket/cat.png", "documents[1]['image'] is a s3:// URL"),
        (42, "documents[1]['image'] must be an http(s) URL, a data: URL, bytes or a file path"),
        ("data:text/plain;base64,aGk=", "documents[1]['image'] is a data: URL but not"),
        ("data:image/png;base64,***", "documents[1]['image'] is a data: URL whose base64"),
        ("https://host/a cat.png", "documents[1]['image'] is a URL with spaces"),
    ],
)
async def test_bad_images_are_configuration_errors_naming_the_document(
    jina: tuple[FakeServer, dict[str, Any]], image: object, words: str, tmp_path: Path
) -> None:
    server, providers = jina
    if image == "missing.png":
        image = str(tmp_path / "missing.png")
    async with AsyncClient(providers=providers) as client:
        with pytest.raises(ConfigurationError) as info:
            await client.rerank(M0, "cat", ["text", {"image": image}])
    assert words in str(info.value)
    assert not isinstance(info.value, UnsupportedParameterError)
    assert server.received == []


def test_an_image_documents_text_must_be_a_string() -> None:
    with pytest.raises(ConfigurationError, match=r"documents\[0\]\['text'\]"):
        prepare_documents([{"image": CAT, "text": 3}], None)


def test_image_forms_are_read_as_bytes_or_kept_as_urls(cat_file: Path) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(CAT).decode()
    docs = [{"image": cat_file}, {"image": str(cat_file)}, {"image": CAT}, {"image": data_url}]
    _, texts, _ = prepare_documents(docs, None)
    images = [image_of(text) for text in texts]
    assert all(image is not None and image.data == CAT for image in images)
    assert {image.media_type for image in images if image} == {"image/png"}
    url = load_image("https://img.example/cat.png", "image")
    assert (url.url, url.data) == ("https://img.example/cat.png", None)
    copy = pickle.loads(pickle.dumps(texts[0]))  # worker processes get the same value
    assert type(copy) is ImageText
    assert copy.image.digest == images[0].digest


async def test_files_are_read_off_the_event_loop(
    tmp_path: Path, jina: tuple[FakeServer, dict[str, Any]]
) -> None:
    server, providers = jina
    readers: list[int] = []

    class Recorded(os.PathLike[str]):
        def __fspath__(self) -> str:
            readers.append(threading.get_ident())
            path = tmp_path / "cat.png"
            path.write_bytes(CAT)
            return str(path)

    async with AsyncClient(providers=providers) as client:
        response = await client.rerank(M0, "cat", [{"image": Recorded()}])
    assert server.received[0].json()["documents"] == [{"image": base64.b64encode(CAT).decode()}]
    assert [r.index for r in response.results] == [0]
    assert readers
    assert threading.get_ident() not in readers


# --- Jina: jina-reranker-m0 -------------------------------------------------------------------


async def test_jina_m0_sends_urls_and_plain_base64_and_returns_the_callers_dicts(
    jina: tuple[FakeServer, dict[str, Any]], cat_file: Path
) -> None:
    server, providers = jina
    docs: list[Any] = [
        {"image": "https://img.example/dog.png"},
        {"image": cat_file, "id": 7},
        "a text about a cat",
    ]
    async with AsyncClient(providers=providers) as client:
        response = await client.rerank(M0, "cat", docs)
    sent = server.received[0].json()["documents"]
    assert sent == [
        {"image": "https://img.example/dog.png"},
        {"image": base64.b64encode(CAT).decode()},
        {"text": "a text about a cat"},
    ]
    assert [r.index for r in response.results] == [1, 2, 0]
    assert response.results[0].document is docs[1]  # the caller's own dict, path and all


def test_jina_m0_over_the_sync_client(jina: tuple[FakeServer, dict[str, Any]]) -> None:
    server, providers = jina
    with Client(providers=providers) as client:
        response = client.rerank(M0, "cat", [{"image": DOG}, {"image": CAT}], top_n=1)
    assert [r.index for r in response.results] == [1]
    assert len(server.received) == 1


async def test_jina_refuses_text_and_image_in_one_document_before_any_request(
    jina: tuple[FakeServer, dict[str, Any]],
) -> None:
    server, providers = jina
    async with AsyncClient(providers=providers) as client:
        with pytest.raises(UnsupportedParameterError, match=r"not both \(documents\[1\]\)"):
            await client.rerank(M0, "cat", ["x", {"text": "a cat", "image": CAT}])
    assert server.received == []


@pytest.mark.parametrize("model", ["jina_ai/jina-reranker-v3", "jina_ai/jina-colbert-v2"])
async def test_text_only_jina_models_refuse_images_before_any_request(
    jina: tuple[FakeServer, dict[str, Any]], model: str
) -> None:
    server, providers = jina
    async with AsyncClient(providers=providers) as client:
        with pytest.raises(UnsupportedParameterError) as info:
            await client.rerank(model, "cat", ["text", {"image": CAT}], drop_params=True)
    assert "does not take image documents (documents[1])" in str(info.value)
    assert info.value.parameter == "documents"
    assert server.received == []


async def test_a_text_only_provider_refuses_images_in_every_batch_before_any_request() -> None:
    docs: list[Any] = [f"doc {i}" for i in range(2_500)] + [{"image": CAT}]
    with FakeServer(CohereFake(KEY)) as server:
        providers = {"cohere": {"api_key": KEY, "api_base": server.url}}
        async with AsyncClient(providers=providers) as client:
            with pytest.raises(UnsupportedParameterError, match=r"documents\[2500\]"):
                await client.rerank("cohere/rerank-v3.5", "cat", docs)  # 1,000 a request
        assert server.received == []


# --- NVIDIA: the multimodal rerankers -------------------------------------------------------


async def test_nvidia_vl_sends_png_and_jpeg_as_data_urls_and_omits_empty_text(
    nim: tuple[FakeServer, dict[str, Any]], cat_file: Path
) -> None:
    server, providers = nim
    docs: list[Any] = [{"text": "a photo", "image": DOG}, {"image": str(cat_file)}, "a mat"]
    async with AsyncClient(providers=providers) as client:
        response = await client.rerank(VL, "cat", docs)
    passages = server.received[0].json()["passages"]
    assert passages[0] == {
        "text": "a photo",
        "image": "data:image/jpeg;base64," + base64.b64encode(DOG).decode(),
    }
    assert passages[1] == {"image": "data:image/png;base64," + base64.b64encode(CAT).decode()}
    assert passages[2] == {"text": "a mat"}
    assert response.results[0].index == 1
    assert response.score_kind == "logit"


def test_nvidia_vl_over_the_sync_client(nim: tuple[FakeServer, dict[str, Any]]) -> None:
    server, providers = nim
    with Client(providers=providers) as client:
        response = client.rerank(VL, "dog", [{"image": CAT}, {"image": DOG}])
    assert response.results[0].index == 1
    assert len(server.received) == 1


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("https://img.example/cat.png", "not as URLs"),
        (fake_image("a cat", "gif"), "takes image/jpeg, image/png images, not image/gif"),
    ],
)
async def test_nvidia_vl_refuses_urls_and_other_types_before_any_request(
    nim: tuple[FakeServer, dict[str, Any]], image: object, words: str
) -> None:
    server, providers = nim
    async with AsyncClient(providers=providers) as client:
        with pytest.raises(UnsupportedParameterError, match=words):
            await client.rerank(VL, "cat", [{"image": image}])
    assert server.received == []


# --- DashScope: qwen3-vl-rerank -------------------------------------------------------------


async def test_qwen3_vl_rerank_sends_image_urls_at_most_40_a_request(
    dashscope: tuple[FakeServer, dict[str, Any]],
) -> None:
    server, providers = dashscope
    docs: list[Any] = [{"image": f"https://img.example/dog{i}.png"} for i in range(45)]
    docs.append({"image": "https://img.example/cat.png"})
    async with AsyncClient(providers=providers) as client:
        response = await client.rerank(QWEN_VL, "cat", docs, top_n=1)
    bodies = [request.json() for request in server.received]
    assert [len(body["input"]["documents"]) for body in bodies] == [40, 6]
    assert bodies[1]["input"]["documents"][-1] == {"image": "https://img.example/cat.png"}
    assert response.results[0].index == 45


async def test_qwen3_vl_rerank_refuses_image_bytes_before_any_request(
    dashscope: tuple[FakeServer, dict[str, Any]],
) -> None:
    server, providers = dashscope
    async with AsyncClient(providers=providers) as client:
        with pytest.raises(UnsupportedParameterError, match="URLs only"):
            await client.rerank(QWEN_VL, "cat", [{"image": CAT}])
    assert server.received == []


# --- caching ------------------------------------------------------------------------------------


def _key(documents: list[Any]) -> bytes | None:
    docs, texts, _ = prepare_documents(documents, None)
    request = RerankRequest(model="m", query="q", documents=texts, source_documents=docs)
    return cache_key("jina_ai", "m", request)


def test_cache_keys_hash_image_bytes_not_paths(cat_file: Path) -> None:
    by_path = _key([{"image": cat_file}])
    assert by_path is not None
    assert _key([{"image": CAT}]) == by_path  # the same bytes, however given
    cat_file.write_bytes(DOG)
    assert _key([{"image": cat_file}]) != by_path  # the same path, other bytes
    assert _key([{"image": cat_file, "text": "a caption"}]) != _key([{"image": cat_file}])


async def test_a_changed_file_misses_the_cache(
    jina: tuple[FakeServer, dict[str, Any]], cat_file: Path
) -> None:
    server, providers = jina
    docs = [{"image": cat_file}, {"image": "https://img.example/dog.png"}]
    async with AsyncClient(providers=providers, cache=MemoryCache()) as client:
        first = await client.rerank(M0, "cat", docs)
        again = await client.rerank(M0, "cat", docs)
        assert len(server.received) == 1
        assert again.results[0].document is docs[0]
        cat_file.write_bytes(DOG)  # noqa: ASYNC240 (a few bytes, in a test)
        await client.rerank(M0, "cat", docs)
    assert len(server.received) == 2
    assert first == again


# --- planning -----------------------------------------------------------------------------------


def test_image_bytes_count_toward_the_request_byte_budget() -> None:
    _, texts, _ = prepare_documents([{"image": CAT}, {"image": DOG}, "a cat"], None)
    size = len(image_of(texts[0]).data_url)  # type: ignore[union-attr]
    caps = ModelCapabilities(max_request_bytes=size + 50, images=ImageInput())
    plan = plan_requests("cat", texts, caps, TokenEstimator())
    assert plan is not None
    assert plan.batches == [(0, 1), (1, 3)]
    tight = ModelCapabilities(max_request_bytes=size, images=ImageInput())
    with pytest.raises(ConfigurationError, match="document 0 with its image"):
        plan_requests("cat", texts, tight, TokenEstimator())


def test_an_image_document_is_never_chunked() -> None:
    caption = " ".join(f"word{i}" for i in range(400))
    _, texts, _ = prepare_documents([{"image": CAT, "text": caption}, caption], None)
    caps = ModelCapabilities(max_tokens_per_doc=64, images=ImageInput())
    plan = plan_requests("cat", texts, caps, TokenEstimator())
    assert plan is not None
    assert plan.owners is not None
    assert plan.owners.count(0) == 1
    assert plan.owners.count(1) > 1
    assert plan.texts[0] is texts[0]
