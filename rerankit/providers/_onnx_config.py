"""What a local neural model is and how to run it: model strings, directories, config, options.

Pure Python with no optional dependency, so every mistake in a model string, a model directory
or an option is reported as a ``ConfigurationError`` before onnxruntime is even imported.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rerankit._errors import ConfigurationError
from rerankit._install import install_hint
from rerankit.providers._hub_files import choose_onnx

__all__ = [
    "EXTRA_MODULES",
    "KINDS",
    "Kind",
    "ModelConfig",
    "ModelFiles",
    "NeuralOptions",
    "check_options",
    "convertible",
    "find_files",
    "missing_extra",
    "model_directory",
    "read_config",
    "resolve_model",
]

Kind = Literal["cross-encoder", "bi-encoder"]
KINDS: tuple[Kind, ...] = ("cross-encoder", "bi-encoder")

NEURAL_OPTIONS = frozenset(
    {
        "activation",
        "batch_size",
        "cache_size",
        "document_prefix",
        "max_batch_tokens",
        "max_length",
        "onnx_file",
        "pooling",
        "quantized",
        "query_prefix",
        "spin_wait",
        "threads",
    }
)
"""Options of the ONNX models; ``models`` (the named models) is read by the provider itself."""

LAYOUT = (
    "a directory holding model.onnx (or onnx/model.onnx), tokenizer.json and config.json, "
    "as exported by Hugging Face Optimum"
)
EXPORT_HINT = (
    "name a Hugging Face Hub model (<org>/<name>) to download one, or export one where you "
    "have network access (for example "
    "`optimum-cli export onnx --model <model id> --task text-classification <dir>` for a "
    "cross-encoder, or `--task feature-extraction` for a bi-encoder) and copy the directory here"
)
_ONNX_CANDIDATES = ("model.onnx", "onnx/model.onnx")
_PACKAGE_SUBDIRS = ("", "model", "onnx_model")
_ACTIVATIONS = ("sigmoid", "none")
_POOLINGS = ("mean", "cls", "max")
_ROBERTA_LIKE = frozenset({"roberta", "xlm-roberta", "camembert", "mpnet", "longformer"})
"""Model types whose position ids start after the padding id, leaving fewer usable positions."""

EXTRA_MODULES = frozenset({"numpy", "onnxruntime", "tokenizers"})
"""What the ``local`` extra brings, imported on first use of a neural model."""


def missing_extra(name: str | None) -> ConfigurationError:
    """The error for a neural model used without the ``local`` extra installed."""
    return ConfigurationError(
        "local cross-encoder and bi-encoder models need onnxruntime, tokenizers and numpy "
        f"({name} could not be imported): {install_hint('local')}"
    )


DEFAULT_BATCH_SIZE = 32
DEFAULT_MAX_BATCH_TOKENS = 1024
"""Padded tokens per batch: long sequences go in smaller batches, which bounds the attention
matrices' memory (batch x heads x length^2) and, on CPU, is no slower."""
DEFAULT_CACHE_SIZE = 8192
DEFAULT_MAX_LENGTH = 512
MAX_THREADS_BY_DEFAULT = 8


@dataclass(frozen=True)
class NeuralOptions:
    """Validated options of one local neural model; hashable, so it can key the model cache."""

    activation: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    cache_size: int = DEFAULT_CACHE_SIZE
    document_prefix: str = ""
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS
    max_length: int | None = None
    onnx_file: str | None = None
    pooling: str | None = None
    quantized: bool = False
    query_prefix: str = ""
    spin_wait: bool = False
    threads: int | None = None


@dataclass(frozen=True)
class ModelFiles:
    """The resolved files of one model."""

    directory: Path
    onnx: Path
    tokenizer: Path
    config: Path | None


@dataclass(frozen=True)
class ModelConfig:
    """What rerankit reads from the JSON files next to the model (each optional)."""

    model_type: str | None = None
    num_labels: int | None = None
    max_position_embeddings: int | None = None
    pad_token_id: int | None = None
    activation: str | None = None
    """``sigmoid`` or ``none`` when sentence-transformers recorded its activation function."""
    max_seq_length: int | None = None
    """sentence-transformers' ``max_seq_length`` (``sentence_bert_config.json``)."""
    tokenizer_max_length: int | None = None
    """``model_max_length`` of ``tokenizer_config.json``."""
    pooling: str | None = None
    """sentence-transformers' pooling mode (``1_Pooling/config.json``)."""

    def max_length(self, kind: Kind, requested: int | None, where: str) -> int:
        """Tokens per sequence: ``requested`` or the model's own, never past its positions."""
        limit = self.max_position_embeddings
        if limit is not None and self.model_type in _ROBERTA_LIKE:
            limit -= (self.pad_token_id if self.pad_token_id is not None else 1) + 1
        if requested is not None:
            if limit is not None and requested > limit:
                raise ConfigurationError(
                    f"max_length={requested} is more than the {limit} positions of {where}"
                )
            return requested
        if kind == "bi-encoder" and self.max_seq_length is not None:
            chosen = self.max_seq_length
        elif self.tokenizer_max_length is not None and self.tokenizer_max_length < 100_000:
            chosen = self.tokenizer_max_length
        else:
            chosen = limit if limit is not None else DEFAULT_MAX_LENGTH
        return min(chosen, limit) if limit is not None else chosen


