"""Per-tenant fairness: a steady tenant's latency while another tenant floods at 10x its rate limit.

    .venv/bin/python bench/fairness.py [--seconds 15] [--limit 20] [--steady-rate 10] [--workers 2]

One embedded PostgreSQL, the local app under uvicorn (API-key auth, IMAGESEARCH_RATE_LIMIT_PER_SECOND =
--limit, burst 2x) in its own processes, and two tenants, each with 100 images listed by `GET /images`
(auth, the rate limit, one indexed read, signed thumbnail URLs). The steady tenant sends --steady-rate
requests per second on a fixed schedule (open loop: a late answer does not delay the next request); the
flooding tenant sends 10x --limit per second from several threads over raw keep-alive sockets (a cheap
client, so that the load generator takes little of the cores the server needs). Three rows, in one run:

- unloaded: the steady tenant alone (the baseline);
- flood, limit on: the flood gets 429s beyond its limit; the steady tenant should see no error and a p99
  within 2x of the baseline;
- flood, limit off: the same flood with IMAGESEARCH_RATE_LIMIT_PER_SECOND=0, what the limit prevents.

Server CPU per request is the server processes' CPU time over the window divided by all requests served;
"cores busy" adds the load generator's own CPU (of the 2 cores): near 2, the machine itself is the limit.
The load generator is Python (threads, httpx) on the same 2 cores: its own CPU competes with the server's,
so absolute latencies are pessimistic; the ratios between rows are what this bench is for.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _postgres import migrated_database
from _search_app import AppServer, free_port

from imagesearch.auth.api_keys import ApiKeys
from imagesearch.db import Database
from imagesearch.images.repository import NewImage, insert
from imagesearch.tables import format_table

BENCH_DIR = Path(__file__).resolve().parent
IMAGES_PER_TENANT = 100
FLOOD_THREADS = 4


@dataclass
class Stream:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # of 200s, seconds


def schedule(rate: float, seconds: float, stop: threading.Event) -> Iterator[None]:
    """Yield at `rate` per second on a fixed schedule (open loop: a late answer does not delay the next)."""
    interval, started, n = 1.0 / rate, time.monotonic(), 0
    while not stop.is_set() and n * interval < seconds:
        delay = started + n * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield
        n += 1


def paced(base: str, key: str, rate: float, seconds: float, stream: Stream, stop: threading.Event) -> None:
    """`rate` requests per second through httpx, timing each answer."""
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
        for _ in schedule(rate, seconds, stop):
            sent = time.monotonic()
            response = client.get("/images", params={"limit": 20})
            stream.statuses[response.status_code] += 1
            if response.status_code == 200:
                stream.latencies.append(time.monotonic() - sent)


def raw_flood(
    base: str, key: str, rate: float, seconds: float, stream: Stream, stop: threading.Event
) -> None:
    """Like `paced`, over one keep-alive socket with hand-written HTTP/1.1: a client several times cheaper
    than httpx, so the flood's own CPU takes less of the 2 cores the server runs on."""
    host, port = base.removeprefix("http://").split(":")
    request = f"GET /images?limit=20 HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-Key: {key}\r\n\r\n".encode()
    with socket.create_connection((host, int(port))) as sock:
        reader = sock.makefile("rb")
        for _ in schedule(rate, seconds, stop):
            sock.sendall(request)
            status = int(reader.readline().split()[1])
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            reader.read(length)
            stream.statuses[status] += 1


