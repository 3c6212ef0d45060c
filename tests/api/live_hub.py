"""A Hub API served by uvicorn in a thread of the test process, on the function-scoped `db` fixture's database,
for tests outside tests/api that drive the tracking SDK (which talks HTTP only). Tests of the API itself use
the `hub` fixture (a separate `serve` process)."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import httpx
import uvicorn

from mlops_core.serving.app import create_app


@contextmanager
def hub_in_thread(database_url: str) -> Iterator[str]:
    """Serve the app on a free loopback port until the block ends; yields the base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(database_url, poll_seconds=60), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, name="hub-in-thread", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise AssertionError("the in-thread Hub did not answer /healthz within 30 s")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(15)
