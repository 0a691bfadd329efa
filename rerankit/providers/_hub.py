"""Fetching a model's files from the Hugging Face Hub into its standard cache.

``fetch()`` is blocking I/O: call it in a worker thread. It lists the repo once, chooses the ONNX
file, and downloads only the files rerankit reads, each through ``huggingface_hub`` (which writes
a file to a temporary name and renames it into the cache only when complete, so a cut download is
never loaded). The environment is read at each call, not when ``huggingface_hub`` was imported:
``HF_HUB_CACHE`` / ``HF_HOME``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``; ``HF_TOKEN`` is read by
``huggingface_hub`` itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from rerankit._errors import APIConnectionError, ConfigurationError, RerankitError
from rerankit._install import install_hint
from rerankit.providers._hub_files import (
    AUX_FILES,
    COMMIT,
    HubModel,
    choose_onnx,
    needed_files,
)
from rerankit.providers._onnx_config import Kind, ModelFiles, find_files

__all__ = ["HubSettings", "cached_snapshot", "fetch", "import_hub"]

DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = frozenset({"1", "true", "yes", "on"})
WEIGHTS = "model.safetensors"
_NETWORK_MODULES = frozenset({"httpx", "httpx2", "httpcore", "requests", "urllib3"})


@dataclass(frozen=True)
class HubSettings:
    """Where models come from and go to, read from the environment at call time."""

    cache_dir: Path
    endpoint: str
    offline: bool

    @classmethod
    def from_env(cls) -> HubSettings:
        env = os.environ
        cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
        if not cache:
            home = env.get("HF_HOME") or os.path.join(
                env.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface"
            )
            cache = os.path.join(home, "hub")
        offline = any(
            env.get(name, "").strip().lower() in _TRUE
            for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
        )
        return cls(
            cache_dir=Path(os.path.expanduser(cache)),
            endpoint=(env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/"),
            offline=offline,
        )


def import_hub() -> ModuleType:
    """``huggingface_hub``, or a ``ConfigurationError`` saying how to install it."""
    try:
        import huggingface_hub
    except ImportError as exc:
        raise ConfigurationError(
            "models from the Hugging Face Hub need huggingface_hub: " + install_hint("local")
        ) from exc
    return huggingface_hub


def fetch(
    model: HubModel, kind: Kind, onnx_file: str | None, quantized: bool, where: str
) -> ModelFiles:
    """The files of ``model``, downloaded into the Hub cache unless already there (blocking)."""
    settings = HubSettings.from_env()
    hub = import_hub()
    if settings.offline or _import_offline():
        return _from_cache(model, kind, onnx_file, quantized, where, settings, offline=True)
    error: RerankitError | None = None
    try:
        info = hub.HfApi(endpoint=settings.endpoint).model_info(
            model.repo_id, revision=model.revision
        )
    except Exception as exc:
        error = _translate(exc, model, where, settings)
    if error is not None:
        if not isinstance(error, APIConnectionError):
            raise error
        try:  # the Hub cannot be reached: use the cache, as huggingface_hub does
            return _from_cache(model, kind, onnx_file, quantized, where, settings, offline=False)
        except ConfigurationError:
            raise error from None
    listing = {sibling.rfilename for sibling in info.siblings or ()}
    if _weights_only(listing, onnx_file, quantized):
        names = [name for name in AUX_FILES if name in listing] + [WEIGHTS]
        snapshot = _download(hub, model, names, where, settings)
        return _converted(snapshot, model, kind, where)
    onnx = _choose(listing, kind, onnx_file, quantized, where, model, settings)
    snapshot = _download(hub, model, needed_files(listing, onnx), where, settings)
    return find_files(str(snapshot), onnx, where)


def cached_snapshot(model: HubModel, settings: HubSettings) -> Path | None:
    """The cached snapshot folder of ``model``'s revision, or ``None`` (never any request)."""
    storage = settings.cache_dir / ("models--" + model.repo_id.replace("/", "--"))
    revision = model.revision or "main"
    commit = revision if COMMIT.fullmatch(revision) else None
    if commit is None:
        try:
            commit = (storage / "refs" / revision).read_text(encoding="utf-8").strip()
        except OSError:
            return None
    snapshot = storage / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def _from_cache(
    model: HubModel,
    kind: Kind,
    onnx_file: str | None,
    quantized: bool,
    where: str,
    settings: HubSettings,
    *,
    offline: bool,
) -> ModelFiles:
    snapshot = cached_snapshot(model, settings)
    if snapshot is None:
        why = "HF_HUB_OFFLINE is set" if offline else "the Hub could not be reached"
        raise ConfigurationError(
            f"{where}: {why} and {model} is not in the Hugging Face cache {settings.cache_dir}: "
            f"download it once with network access (`rerankit models download {model}`), with "
            "the same HF_HUB_CACHE / HF_HOME"
        )
    listing = {
        path.relative_to(snapshot).as_posix() for path in snapshot.rglob("*") if path.is_file()
    }
    if _weights_only(listing, onnx_file, quantized):
        return _converted(snapshot, model, kind, where)
    onnx = _choose(listing, kind, onnx_file, quantized, where, model, settings, cached=True)
    return find_files(str(snapshot), onnx, where)


def _weights_only(listing: set[str], onnx_file: str | None, quantized: bool) -> bool:
    """Whether the repo has no ONNX file but weights and a config rerankit can convert."""
    return (
        onnx_file is None
        and not quantized
        and not any(name.endswith(".onnx") for name in listing)
        and {WEIGHTS, "config.json", "tokenizer.json"} <= listing
    )