def fairness_server(url: str, storage: Path, limit: float, workers: int) -> AppServer:
    """The local app under uvicorn, API-key auth, the per-tenant limit `limit` (burst twice that)."""
    port = free_port()
    env = dict(os.environ) | {
        "IMAGESEARCH_DATABASE_URL": url,
        "IMAGESEARCH_STORAGE_URL": storage.as_uri(),
        "IMAGESEARCH_SIGNING_SECRET": "bench-secret-0123456789abcdef",
        "IMAGESEARCH_AUTH_MODE": "api_key",
        "IMAGESEARCH_RATE_LIMIT_PER_SECOND": str(limit),
        "IMAGESEARCH_RATE_LIMIT_BURST": str(max(1, int(2 * limit))),
        "IMAGESEARCH_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "IMAGESEARCH_LOG_LEVEL": "WARNING",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "imagesearch.local.server:local_app"]
    command += ["--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    return AppServer(command, port, env=env)


def run_row(server: AppServer, keys: dict[str, str], args: argparse.Namespace, flood: bool) -> dict[str, Any]:
    steady, flooding, stop = Stream(), Stream(), threading.Event()
    threads = [
        threading.Thread(
            target=paced, args=(server.base, keys["steady"], args.steady_rate, args.seconds, steady, stop)
        )
    ]
    if flood:
        per_thread = 10 * args.limit / FLOOD_THREADS
        threads += [
            threading.Thread(
                target=raw_flood, args=(server.base, keys["flood"], per_thread, args.seconds, flooding, stop)
            )
            for _ in range(FLOOD_THREADS)
        ]
    client_before = time.process_time()
    with server.measure() as usage:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    cpu = usage.cpu_seconds
    client_cpu = time.process_time() - client_before
    served = sum(steady.statuses.values()) + sum(flooding.statuses.values())
    return {
        "steady": steady,
        "flood": flooding,
        "cpu_ms": 1000 * cpu / max(1, served),
        "rss": usage.rss_mb,
        "busy": (cpu + client_cpu) / args.seconds,  # cores busy: the server and the load generator
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--limit", type=float, default=20, help="the flooding tenant's limit, requests/s")
    parser.add_argument("--steady-rate", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, migrated_database(Path(tmp), "fairness") as url:
        db = Database(url, max_size=1)
        keys_store, keys = ApiKeys(db), {}
        for name in ("steady", "flood"):
            key, record = keys_store.create(name)
            keys[name] = key
            with db.connection() as conn:
                for i in range(IMAGES_PER_TENANT):
                    image_id = uuid.uuid4()
                    new = NewImage(
                        id=image_id,
                        tenant_id=record.tenant_id,
                        storage_key=f"originals/{record.tenant_id}/{image_id}",
                        filename=f"{i}.png",
                        title=f"picture {i}",
                        description=None,
                        tags=["bench"],
                        content_type="image/png",
                        size=100,
                    )
                    insert(conn, new)
        db.close()
        storage = Path(tmp) / "objects"
        storage.mkdir()
        rows, results = [], {}
        for label, limit, flood in (
            ("unloaded", args.limit, False),
            ("flood, limit on", args.limit, True),
            ("flood, limit off", 0.0, True),
        ):
            with fairness_server(url, storage, limit, args.workers) as server:
                run_row(server, keys, argparse.Namespace(**{**vars(args), "seconds": 2}), flood=False)  # warm
                results[label] = result = run_row(server, keys, args, flood)
            print(f"{label}: done", file=sys.stderr, flush=True)
            steady, flooding = result["steady"], result["flood"]
            lat = np.array(steady.latencies) * 1000
            rows.append(
                [
                    label,
                    str(sum(steady.statuses.values())),
                    str(sum(n for s, n in steady.statuses.items() if s != 200)),
                    f"{np.percentile(lat, 50):.1f}" if len(lat) else "-",
                    f"{np.percentile(lat, 99):.1f}" if len(lat) else "-",
                    f"{flooding.statuses[200]}/{flooding.statuses[429]}" if flood else "-",
                    f"{result['cpu_ms']:.2f}",
                    f"{result['rss']:.0f}",
                    f"{result['busy']:.2f}",
                ]
            )
    base_p99 = float(np.percentile(np.array(results["unloaded"]["steady"].latencies), 99))
    for row, result in zip(rows, results.values(), strict=True):
        p99 = float(np.percentile(np.array(result["steady"].latencies), 99))
        row.insert(5, f"{p99 / base_p99:.2f}")
    print(
        f"\nsteady tenant at {args.steady_rate:g}/s; flooding tenant at {10 * args.limit:g}/s "
        f"(10x its limit of {args.limit:g}/s); {args.seconds:g} s per row, {args.workers} uvicorn workers"
    )
    print(
        format_table(
            [
                "row",
                "steady requests",
                "steady errors",
                "steady p50 ms",
                "steady p99 ms",
                "p99 vs unloaded",
                "flood 200/429",
                "server CPU ms/req",
                "server RSS MB",
                "cores busy",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
