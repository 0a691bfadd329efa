"""Image documents: ``{"image": url | bytes | path}``, alone or with ``"text"``.

An image is checked and read once, when the call's documents are prepared (off the event loop):
an http(s) URL is kept as it is (rerankit fetches nothing); bytes, a file path or a ``data:``
URL become bytes whose type is read from their first bytes, base64-encoded once. The document's
text as sent is an ``ImageText``: its text (``""`` for an image alone) carrying the ``Image``,
so planning, caching and batching see one value per document. A model declares how it takes
images with ``ImageInput``; ``refuse_images`` raises before any request for what it cannot take.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from collections.abc import Sequence
from typing import Any

import msgspec

from rerankit._errors import ConfigurationError, UnsupportedParameterError

__all__ = [
    "Image",
    "ImageInput",
    "ImageText",
    "image_count",
    "image_of",
    "keyed_sources",
    "load_image",
    "refuse_images",
    "request_bytes",
]

URL_SCHEMES = ("http://", "https://")
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)
KNOWN_TYPES = "PNG, JPEG, GIF, WebP or BMP"


class ImageInput(msgspec.Struct, frozen=True, kw_only=True):
    """How a model takes image documents (``ModelCapabilities.images``; ``None``: not at all).

    ``urls``: http(s) URLs, passed on as they are. ``data``: bytes, files and ``data:`` URLs,
    sent base64-encoded. ``media_types``: the image types accepted (``None``: any rerankit
    recognises). ``with_text``: one document may carry text and an image. ``max_per_request``:
    images one request may hold (batches are cut to it).
    """

    urls: bool = True
    data: bool = True
    media_types: frozenset[str] | None = None
    with_text: bool = True
    max_per_request: int | None = None


class Image:
    """One document's image: an http(s) ``url``, or ``data`` with its ``media_type``.

    ``digest`` names the image by its bytes (by the URL for a URL), never by a file's path.
    """

    __slots__ = ("b64", "data", "digest", "media_type", "url")

    def __init__(
        self, *, url: str | None = None, data: bytes | None = None, media_type: str = ""
    ) -> None:
        self.url = url
        self.data = data
        self.media_type = media_type
        self.b64 = "" if data is None else base64.b64encode(data).decode("ascii")
        content = b"url:" + url.encode() if url is not None else b"data:" + (data or b"")
        self.digest = hashlib.blake2b(content, digest_size=16).digest()

    def __repr__(self) -> str:
        if self.url is not None:
            return f"Image(url={self.url!r})"
        return f"Image({self.media_type}, {len(self.data or b'')} bytes)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.url, self.data, self.media_type))

    @property
    def data_url(self) -> str:
        """``data:<type>;base64,<data>`` (``""`` for a URL image)."""
        return f"data:{self.media_type};base64,{self.b64}" if self.data is not None else ""

    @property
    def wire_bytes(self) -> int:
        """The most bytes this image adds to a JSON request (the URL, or the data URL)."""
        return len(self.url) if self.url is not None else len(self.data_url)


def _rebuild(url: str | None, data: bytes | None, media_type: str) -> Image:
    return Image(url=url, data=data, media_type=media_type)


class ImageText(str):
    """The text of a document that has an image (``""`` for an image alone), with ``image``."""

    image: Image

    def __new__(cls, text: str, image: Image) -> ImageText:
        self = super().__new__(cls, text)
        self.image = image
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (ImageText, (str(self), self.image))


def image_of(text: str) -> Image | None:
    """The image of a document's text as sent, or ``None`` for a text document."""
    return text.image if type(text) is ImageText else None


def image_count(texts: Sequence[str]) -> int:
    """How many of ``texts`` carry an image."""
    return sum(type(text) is ImageText for text in texts)


def request_bytes(texts: Sequence[str]) -> int:
    """The bytes the images among ``texts`` add to a request."""
    return sum(text.image.wire_bytes for text in texts if type(text) is ImageText)


def load_image(value: object, where: str) -> Image:
    """``value`` (an http(s) URL, a ``data:`` URL, bytes or a file path) as an ``Image``.

    A bad value is a ``ConfigurationError`` naming ``where`` (``documents[3]['image']``). Reads
    files: call it off the event loop.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(value), where)
    if isinstance(value, str):
        if value.startswith(URL_SCHEMES):
            if not value.isprintable() or " " in value:
                raise ConfigurationError(f"{where} is a URL with spaces or control characters")
            return Image(url=value)
        if value.startswith("data:"):
            return _from_data_url(value, where)
        scheme, found, _ = value.partition("://")
        if found:
            raise ConfigurationError(
                f"{where} is a {scheme}:// URL; an image is an http(s) URL, a data: URL, "
                "bytes or a local file path"
            )
        return _from_path(value, where)
    if isinstance(value, os.PathLike):
        return _from_path(os.fspath(value), where)
    raise ConfigurationError(
        f"{where} must be an http(s) URL, a data: URL, bytes or a file path, "
        f"got {type(value).__name__}"
    )


def _from_path(path: str | bytes, where: str) -> Image:
    try:
        with open(path, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise ConfigurationError(f"{where}: {path!r} is not a regular file")
            data = file.read()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigurationError(f"{where}: cannot read the file {path!r}: {reason}") from None
    return _from_bytes(data, where)


def _from_data_url(value: str, where: str) -> Image:
    header, _, payload = value.partition(",")
    if not header.endswith(";base64") or not header.startswith("data:image/"):
        raise ConfigurationError(f"{where} is a data: URL but not data:image/...;base64,...")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{where} is a data: URL whose base64 is invalid") from None
    return _from_bytes(data, where)


def _from_bytes(data: bytes, where: str) -> Image:
    media_type = _sniff(data)
    if media_type is None:
        raise ConfigurationError(f"{where} is not a {KNOWN_TYPES} image ({len(data)} bytes)")
    return Image(data=data, media_type=media_type)


def _sniff(data: bytes) -> str | None:
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def refuse_images(
    texts: Sequence[str], support: ImageInput | None, provider: str, model: str
) -> None:
    """Raise ``UnsupportedParameterError`` for the first image ``support`` cannot take."""
    for position, text in enumerate(texts):
        if type(text) is ImageText:
            problem = _problem(text, support)
            if problem is not None:
                raise UnsupportedParameterError(
                    f"{provider} model {model!r} {problem} (documents[{position}])",
                    provider=provider,
                    model=model,
                    parameter="documents",
                )


def _problem(text: ImageText, support: ImageInput | None) -> str | None:
    image = text.image
    if support is None:
        return "does not take image documents"
    if image.url is not None and not support.urls:
        return "takes images as data (bytes, a file or a data: URL), not as URLs"
    if image.data is not None and not support.data:
        return "takes images as http(s) URLs only, not as bytes, files or data: URLs"
    types = support.media_types
    if image.data is not None and types is not None and image.media_type not in types:
        return f"takes {', '.join(sorted(types))} images, not {image.media_type}"
    if text and not support.with_text:
        return "takes text or an image in one document, not both"
    return None


def keyed_sources(sources: list[Any], texts: Sequence[str]) -> list[Any]:
    """``sources`` (the caller's documents) for a cache key: an image document without its
    ``image`` value, which its text as sent keys by its bytes instead."""
    if not any(type(text) is ImageText for text in texts):
        return sources
    return [
        {k: v for k, v in doc.items() if k != "image"} if type(text) is ImageText else doc
        for doc, text in zip(sources, texts, strict=True)
    ]
