"""A Hugging Face Hub stand-in on 127.0.0.1: point ``HF_ENDPOINT`` at it.

It serves what ``huggingface_hub``'s downloads call (model info, the tree listing, ``HEAD`` and
``GET`` of ``/{repo}/resolve/{revision}/{path}`` with the ``X-Repo-Commit``, ``ETag`` and
``X-Linked-*`` headers, ``Range`` requests), and its errors the way the Hub sends them (status
plus ``X-Error-Code``): missing repos, revisions and files, gated repos without a token.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rerankit.testing._server import FakeServer, ReceivedRequest, Reply

__all__ = ["FakeHub", "HubRepo"]

LFS_SUFFIXES = (".onnx", ".onnx_data", ".safetensors", ".bin")
"""Files the fake stores as LFS files, as the Hub does for weights."""


@dataclass
class HubRepo:
    """One model repository: its commits (path -> bytes), branches and tags."""

    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    token: str | None = None
    """For a gated repo: the token that may download its files."""


class FakeHub:
    """A fake Hub with model repos added by ``add()``; ``url`` is its ``HF_ENDPOINT``.

    ``downloads`` lists the (repo, revision, path) of every file ``GET``; ``server.received``
    every request. ``cut(path, keep)`` makes the next download of ``path`` send only ``keep``
    bytes of it; ``drop(path)`` makes it lose the connection before the end.
    """

    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.downloads: list[tuple[str, str, str]] = []
        self._cuts: dict[str, int] = {}
        self._drops: set[str] = set()
        self._lock = threading.Lock()
        self.server = FakeServer(self._handle)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def requests(self) -> int:
        return self.server.requests

    def __enter__(self) -> FakeHub:
        self.server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.stop()

    def add(
        self,
        repo_id: str,
        files: Mapping[str, bytes],
        *,
        branch: str = "main",
        tags: tuple[str, ...] = (),
        gated_token: str | None = None,
        commit: str | None = None,
    ) -> str:
        """Commit ``files`` as the new head of ``branch`` of ``repo_id``; returns the commit
        (``commit``, else a hash of the files)."""
        if commit is None:
            digest = hashlib.sha1(repo_id.encode())
            for path in sorted(files):
                digest.update(path.encode() + b"\0" + hashlib.sha1(files[path]).digest())
            commit = digest.hexdigest()
        with self._lock:
            repo = self.repos.setdefault(repo_id, HubRepo())
            repo.commits[commit] = dict(files)
            repo.refs[branch] = commit
            for tag in tags:
                repo.refs[tag] = commit
            if gated_token is not None:
                repo.token = gated_token
        return commit

    def cut(self, path: str, keep: int) -> None:
        """The next download of ``path`` (in any repo) sends its first ``keep`` bytes only,
        as a complete response (as a proxy that cut the file would)."""
        with self._lock:
            self._cuts[path] = keep

    def drop(self, path: str) -> None:
        """The next download of ``path`` loses the connection 100 bytes before the end."""
        with self._lock:
            self._drops.add(path)

    # ------------------------------------------------------------------ routes

    def _handle(self, request: ReceivedRequest) -> Reply:
        parts = request.path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            return self._api(request, f"{parts[2]}/{parts[3]}", parts[4:])
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(request, f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
        return _error(404, "NotFound", f"no route {request.path}")

    def _api(self, request: ReceivedRequest, repo_id: str, rest: list[str]) -> Reply:
        repo = self.repos.get(repo_id)
        if repo is None:
            return _error(404, "RepoNotFound", "Repository not found")
        revision = "main"
        if rest[:1] in (["revision"], ["tree"]) and len(rest) >= 2:
            revision = rest[1]
        commit = _commit(repo, revision)
        if commit is None:
            return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        files = repo.commits[commit]
        if rest[:1] == ["tree"]:
            return Reply(body=[_tree_entry(path, data) for path, data in sorted(files.items())])
        siblings = [{"rfilename": path} for path in sorted(files)]
        if request.query.get("blobs") == "true":
            for sibling in siblings:
                sibling.update(_blob(sibling["rfilename"], files[sibling["rfilename"]]))
        return Reply(
            body={
                "id": repo_id,
                "modelId": repo_id,
                "sha": commit,
                "siblings": siblings,
                "private": False,
                "gated": "manual" if repo.token else False,
                "disabled": False,
                "tags": [],
            }
        )

    def _resolve(self, request: ReceivedRequest, repo_id: str, revision: str, path: str) -> Reply:
        repo = self.repos.get(repo_id)
        if repo is None:
            return _error(404, "RepoNotFound", "Repository not found")
        if repo.token is not None and request.headers.get("authorization") != (
            f"Bearer {repo.token}"
        ):
            return _error(401, "GatedRepo", "Access to this model is restricted")
        commit = _commit(repo, revision)
        if commit is None:
            return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        data = repo.commits[commit].get(path)
        if data is None:
            reply = _error(404, "EntryNotFound", f"{path} does not exist")
            reply.headers["X-Repo-Commit"] = commit
            return reply
        headers = {"X-Repo-Commit": commit, "Content-Type": "application/octet-stream"}
        if path.endswith(LFS_SUFFIXES):
            sha256 = hashlib.sha256(data).hexdigest()
            headers.update({"ETag": f'"{sha256}"', "X-Linked-Etag": f'"{sha256}"'})
            headers["X-Linked-Size"] = str(len(data))
        else:
            headers["ETag"] = f'"{_git_sha(data)}"'
        if request.method == "HEAD":
            return Reply(body=data, headers=headers)
        with self._lock:
            self.downloads.append((repo_id, revision, path))
            keep = self._cuts.pop(path, None)
            dropped = path in self._drops
            self._drops.discard(path)
        if keep is not None:
            return Reply(body=data[:keep], headers=headers)
        if dropped:  # announces len(data) bytes, sends 100 fewer, closes the connection
            return Reply(body=data[: len(data) - 100], headers=headers, truncate=True)
        start = _range_start(request.headers.get("range"))
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            return Reply(status=206, body=data[start:], headers=headers)
        return Reply(body=data, headers=headers)


def _commit(repo: HubRepo, revision: str) -> str | None:
    if revision in repo.commits:
        return revision
    return repo.refs.get(revision)


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(
        status=status,
        body={"error": message},
        headers={"X-Error-Code": code, "X-Error-Message": message},
    )


def _git_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _blob(path: str, data: bytes) -> dict[str, Any]:
    info: dict[str, Any] = {"size": len(data), "blobId": _git_sha(data)}
    if path.endswith(LFS_SUFFIXES):
        sha256 = hashlib.sha256(data).hexdigest()
        info["lfs"] = {"sha256": sha256, "size": len(data), "pointerSize": 134}
    return info


def _tree_entry(path: str, data: bytes) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "file", "oid": _git_sha(data), "size": len(data), "path": path}
    if path.endswith(LFS_SUFFIXES):
        sha256 = hashlib.sha256(data).hexdigest()
        entry["lfs"] = {"oid": sha256, "size": len(data), "pointerSize": 134}
    return entry


def _range_start(header: str | None) -> int:
    if not header or not header.startswith("bytes="):
        return 0
    start = header[len("bytes=") :].partition("-")[0]
    return int(start) if start.isdigit() else 0
