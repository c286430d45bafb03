"""A closed-loop HTTP load generator: `concurrency` threads, each sending its next request on the reply."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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


WRK_SCRIPT = """
local bodies = {%s}
local i = 0
local threads = 0
-- each thread starts at its own eighth of the bodies: with bodies that are all new queries, two
-- threads never send the same one (with a few repeated queries it changes nothing)
setup = function(thread)
  thread:set("offset", threads * math.floor(#bodies / 8))
  threads = threads + 1
end
init = function(args)
  i = offset or 0
end
request = function()
  i = i + 1
  return wrk.format("POST", "%s", {["Content-Type"] = "application/json"}, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%f %%f %%f\\n", summary.requests,
    e.status + e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, bodies: Sequence[dict[str, Any]], *, concurrency: int, seconds: float) -> LoadResult:
    """The same closed loop driven by wrk (C, like pgbench), so the client does not eat the app's CPU."""
    parsed = urlsplit(url)
    lua_bodies = ", ".join(f"[==[{json.dumps(body)}]==]" for body in bodies)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (lua_bodies, parsed.path))
    command = [
        "wrk",
        "-t",
        str(min(concurrency, 2)),
        "-c",
        str(concurrency),
        "-d",
        f"{int(seconds)}s",
        "-s",
        script.name,
        f"{parsed.scheme}://{parsed.netloc}",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT"))
    _, requests, errors, duration_us, p50, p95, p99 = line.split()
    # wrk gives percentiles, not samples: keep the three as a tiny sample set with the same percentiles.
    latencies = np.array([float(p50), float(p95), float(p99)]) / 1000
    return WrkResult(int(requests) - int(errors), int(errors), int(duration_us) / 1e6, latencies)


class WrkResult(LoadResult):
    def percentile(self, q: float) -> float:
        return float(self.latencies_ms[{50: 0, 95: 1, 99: 2}[int(q)]])
