"""What the fakes of image-taking rerank APIs check in an image, and how they score one."""

from __future__ import annotations

import base64
import binascii

from rerankit.testing._vendor import BadRequest

__all__ = ["fake_image", "image_words", "plain_base64", "png_jpeg_data_url"]

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"


def fake_image(words: str, kind: str = "png") -> bytes:
    """Bytes that start as a PNG (or ``"jpeg"``, ``"gif"``) and hold ``words``, which the fakes
    score as the image's content."""
    start = {"png": _PNG, "jpeg": _JPEG, "gif": b"GIF89a"}[kind]
    return start + b" " + words.encode()


def image_words(data: bytes) -> str:
    """An image's content as the fakes score it: its bytes read as Latin-1."""
    return data.decode("latin-1")


def plain_base64(value: str, where: str) -> bytes:
    """``value`` as plain base64 (no ``data:`` prefix), decoded; else ``BadRequest``."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where} is neither an http(s) URL nor base64") from None


def png_jpeg_data_url(value: object, where: str) -> bytes:
    """A ``data:image/png|jpeg;base64,...`` URL whose bytes are of that type, decoded."""
    if not isinstance(value, str) or not value.startswith("data:image/"):
        raise BadRequest(f"{where} must be a base64 data URL (data:image/...;base64,...)")
    header, _, payload = value.partition(",")
    kind = header[len("data:image/") :].removesuffix(";base64")
    if not header.endswith(";base64") or kind not in ("png", "jpeg"):
        raise BadRequest(f"{where}: only PNG and JPEG images are supported")
    data = plain_base64(payload, where)
    if not data.startswith(_PNG if kind == "png" else _JPEG):
        raise BadRequest(f"{where}: the bytes are not a {kind.upper()} image")
    return data
