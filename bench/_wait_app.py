"""A trivial ASGI app for bench/wakeups.py: every POST waits 6 ms, as a search waits for PostgreSQL, then
answers 7 KB of JSON. BENCH_WAIT=loop waits in the event loop (`asyncio.sleep`); BENCH_WAIT=thread waits on
a worker thread (`time.sleep` in the loop's executor), as a sync read from an async route does."""

from __future__ import annotations

import asyncio
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

WAIT_SECONDS = 0.006
BODY = json.dumps({"results": [{"id": "x" * 36, "url": "http://example/" + "y" * 300} for _ in range(20)]})
_threads = ThreadPoolExecutor(8)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    if scope["path"] != "/health":
        if os.environ.get("BENCH_WAIT") == "thread":
            await asyncio.get_running_loop().run_in_executor(_threads, time.sleep, WAIT_SECONDS)
        else:
            await asyncio.sleep(WAIT_SECONDS)
    body = BODY.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
