"""Counting tokens and cutting long texts into windows, for planning requests.

The default ``TokenEstimator`` needs no tokenizer: it counts a token per three UTF-8 bytes,
which over-counts English (about four characters a token) and matches CJK (three bytes a
character), so batches planned with it stay inside real limits. ``HFTokenizer`` wraps a
Hugging Face ``tokenizers.Tokenizer`` for exact counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["HFTokenizer", "TokenCounter", "TokenEstimator"]


@runtime_checkable
class TokenCounter(Protocol):
    """What the planner needs from a tokenizer."""

    def count(self, texts: Sequence[str]) -> list[int]:
        """The number of tokens of each text."""
        ...

    def windows(self, text: str, size: int, overlap: int) -> list[tuple[int, int]]:
        """Character spans ``(start, end)`` of consecutive windows of at most ``size`` tokens
        covering ``text``, each starting about ``overlap`` tokens before the previous end."""
        ...


BYTES_PER_TOKEN = 3


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


class TokenEstimator:
    """A fast, conservative estimate: one token per three UTF-8 bytes (rounded up)."""

    def count(self, texts: Sequence[str]) -> list[int]:
        return [-(-_size(text) // BYTES_PER_TOKEN) for text in texts]

    def windows(self, text: str, size: int, overlap: int) -> list[tuple[int, int]]:
        """Windows of at most ``size * 3`` UTF-8 bytes, cut after a space or newline where one
        falls inside the window (else mid-word, never inside a character)."""
        ascii_text = text.isascii()
        data: str | bytes = text if ascii_text else text.encode("utf-8")
        spans = _byte_windows(data, size * BYTES_PER_TOKEN, overlap * BYTES_PER_TOKEN)
        if ascii_text:
            return spans
        assert isinstance(data, bytes)
        chars = _char_offsets(data, {offset for span in spans for offset in span})
        return [(chars[start], chars[end]) for start, end in spans]


def _char_offsets(data: bytes, offsets: set[int]) -> dict[int, int]:
    """The character offset of each byte offset in ``offsets`` (each at a character boundary
    of the UTF-8 ``data``), decoding every byte once: linear in ``len(data)``."""
    chars: dict[int, int] = {}
    previous = position = 0
    for offset in sorted(offsets):
        position += len(data[previous:offset].decode("utf-8"))
        chars[offset] = position
        previous = offset
    return chars


def _byte_windows(data: str | bytes, budget: int, back: int) -> list[tuple[int, int]]:
    """Spans over ``data`` (an ASCII str, or UTF-8 bytes) of at most ``budget`` units."""
    is_bytes = isinstance(data, bytes)
    space, newline = (b" ", b"\n") if is_bytes else (" ", "\n")
    length = len(data)
    spans: list[tuple[int, int]] = []
    start = 0
    while start + budget < length:
        end = start + budget
        cut = max(data.rfind(space, start + 1, end), data.rfind(newline, start + 1, end))  # type: ignore[arg-type]
        cut = cut + 1 if cut > start else end
        if is_bytes:
            while cut > start + 1 and data[cut] & 0xC0 == 0x80:  # type: ignore[operator]
                cut -= 1
        spans.append((start, cut))
        start = _next_start(data, space, start, cut, back)
    spans.append((start, length))
    return spans


def _next_start(data: str | bytes, space: str | bytes, start: int, cut: int, back: int) -> int:
    """Where the window after ``[start, cut)`` begins: at a word start about ``back`` units
    before ``cut`` (earlier if need be, never at or before ``start``), else at ``cut``."""
    following = max(cut - back, start + 1)
    word = data.find(space, following, cut)  # type: ignore[arg-type]
    if word == -1 or word + 1 >= cut:
        word = data.rfind(space, start + 1, following)  # type: ignore[arg-type]
    if word == -1 or word + 1 >= cut:
        return cut
    return word + 1


class HFTokenizer:
    """Exact counts from a Hugging Face ``tokenizers.Tokenizer`` (special tokens left out)."""

    def __init__(self, tokenizer: Any) -> None:
        if not hasattr(tokenizer, "encode_batch"):
            from rerankit._errors import ConfigurationError

            raise ConfigurationError(
                "HFTokenizer needs a tokenizers.Tokenizer (it has no encode_batch method); "
                "load one with tokenizers.Tokenizer.from_file('tokenizer.json')"
            )
        self._tokenizer = tokenizer

    def count(self, texts: Sequence[str]) -> list[int]:
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]

    def windows(self, text: str, size: int, overlap: int) -> list[tuple[int, int]]:
        offsets = self._tokenizer.encode(text, add_special_tokens=False).offsets
        if len(offsets) <= size:
            return [(0, len(text))]
        step = max(size - overlap, 1)
        spans = []
        for first in range(0, len(offsets), step):
            last = min(first + size, len(offsets)) - 1
            start = 0 if first == 0 else offsets[first][0]
            end = len(text) if last == len(offsets) - 1 else offsets[last][1]
            spans.append((start, end))
            if last == len(offsets) - 1:
                break
        return spans