def resolve_model(
    model: str, named: Mapping[str, Any] | None
) -> tuple[Kind, str, Mapping[str, Any]] | None:
    """Route ``<kind>:<source>`` or a named model to (kind, source, the model's own options).

    ``None`` when ``model`` is neither (the caller reports an unknown model).
    """
    kind, sep, source = model.partition(":")
    if sep and kind in KINDS:
        if not source.strip():
            raise ConfigurationError(
                f"local/{kind} needs a model: local/{kind}:<org>/<name> (a Hugging Face Hub "
                f"model), local/{kind}:/path/to/model or local/{kind}:pkg:<python package>"
            )
        return kind, source, {}
    if named is None:
        return None
    if not isinstance(named, Mapping):
        raise ConfigurationError(
            f"local option models must be a dict of name -> model, got {type(named).__name__}"
        )
    entry = named.get(model)
    if entry is None:
        return None
    if isinstance(entry, str):
        spec, options = entry, {}
    elif isinstance(entry, Mapping) and isinstance(entry.get("model"), str):
        spec = entry["model"]
        options = {key: value for key, value in entry.items() if key != "model"}
    else:
        raise ConfigurationError(
            f"local model {model!r}: give a model string such as 'cross-encoder:/path/to/model', "
            f"or a dict with a 'model' key and options, got {entry!r}"
        )
    kind, sep, source = spec.partition(":")
    if not sep or kind not in KINDS or not source.strip():
        raise ConfigurationError(
            f"local model {model!r} is {spec!r}; expected 'cross-encoder:<directory>', "
            "'bi-encoder:<directory>' or '<kind>:pkg:<python package>'"
        )
    unknown = set(options) - NEURAL_OPTIONS
    if unknown:
        raise ConfigurationError(
            f"local model {model!r} has unknown options {sorted(unknown)}; "
            f"known: {', '.join(sorted(NEURAL_OPTIONS))}"
        )
    return kind, source, options


def check_options(options: Mapping[str, Any], where: str) -> NeuralOptions:
    """Validate the neural options in ``options`` (others are ignored)."""
    values: dict[str, Any] = {}
    for name, minimum in (
        ("batch_size", 1),
        ("max_batch_tokens", 1),
        ("max_length", 4),
        ("threads", 1),
        ("cache_size", 0),
    ):
        if options.get(name) is not None:
            values[name] = _int(options[name], name, where, minimum=minimum)
    for name, allowed in (("activation", _ACTIVATIONS), ("pooling", _POOLINGS)):
        value = options.get(name)
        if value is not None:
            if value not in allowed:
                raise ConfigurationError(
                    f"{where} option {name} must be one of {', '.join(allowed)}, got {value!r}"
                )
            values[name] = value
    for name in ("spin_wait", "quantized"):
        if options.get(name) is not None:
            if not isinstance(options[name], bool):
                raise ConfigurationError(
                    f"{where} option {name} must be True or False, got {options[name]!r}"
                )
            values[name] = options[name]
    for name in ("query_prefix", "document_prefix", "onnx_file"):
        value = options.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise ConfigurationError(f"{where} option {name} must be a str, got {value!r}")
            values[name] = value
    return NeuralOptions(**values)


