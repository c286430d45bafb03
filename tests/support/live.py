"""A whole local stack served by uvicorn on a thread, for tests that need real HTTP in-process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from imagesearch.local.stack import LocalStack


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any, port: int | None = None) -> Iterator[str]:
    """`app` served by uvicorn on loopback (a free port unless given) for the block; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def live_stack(data_dir: Path, **overrides: Any) -> Iterator[LocalStack]:
    """LocalStack.start(), then serve its app on a free port until the block ends."""
    stack = LocalStack(data_dir=data_dir, port=free_port(), overrides=overrides)
    stack.start()
    try:
        assert stack.app is not None
        with serving(stack.app, stack.port):
            yield stack
    finally:
        stack.stop()
