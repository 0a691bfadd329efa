"""Resuming a batch: which jobs an existing output file already holds results for."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import msgspec

from rerankit.cli._common import UsageError
from rerankit.cli._jobs import JobKey, job_key

__all__ = ["Resumed", "resume"]


class Resumed(msgspec.Struct):
    """What an earlier run left: the keys of jobs done, and how many failed jobs will re-run."""

    done: set[JobKey]
    retried: int


def resume(path: Path) -> Resumed:
    """Read the output of an earlier run at ``path`` (missing: nothing done).

    Result lines are kept and their jobs skipped. Error lines, and a last line cut short by an
    interrupted run, are removed (the file is rewritten atomically), so those jobs run again.
    A line that is not a batch record raises ``UsageError``: the file is someone else's.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Resumed(set(), 0)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    lines = data.splitlines(keepends=True)
    kept: list[bytes] = []
    done: set[JobKey] = set()
    retried = 0
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            if number == len(lines) and not raw.endswith(b"\n"):
                continue  # cut short by an interrupted run
            raise UsageError(f"{path}:{number} is not JSON; is this a batch output file?") from None
        if not isinstance(record, dict) or not isinstance(record.get("line"), int):
            raise UsageError(f"{path}:{number} is not a batch result; choose another output file")
        if "error" in record:
            retried += 1
            continue
        done.add(job_key(record.get("id"), record["line"]))
        kept.append(raw if raw.endswith(b"\n") else raw + b"\n")
    if len(kept) != len(lines):
        _replace(path, b"".join(kept))
    return Resumed(done, retried)


def _replace(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
