"""A whole local stack served by uvicorn on a thread, for tests that need real HTTP in-process."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import uvicorn

from imagesearch.http.protocol import HttpProtocol
from imagesearch.local.stack import LocalStack

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(
    app: Any, port: int | None = None, *, http: type[asyncio.Protocol] = HttpProtocol
) -> Iterator[str]:
    """`app` served by uvicorn on loopback (a free port unless given) for the block, with the HTTP protocol
    `imagesearch serve` runs unless given; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=http)
    server = uvicorn.Server(config)
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
def live_stack(
    data_dir: Path, *, event_delivery: Literal["in-process", "cloudevents"] = "in-process", **overrides: Any
) -> Iterator[LocalStack]:
    """LocalStack.start(), then serve its app on a free port until the block ends."""
    stack = LocalStack(
        data_dir=data_dir, port=free_port(), overrides=overrides, event_delivery=event_delivery
    )
    stack.start()
    try:
        assert stack.app is not None
        with serving(stack.app, stack.port):
            yield stack
    finally:
        stack.stop()


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a new event loop, leaving the thread's loop alone. asyncio.run() ends by setting
    the main thread's loop to None, after which Mangum's asyncio.get_event_loop() (the Lambda handlers, in
    later tests) raises instead of making one, as it does in a fresh Lambda process."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()
