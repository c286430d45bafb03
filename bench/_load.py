"""A closed-loop HTTP load generator: `concurrency` threads, each sending its next request on the reply."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: np.ndarray

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else float("nan")


def run_load(url: str, bodies: Sequence[dict[str, Any]], *, concurrency: int, seconds: float) -> LoadResult:
    """POST `bodies` round-robin to `url` from `concurrency` clients for `seconds`."""
    counter = itertools.count()
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def client() -> None:
        nonlocal errors
        local: list[float] = []
        local_errors = 0
        with httpx.Client(timeout=30) as http:
            while time.perf_counter() < deadline:
                body = bodies[next(counter) % len(bodies)]
                started = time.perf_counter()
                try:
                    ok = http.post(url, json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    local.append((time.perf_counter() - started) * 1000)
                else:
                    local_errors += 1
        with lock:
            latencies.extend(local)
            errors += local_errors

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return LoadResult(len(latencies), errors, elapsed, np.array(latencies))
