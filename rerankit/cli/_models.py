"""``rerankit models``: local models in the Hugging Face cache, and converting or quantizing one.

``download NAME`` fetches what ``local/<kind>:NAME`` would (with huggingface_hub's progress bar
on a terminal), ``list`` shows the cached models, ``remove NAME`` deletes one, ``info NAME``
says what a name resolves to and what of it is cached, ``convert SRC DST`` writes an ONNX model
directory from safetensors weights, and ``quantize SRC DST`` an int8 copy of an ONNX model.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from rerankit._errors import ConfigurationError
from rerankit.cli._common import EXIT_OK, UsageError
from rerankit.providers._hub import HubSettings, cached_snapshot, fetch, import_hub
from rerankit.providers._hub_files import AUX_FILES, HubModel, parse_hub
from rerankit.providers._known_models import KNOWN_MODELS, known_model
from rerankit.providers._onnx_config import (
    KINDS,
    Kind,
    ModelFiles,
    convertible,
    find_files,
    model_directory,
)

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "models",
        help="download, list, remove, convert or quantize local models",
        description=(
            "Manage the local neural models: those fetched from the Hugging Face Hub (in its "
            "cache, HF_HUB_CACHE or HF_HOME), and ONNX files made from weights."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    download = actions.add_parser("download", help="fetch a model into the Hugging Face cache")
    download.add_argument("name", help="a Hub id (org/name[@revision]) or a known short name")
    download.add_argument(
        "--kind", choices=KINDS, help="default: the known model's, else cross-encoder"
    )
    download.add_argument("--onnx-file", help="the ONNX file to fetch (default: the fp32 one)")
    download.add_argument("--quantized", action="store_true", help="fetch an int8 ONNX file")
    actions.add_parser("list", help="the models in the Hugging Face cache, and known names")
    remove = actions.add_parser("remove", help="delete a model from the Hugging Face cache")
    remove.add_argument("name", help="a Hub id (org/name[@revision]) or a known short name")
    info = actions.add_parser("info", help="what a name resolves to and what of it is cached")
    info.add_argument("name", help="a Hub id (org/name[@revision]) or a known short name")
    convert = actions.add_parser("convert", help="write an ONNX model from safetensors weights")
    convert.add_argument("source", help="a directory (or pkg:<package>) with model.safetensors")
    convert.add_argument("target", help="the directory to write")
    quantize = actions.add_parser("quantize", help="write an int8 copy of an ONNX model")
    quantize.add_argument("source", help="a model directory, ONNX file, pkg:, or Hub model")
    quantize.add_argument("target", help="the directory to write")
    quantize.add_argument(
        "--per-tensor",
        action="store_true",
        help="one scale per weight tensor instead of per output channel (less accurate)",
    )


def run(args: argparse.Namespace) -> int:
    action = {
        "download": _download,
        "list": _list,
        "remove": _remove,
        "info": _info,
        "convert": _convert,
        "quantize": _quantize,
    }[args.action]
    action(args)
    return EXIT_OK


def _hub_model(name: str) -> HubModel:
    model = parse_hub(name if name.startswith("hf:") else f"hf:{name}")
    assert model is not None  # hf: is always the Hub (or a ConfigurationError)
    return model


def _download(args: argparse.Namespace) -> None:
    model = _hub_model(args.name)
    kind: Kind = args.kind or model.kind or "cross-encoder"
    onnx_file = args.onnx_file or (None if args.quantized else model.onnx_file)
    files = fetch(model, kind, onnx_file, args.quantized, f"local/{kind}:{args.name}")
    print(files.onnx)


def _list(args: argparse.Namespace) -> None:
    settings = HubSettings.from_env()
    hub = import_hub()
    try:
        cache = hub.scan_cache_dir(settings.cache_dir)
    except hub.CacheNotFound:
        print(f"no models in the Hugging Face cache ({settings.cache_dir})")
        cache = None
    for repo in sorted(cache.repos if cache else (), key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        for revision in sorted(repo.revisions, key=lambda r: r.commit_hash):
            refs = ", ".join(sorted(revision.refs)) or "-"
            files = ", ".join(sorted(f.file_name for f in revision.files))
            print(
                f"{repo.repo_id}@{revision.commit_hash[:12]} ({refs}) "
                f"{_size(revision.size_on_disk)}: {files}"
            )
    print("\nknown names (local/<kind>:<name>):")
    for known in KNOWN_MODELS:
        print(f"  {known.name:38} {known.kind:14} {known.repo_id}")


def _remove(args: argparse.Namespace) -> None:
    model = _hub_model(args.name)
    settings = HubSettings.from_env()
    hub = import_hub()
    try:
        cache = hub.scan_cache_dir(settings.cache_dir)
    except hub.CacheNotFound:
        cache = None
    repos = [r for r in (cache.repos if cache else ()) if r.repo_id == model.repo_id]
    revisions = [
        revision.commit_hash
        for repo in repos
        for revision in repo.revisions
        if model.revision is None
        or revision.commit_hash.startswith(model.revision)
        or model.revision in revision.refs
    ]
    if cache is None or not revisions:
        raise ConfigurationError(f"{model} is not in the Hugging Face cache {settings.cache_dir}")
    strategy = cache.delete_revisions(*revisions)
    strategy.execute()
    print(f"removed {model} ({len(revisions)} revision(s), {_size(strategy.expected_freed_size)})")


def _info(args: argparse.Namespace) -> None:
    model = _hub_model(args.name)
    known = known_model(args.name.partition("@")[0])
    print(f"repo: {model.repo_id}")
    print(f"revision: {model.revision or 'main (the default branch)'}")
    if known is not None:
        print(f"kind: {known.kind}")
        print(f"onnx file: {known.onnx_file}")
        print(f"languages: {known.languages}; max length: {known.max_length}")
        print(f"size: {known.size_mb} MB; licence: {known.licence}")
        print(f"source: {known.source}")
    settings = HubSettings.from_env()
    snapshot = cached_snapshot(model, settings)
    if snapshot is None:
        print(f"cached: no (cache: {settings.cache_dir})")
        return
    files = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file())
    print(f"cached: {snapshot}")
    for name in files:
        print(f"  {name}")


def _convert(args: argparse.Namespace) -> None:
    from rerankit.providers._convert import convert_directory

    where = f"rerankit models convert {args.source}"
    directory, onnx_file = model_directory(args.source, None, where)
    if not convertible(directory, onnx_file):
        raise ConfigurationError(
            f"{where}: {directory} needs model.safetensors and config.json, and no ONNX file"
        )
    target = Path(args.target)
    if target.exists():
        raise UsageError(f"{target} exists; give a new directory")
    convert_directory(directory, target.resolve(), where)
    print(target / "model.onnx")


def _quantize(args: argparse.Namespace) -> None:
    where = f"rerankit models quantize {args.source}"
    files = _model_files(args.source, where)
    target = Path(args.target)
    if target.exists():
        raise UsageError(f"{target} exists; give a new directory")
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ConfigurationError(f"quantizing needs onnxruntime and onnx: {exc}") from exc
    target.mkdir(parents=True)
    try:
        quantize_dynamic(
            str(files.onnx),
            str(target / "model.onnx"),
            per_channel=not args.per_tensor,
            weight_type=QuantType.QInt8,
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        shutil.rmtree(target, ignore_errors=True)
        raise ConfigurationError(f"{where}: cannot quantize {files.onnx}: {exc}") from exc
    for name in AUX_FILES:
        source = files.tokenizer.parent / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / name)
    print(target / "model.onnx", file=sys.stdout)


def _model_files(source: str, where: str) -> ModelFiles:
    model = parse_hub(source)
    if model is None:
        return find_files(source, None, where)
    return fetch(model, model.kind or "cross-encoder", model.onnx_file, False, where)


def _size(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"
