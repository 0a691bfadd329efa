"""``rerankit serve`` as a process: SIGTERM and SIGINT let a slow request in flight finish."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from rerankit.testing import CohereFake, FakeServer, ReceivedRequest, Reply

from .conftest import API_KEY
from .support import DOCUMENTS, QUERY

pytestmark = pytest.mark.slow

CONFIG = """
[server]
api_keys = ["client-key"]
shutdown_timeout = 10

[models.slow]
model = "cohere/rerank-v3.5"

[providers.cohere]
api_base = "{upstream}"
max_retries = 0
"""


@pytest.fixture
def slow_upstream() -> Iterator[FakeServer]:
    """A Cohere fake that takes half a second to answer."""
    fake = CohereFake(API_KEY)

    def handler(request: ReceivedRequest) -> Reply:
        return msgspec.structs.replace(fake(request), delay=0.5)

    with FakeServer(handler) as server:
        yield server


def start_server(config: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "COHERE_API_KEY": API_KEY}
    process = subprocess.Popen(
        [sys.executable, "-m", "rerankit", "serve", "--config", str(config), "--port", "0"],
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            return process, found.group(1)
    process.kill()
    process.communicate()
    raise AssertionError(f"the server did not start (exit status {process.returncode})")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_request_in_flight_finishes_after_the_signal(
    slow_upstream: FakeServer, tmp_path: Path, signum: signal.Signals
) -> None:
    config = tmp_path / "server.toml"
    config.write_text(CONFIG.format(upstream=slow_upstream.url), encoding="utf-8")
    process, url = start_server(config)
    answers: list[httpx.Response] = []
    try:
        with httpx.Client(base_url=url, trust_env=False, timeout=10) as client:
            body = {"model": "slow", "query": QUERY, "documents": DOCUMENTS[:4]}
            headers = {"Authorization": "Bearer client-key"}
            request = threading.Thread(
                target=lambda: answers.append(client.post("/v2/rerank", json=body, headers=headers))
            )
            request.start()
            deadline = time.monotonic() + 10
            while not slow_upstream.received and time.monotonic() < deadline:
                time.sleep(0.01)
            assert slow_upstream.received, "the request never reached the upstream"
            process.send_signal(signum)
            request.join(10)
        assert process.wait(10) == 0
        assert process.stderr is not None
        log = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert len(answers) == 1
    assert answers[0].status_code == 200
    assert [r["index"] for r in answers[0].json()["results"]] == [1, 2, 0, 3]
    assert "shutting down" in log
    assert "client-key" not in log
    assert API_KEY not in log
    with pytest.raises(httpx.ConnectError), httpx.Client(trust_env=False) as client:
        client.get(f"{url}/health")
