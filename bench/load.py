"""A bounded load test of the local stack on loopback: mixed uploads, searches and reads.

    .venv/bin/python bench/load.py [--concurrency 32] [--seconds 60] [--model-dir DIR]

Starts `imagesearch dev` in a fresh data directory (its own process, as a user runs it), seeds a small
gallery, then runs closed-loop clients (asyncio): 20% uploads of new images, 60% hybrid searches, 20% GETs of
image records: first one client for a baseline, then the full concurrency, so the throughput ratio comes
from the same run. Before the load, the time from an upload to its record reading ready (one photo at a
time). Errors must be 0; every accepted upload must end ready or failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np

from imagesearch.demo.shapes import COLORS, SHAPES
from imagesearch.tables import format_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.images import make_image  # noqa: E402 - the tests' image factory

QUERIES = [f"a {color} {shape}" for color in list(COLORS)[:6] for shape in SHAPES[:4]]


class Stats:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.statuses: dict[tuple[str, int], int] = defaultdict(int)
        self.accepted: list[str] = []
        self.seconds = 0.0


async def client_loop(
    http: httpx.AsyncClient, stats: Stats, deadline: float, ids: list[str], rng: random.Random
) -> None:
    n = 0
    while time.perf_counter() < deadline:
        n += 1
        pick = rng.random()
        started = time.perf_counter()
        try:
            if pick < 0.2:
                kind = "upload"
                data = make_image(
                    color=rng.choice(["red", "green", "blue", "yellow"]),
                    shape=rng.choice(["circle", "square", "triangle"]),
                    size=(64 + rng.randrange(400), 64 + rng.randrange(400)),
                )
                response = await http.post("/images", files={"file": (f"load-{n}.png", data)})
            elif pick < 0.8:
                kind = "search"
                response = await http.post("/search", json={"query": rng.choice(QUERIES), "limit": 20})
            else:
                kind = "get"
                response = await http.get(f"/images/{rng.choice(ids)}")
        except httpx.HTTPError:
            stats.errors["transport"] += 1
            continue
        elapsed = (time.perf_counter() - started) * 1000
        stats.statuses[(kind, response.status_code)] += 1
        if response.status_code >= 400 or (kind == "upload" and response.status_code not in (200, 201)):
            stats.errors[kind] += 1
            continue
        stats.latencies[kind].append(elapsed)
        if kind == "upload" and response.status_code == 201:
            stats.accepted.append(response.json()["id"])


async def run(base: str, concurrency: int, seconds: float, ids: list[str]) -> Stats:
    stats = Stats()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(
            *(client_loop(http, stats, deadline, ids, random.Random(i)) for i in range(concurrency))
        )
        stats.seconds = time.perf_counter() - started
    return stats


def rows(label: str, stats: Stats, baseline: Stats | None) -> list[list[str]]:
    out = []
    total = sum(len(v) for v in stats.latencies.values())
    base_rate = sum(len(v) for v in baseline.latencies.values()) / baseline.seconds if baseline else None
    for kind in ("upload", "search", "get"):
        lat = np.array(stats.latencies[kind]) if stats.latencies[kind] else np.array([float("nan")])
        out.append(
            [
                label,
                kind,
                str(len(stats.latencies[kind])),
                str(stats.errors[kind]),
                f"{len(stats.latencies[kind]) / stats.seconds:.1f}",
                f"{np.percentile(lat, 50):.0f}",
                f"{np.percentile(lat, 95):.0f}",
                f"{np.percentile(lat, 99):.0f}",
                "",
            ]
        )
    rate = total / stats.seconds
    out.append(
        [
            label,
            "all",
            str(total),
            str(sum(stats.errors.values())),
            f"{rate:.1f}",
            "",
            "",
            "",
            f"{rate / base_rate:.2f}" if base_rate else "1.00",
        ]
    )
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--baseline-seconds", type=float, default=15)
    parser.add_argument("--model-dir", type=Path, help="a model bundle (default: the demo bundle)")
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGESEARCH_")}
    env["IMAGESEARCH_LOG_LEVEL"] = "WARNING"
    env["IMAGESEARCH_DB_POOL_MAX"] = "16"
    if args.model_dir:
        env["IMAGESEARCH_MODEL_DIR"] = str(args.model_dir.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [sys.executable, "-m", "imagesearch.cli.main", "dev", "--port", str(port), "--data-dir", tmp],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            ids = seed(base)
            to_ready = time_to_ready(base)
            print(f"seeded {len(ids)} images; baseline at concurrency 1 ...", file=sys.stderr)
            baseline = asyncio.run(run(base, 1, args.baseline_seconds, ids))
            print(f"load at concurrency {args.concurrency} for {args.seconds:.0f} s ...", file=sys.stderr)
            loaded = asyncio.run(run(base, args.concurrency, args.seconds, ids))
            accepted = baseline.accepted + loaded.accepted
            final = settle(base, accepted)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
    print(
        format_table(
            ["run", "request", "ok", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "req/s vs c=1"],
            rows("c=1", baseline, None) + rows(f"c={args.concurrency}", loaded, baseline),
        )
    )
    print(f"\naccepted uploads: {len(accepted)}; afterwards: {dict(final)} (nothing pending, nothing lost)")
    print(
        "upload -> ready, one 1600x1200 JPEG at a time, idle stack: "
        f"p50 {np.percentile(to_ready, 50):.0f} ms, max {max(to_ready):.0f} ms over {len(to_ready)} uploads"
    )
    errors = sum(baseline.errors.values()) + sum(loaded.errors.values())
    return 1 if errors or final.get("pending") else 0


def seed(base: str) -> list[str]:
    ids = []
    with httpx.Client(base_url=base, timeout=60) as http:
        for i, color in enumerate(["red", "green", "blue", "yellow", "white", "black"]):
            for shape in ("circle", "square", "triangle"):
                data = make_image(color=color, shape=shape, size=(128 + i, 128), background="grey")
                ids.append(http.post("/images", files={"file": (f"{color}-{shape}.png", data)}).json()["id"])
    return ids


def time_to_ready(base: str, count: int = 10) -> list[float]:
    """Milliseconds from sending an upload to its record reading `ready`, polled every 10 ms."""
    times = []
    with httpx.Client(base_url=base, timeout=60) as http:
        for i in range(count):
            data = make_image(fmt="JPEG", color="blue", shape="circle", size=(1600, 1200 + i))
            started = time.perf_counter()
            image_id = http.post("/images", files={"file": (f"photo-{i}.jpg", data)}).json()["id"]
            while http.get(f"/images/{image_id}").json()["status"] == "pending":
                time.sleep(0.01)
            times.append((time.perf_counter() - started) * 1000)
    return times


def settle(base: str, ids: list[str], timeout: float = 600) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=60) as http:
        while True:
            counts: dict[str, int] = defaultdict(int)
            for image_id in ids:
                counts[http.get(f"/images/{image_id}").json()["status"]] += 1
            if not counts.get("pending") or time.monotonic() > deadline:
                return dict(counts)
            time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
