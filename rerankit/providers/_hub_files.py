"""Which model a string names on the Hugging Face Hub, and which of a repo's files to fetch.

Pure Python with no optional dependency: parsing a model string and choosing files from a
listing never import ``huggingface_hub``.
"""

from __future__ import annotations

import functools
import os
import platform
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rerankit._errors import ConfigurationError
from rerankit.providers._known_models import known_model

if TYPE_CHECKING:
    from rerankit.providers._onnx_config import Kind

__all__ = [
    "AUX_FILES",
    "HubModel",
    "choose_onnx",
    "needed_files",
    "parse_hub",
    "quantized_preference",
]

HUB_PREFIX = "hf:"
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_REVISION = re.compile(r"[\w./-]+")
COMMIT = re.compile(r"[0-9a-f]{40}")

FP32_FILES = ("onnx/model.onnx", "model.onnx")
"""The default ONNX file, in order of preference: never a quantized or fp16 variant."""
AUX_FILES = (
    "tokenizer.json",
    "config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)
"""The files besides the ONNX file that rerankit reads, fetched when the repo has them."""
_GENERIC_INT8 = ("model_quantized", "model_int8", "model_uint8", "model_qint8", "model_quint8")


@dataclass(frozen=True)
class HubModel:
    """A model repository on the Hub, at a revision (``None``: the default branch)."""

    repo_id: str
    revision: str | None = None
    kind: Kind | None = None
    """For a model known by short name: the kind it is."""
    onnx_file: str | None = None
    """For a model known by short name: its ONNX file."""

    def __str__(self) -> str:
        return self.repo_id + (f"@{self.revision}" if self.revision else "")


def parse_hub(source: str) -> HubModel | None:
    """The Hub model ``source`` names, or ``None`` when it names a path or a package.

    ``hf:<org>/<name>[@revision]`` is always the Hub. Otherwise an existing path wins, and a
    string of the form ``<org>/<name>[@revision]`` that is not a path is a Hub repo id, as is
    the short name of a known model (``_known_models``).
    """
    forced = source.startswith(HUB_PREFIX)
    text = source[len(HUB_PREFIX) :] if forced else source
    if not forced and (source.startswith("pkg:") or os.path.exists(os.path.expanduser(source))):
        return None
    repo_id, at, revision = text.partition("@")
    if at and not _REVISION.fullmatch(revision):
        repo_id = ""
    if _REPO_ID.fullmatch(repo_id):
        return HubModel(repo_id, revision or None)
    known = known_model(repo_id) if repo_id else None
    if known is not None:
        return HubModel(known.repo_id, revision or known.revision, known.kind, known.onnx_file)
    if forced:
        raise ConfigurationError(
            f"{source!r} is not a Hugging Face model id: expected hf:<org>/<name> or "
            "hf:<org>/<name>@<revision>"
        )
    return None


def choose_onnx(
    files: Collection[str], onnx_file: str | None, quantized: bool, where: str, repo: str
) -> str:
    """The ONNX file to run among a repo's ``files``: ``onnx_file``, an int8 variant suited to
    this CPU when ``quantized``, else the fp32 ``onnx/model.onnx`` or ``model.onnx``."""
    onnx = sorted(name for name in files if name.endswith(".onnx"))
    if onnx_file is not None:
        if onnx_file in files:
            return onnx_file
        raise ConfigurationError(
            f"{where}: onnx_file {onnx_file!r} is not in {repo}; its ONNX files: "
            f"{', '.join(onnx) or 'none'}"
        )
    if not onnx:
        raise ConfigurationError(f"{where}: {repo} has no ONNX file")
    if quantized:
        for stem in quantized_preference():
            for folder in ("onnx/", ""):
                if f"{folder}{stem}.onnx" in files:
                    return f"{folder}{stem}.onnx"
        raise ConfigurationError(
            f"{where}: {repo} has no int8 ONNX file (its ONNX files: {', '.join(onnx)}); name "
            "one with onnx_file=..., make one with `rerankit models quantize <model> <dir>`, "
            "or drop quantized=True to run the fp32 model"
        )
    for name in FP32_FILES:
        if name in files:
            return name
    raise ConfigurationError(
        f"{where}: {repo} has no fp32 ONNX file (onnx/model.onnx or model.onnx), only "
        f"{', '.join(onnx)}: name the one to run with onnx_file=... (or quantized=True for an "
        "int8 variant)"
    )


def needed_files(files: Collection[str], onnx: str) -> list[str]:
    """What to fetch to run ``onnx``: the tokenizer and config files (at the repo's root and
    beside the ONNX file), the ONNX file's external data, and the ONNX file itself, last."""
    folder = onnx.rpartition("/")[0]
    wanted: list[str] = []
    for name in AUX_FILES:
        for candidate in (name, f"{folder}/{name}" if folder else name):
            if candidate in files and candidate not in wanted:
                wanted.append(candidate)
    data = sorted(
        name for name in files if name.startswith((onnx + "_data", onnx + ".data")) and name != onnx
    )
    return [*wanted, *data, onnx]


def quantized_preference() -> tuple[str, ...]:
    """Stems of int8 ONNX files, the ones built for this CPU first."""
    return (*_cpu_specific(), *_GENERIC_INT8)


@functools.lru_cache(maxsize=1)
def _cpu_specific() -> tuple[str, ...]:
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return ("model_qint8_arm64",)
    flags = _cpu_flags()
    stems: list[str] = []
    if "avx512_vnni" in flags:
        stems.append("model_qint8_avx512_vnni")
    if "avx512f" in flags:
        stems.append("model_qint8_avx512")
    if "avx2" in flags:
        stems.append("model_quint8_avx2")
    return tuple(stems)


def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()