def _int(value: object, name: str, where: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(
            f"{where} option {name} must be an int >= {minimum}, got {value!r}"
        )
    return value


def model_directory(source: str, onnx_file: str | None, where: str) -> tuple[Path, str | None]:
    """The model directory ``source`` names, and the ONNX file named in it (if any)."""
    if source.startswith("pkg:"):
        return _package_directory(source[4:], onnx_file, where), onnx_file
    # abspath, not resolve(): a file in a Hub cache snapshot is a symlink to a blob, and its
    # tokenizer and external data are beside the link, not beside the blob
    path = Path(os.path.abspath(os.path.expanduser(source)))
    if path.is_file() and path.suffix == ".onnx" and onnx_file is None:
        onnx_file, path = path.name, path.parent
    if not path.is_dir():
        raise ConfigurationError(
            f"{where}: model directory {path} does not exist. Put the model there "
            f"({LAYOUT}), or name its directory in the model string; {EXPORT_HINT}"
        )
    return path, onnx_file


def convertible(directory: Path, onnx_file: str | None) -> bool:
    """Whether ``directory`` has no ONNX file to run but weights rerankit can convert."""
    return (
        onnx_file is None
        and not any((directory / name).is_file() for name in _ONNX_CANDIDATES)
        and (directory / "model.safetensors").is_file()
        and (directory / "config.json").is_file()
    )


def find_files(
    source: str, onnx_file: str | None, where: str, *, quantized: bool = False
) -> ModelFiles:
    """The model files ``source`` names: a directory, an ``.onnx`` file, or ``pkg:<package>``.

    ``quantized``: an int8 ONNX file of the directory, as for a Hub repo, when none is named.
    """
    directory, onnx_file = model_directory(source, onnx_file, where)
    if quantized and onnx_file is None:
        listing = [
            path.relative_to(directory).as_posix()
            for folder in (directory, directory / "onnx")
            if folder.is_dir()
            for path in folder.glob("*.onnx")
        ]
        onnx_file = choose_onnx(listing, None, True, where, str(directory))
    onnx = _find_onnx(directory, onnx_file, where)
    search = [directory] if onnx.parent == directory else [onnx.parent, directory]
    if onnx.parent.name == "onnx" and onnx.parent.parent not in search:
        search.append(onnx.parent.parent)
    tokenizer = _first(search, "tokenizer.json")
    if tokenizer is None:
        raise ConfigurationError(
            f"{where}: no tokenizer.json in {directory}. Save the model's fast tokenizer there "
            "(in transformers: AutoTokenizer.from_pretrained(...).save_pretrained(<dir>)); "
            f"a model directory is {LAYOUT}"
        )
    return ModelFiles(
        directory=directory,
        onnx=onnx,
        tokenizer=tokenizer,
        config=_first([tokenizer.parent, *search], "config.json"),
    )


def _first(directories: list[Path], name: str) -> Path | None:
    for directory in directories:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _find_onnx(directory: Path, onnx_file: str | None, where: str) -> Path:
    if onnx_file is not None:
        candidate = Path(os.path.abspath(directory / onnx_file))
        if candidate.is_file():
            return candidate
        raise ConfigurationError(f"{where}: onnx_file {onnx_file!r} is not a file in {directory}")
    for name in _ONNX_CANDIDATES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise ConfigurationError(
        f"{where}: no ONNX model in {directory}: expected model.onnx or onnx/model.onnx "
        f"(or name the file with onnx_file=...); {EXPORT_HINT}"
    )


def _package_directory(spec: str, onnx_file: str | None, where: str) -> Path:
    """The model directory inside an installed package: ``pkg:<package>[/<subdirectory>]``."""
    package, _, subdir = spec.partition("/")
    if not package.replace(".", "").replace("_", "").isalnum():
        raise ConfigurationError(f"{where}: {package!r} is not a Python package name")
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise ConfigurationError(
            f"{where}: no installed Python package {package!r}; install the package that ships "
            "the model, or give the model's directory instead"
        )
    if not found.submodule_search_locations:
        raise ConfigurationError(
            f"{where}: {package!r} is a module, not a package with a model directory"
        )
    root = Path(next(iter(found.submodule_search_locations)))
    if subdir:
        return root / subdir
    candidates = [root / sub if sub else root for sub in _PACKAGE_SUBDIRS]
    for candidate in candidates:
        if onnx_file is not None and (candidate / onnx_file).is_file():
            return candidate
        if onnx_file is None and any((candidate / n).is_file() for n in _ONNX_CANDIDATES):
            return candidate
    for candidate in candidates:  # no ONNX file: report the directory that has a tokenizer
        if (candidate / "tokenizer.json").is_file():
            return candidate
    return root


def read_config(files: ModelFiles, where: str) -> ModelConfig:
    """Read ``config.json`` and sentence-transformers' files next to the model, when present."""
    config = _json(files.config, where)
    directory = files.tokenizer.parent
    st_bert = _json(_maybe(directory / "sentence_bert_config.json"), where)
    tokenizer_config = _json(_maybe(directory / "tokenizer_config.json"), where)
    pooling_config = _json(_maybe(directory / "1_Pooling" / "config.json"), where)
    labels = config.get("id2label")
    num_labels = config.get("num_labels", len(labels) if isinstance(labels, Mapping) else None)
    activation = None
    st = config.get("sentence_transformers")
    if isinstance(st, Mapping) and isinstance(st.get("activation_fn"), str):
        activation = "sigmoid" if st["activation_fn"].endswith("Sigmoid") else "none"
    pooling = None
    for mode, name in (("cls", "pooling_mode_cls_token"), ("max", "pooling_mode_max_tokens")):
        if pooling_config.get(name) is True:
            pooling = mode
    if pooling is None and pooling_config.get("pooling_mode_mean_tokens") is True:
        pooling = "mean"
    return ModelConfig(
        model_type=_str_or_none(config.get("model_type")),
        num_labels=_int_or_none(num_labels),
        max_position_embeddings=_int_or_none(config.get("max_position_embeddings")),
        pad_token_id=_int_or_none(config.get("pad_token_id")),
        activation=activation,
        max_seq_length=_int_or_none(st_bert.get("max_seq_length")),
        tokenizer_max_length=_int_or_none(tokenizer_config.get("model_max_length")),
        pooling=pooling,
    )


def _maybe(path: Path) -> Path | None:
    return path if path.is_file() else None


def _json(path: Path | None, where: str) -> Mapping[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{where}: cannot read {path}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{where}: {path} is not a JSON object")
    return data


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