def _converted(snapshot: Path, model: HubModel, kind: Kind, where: str) -> ModelFiles:
    """The ONNX model converted from a snapshot's weights, in rerankit's cache."""
    from rerankit.providers._convert import converted_directory

    try:
        directory = converted_directory(snapshot, where)
    except ConfigurationError as exc:
        task = "text-classification" if kind == "cross-encoder" else "feature-extraction"
        raise ConfigurationError(
            f"{exc} ({model} has no ONNX export; make one where PyTorch is installed: "
            f"`optimum-cli export onnx --model {model.repo_id} --task {task} <dir>`)"
        ) from None
    return find_files(str(directory), None, where)


def _choose(
    listing: set[str],
    kind: Kind,
    onnx_file: str | None,
    quantized: bool,
    where: str,
    model: HubModel,
    settings: HubSettings,
    *,
    cached: bool = False,
) -> str:
    what = f"the cached copy of {model} ({settings.cache_dir})" if cached else str(model)
    if not any(name.endswith(".onnx") for name in listing):
        if cached:
            raise ConfigurationError(
                f"{where}: {what} holds no ONNX file: download the model with network access "
                f"(`rerankit models download {model}`)"
            )
        weights = [n for n in listing if n.endswith((".safetensors", ".bin"))]
        task = "text-classification" if kind == "cross-encoder" else "feature-extraction"
        raise ConfigurationError(
            f"{where}: {model} has no ONNX export"
            + (f" (only {', '.join(sorted(weights))})" if weights else "")
            + f". Make one where PyTorch is installed: `optimum-cli export onnx --model "
            f"{model.repo_id} --task {task} <dir>`, then use local/{kind}:<dir>"
        )
    if "tokenizer.json" not in listing and not any(n.endswith("/tokenizer.json") for n in listing):
        raise ConfigurationError(
            f"{where}: {what} has no tokenizer.json (the fast tokenizer rerankit needs)"
        )
    return choose_onnx(listing, onnx_file, quantized, where, what)


def _download(
    hub: ModuleType, model: HubModel, names: list[str], where: str, settings: HubSettings
) -> Path:
    """Download ``names`` at the model's revision; returns their snapshot folder."""
    roots: set[Path] = set()
    for name in names:
        error: RerankitError | None = None
        try:
            path = hub.hf_hub_download(
                model.repo_id,
                name,
                revision=model.revision,
                cache_dir=settings.cache_dir,
                endpoint=settings.endpoint,
            )
        except Exception as exc:
            error = _translate(exc, model, where, settings, name)
        if error is not None:
            raise error
        root = Path(path)
        for _ in name.split("/"):
            root = root.parent
        roots.add(root)
    if len(roots) != 1:
        raise APIConnectionError(
            f"{where}: {model} changed on the Hub while its files were downloaded; call again",
            provider="local",
        )
    return roots.pop()


def _translate(
    exc: Exception, model: HubModel, where: str, settings: HubSettings, name: str | None = None
) -> RerankitError:
    """rerankit's error for a failure of ``huggingface_hub``, explaining what to do.

    The caller raises it outside its ``except`` block: the Hub's exceptions hold the request,
    whose headers carry the token, so none is chained.
    """
    from huggingface_hub import errors

    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    page = f"{settings.endpoint}/{model.repo_id}"
    if isinstance(exc, errors.GatedRepoError):
        token = (
            "the token in HF_TOKEN has no access to it"
            if os.environ.get("HF_TOKEN")
            else ("set HF_TOKEN to a token of that account (or log in with `hf auth login`)")
        )
        return ConfigurationError(
            f"{where}: {model.repo_id} is a gated model: accept its conditions at {page} while "
            f"logged in, then {token}"
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        return ConfigurationError(
            f"{where}: no model {model.repo_id} on {settings.endpoint}, and no such local "
            "directory: check the name (a private model needs HF_TOKEN)"
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return ConfigurationError(
            f"{where}: {model.repo_id} has no revision {model.revision!r} (a branch, tag or "
            "commit hash)"
        )
    if isinstance(exc, errors.RemoteEntryNotFoundError):
        return ConfigurationError(f"{where}: {model} has no file {name!r} ({detail})")
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return APIConnectionError(
            f"{where}: the download of {name} from {model} was cut short; nothing of it was "
            "kept: call again to retry",
            provider="local",
        )
    if isinstance(exc, errors.LocalEntryNotFoundError) or _network(exc):
        return APIConnectionError(
            f"{where}: cannot download {model} from {settings.endpoint} ({detail}), and it is "
            "not in the Hugging Face cache: check the network (or HF_ENDPOINT)",
            provider="local",
        )
    if isinstance(exc, errors.HfHubHTTPError):
        return APIConnectionError(
            f"{where}: the Hub at {settings.endpoint} failed for {model}: {detail}",
            provider="local",
        )
    return ConfigurationError(f"{where}: cannot fetch {model}: {type(exc).__name__}: {detail}")


def _network(exc: BaseException) -> bool:
    return isinstance(exc, (ConnectionError, TimeoutError)) or (
        type(exc).__module__.partition(".")[0] in _NETWORK_MODULES
    )


def _import_offline() -> bool:
    """Whether ``huggingface_hub`` was imported with ``HF_HUB_OFFLINE`` set (it then refuses
    every request, whatever the environment says now)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)
