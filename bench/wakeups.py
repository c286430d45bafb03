"""What waiting costs in CPU on this machine: the floor under every request that waits for a database.

    .venv/bin/python bench/wakeups.py [--seconds 8] [--rounds 3]

1. A trivial ASGI app (bench/_wait_app.py) under uvicorn, one worker, driven by wrk: each request waits
   6 ms, in the event loop or on a worker thread, then answers 7 KB. The app's CPU per request is what the
   server, the loop and the wake-ups cost with no app logic at all; the difference between the two rows is
   the cost of crossing to a thread and back (what `Database.aread` saves, docs/search.md).
2. A psycopg client's CPU per statement, `SELECT 1` against `SELECT pg_sleep(0.007)`, sync and async
   (uvloop), on an embedded PostgreSQL: what the wait itself costs the client. Then the 7 ms statement
   pipelined after a set_config statement, as `Database.read` and `aread` send a search with its
   settings: what the pipeline adds to one plain statement. Last, waits of 1, 15 and 30 ms: what a longer
   wait costs the client.

Medians of the rounds; CPU is process time (user + system).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import uvloop
from _postgres import migrated_database
from _search_app import AppServer, free_port, http_load

from imagesearch.tables import format_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--statements", type=int, default=400)
    args = parser.parse_args()

    rows = []
    for concurrency in (1, 4):
        for wait in ("loop", "thread"):
            samples = server_cpu(wait, concurrency, args)
            rows.append(
                [
                    f"ASGI app, waits 6 ms {'in the event loop' if wait == 'loop' else 'on a worker thread'}",
                    str(concurrency),
                    f"{statistics.median(s[0] for s in samples):.0f}",
                    f"{statistics.median(s[1] for s in samples):.0f}",
                ]
            )
    with tempfile.TemporaryDirectory() as tmp, migrated_database(Path(tmp), "wakeups") as url:
        sleep = "SELECT pg_sleep(0.007)"
        for name, statement, piped in (
            ("SELECT 1", "SELECT 1", False),
            (sleep, sleep, False),
            (f"set_config + {sleep} pipelined", sleep, True),
        ):
            sync = [client_cpu(url, statement, args.statements, piped=piped) for _ in range(args.rounds)]
            aio = [
                uvloop.run(async_client_cpu(url, statement, args.statements, piped=piped))
                for _ in range(args.rounds)
            ]
            for kind, samples_us in (("sync", sync), ("async", aio)):
                rows.append(
                    [f"psycopg client, {name}, {kind}", "1", "-", f"{statistics.median(samples_us):.0f}"]
                )
        # One poll, one send and one recv a statement (strace), however long it waits: what grows with
        # the wait is what the machine charges for being woken from it.
        for ms in (1, 15, 30):
            statement = f"SELECT pg_sleep({ms / 1000})"
            count = max(50, args.statements * 7 // ms)
            sync = [client_cpu(url, statement, count) for _ in range(args.rounds)]
            rows.append([f"psycopg client, {statement}, sync", "1", "-", f"{statistics.median(sync):.0f}"])
    print(format_table(["what", "conc", "req/s", "CPU us per request"], rows))
    return 0


def server_cpu(wait: str, concurrency: int, args: argparse.Namespace) -> list[tuple[float, float]]:
    """(requests per second, CPU us per request) of the wait app, one sample a round."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "_wait_app:app", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log"]
    samples = []
    with AppServer(command, port, env={**os.environ, "BENCH_WAIT": wait}) as server:
        http_load(f"{server.base}/wait", [{}], concurrency=concurrency, seconds=2)  # warm
        for _ in range(args.rounds):
            with server.measure() as usage:
                result = http_load(f"{server.base}/wait", [{}], concurrency=concurrency, seconds=args.seconds)
            samples.append((result.throughput, usage.us_per_request(result.requests)))
    return samples


SETTING = "SELECT set_config('statement_timeout', '15000', true)"


def client_cpu(url: str, statement: str, count: int, *, piped: bool = False) -> float:
    """CPU us per run of `statement` (with `piped`: after SETTING, in one pipeline, as Database.read)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)
        started = time.process_time()
        for _ in range(count):
            with conn.cursor() as cur:
                if piped:
                    with conn.pipeline():
                        cur.execute(SETTING)
                        cur.execute(statement)
                else:
                    cur.execute(statement)
                cur.fetchall()
        return (time.process_time() - started) * 1e6 / count


async def async_client_cpu(url: str, statement: str, count: int, *, piped: bool = False) -> float:
    """`client_cpu` on an async connection (as Database.aread)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(statement)
        started = time.process_time()
        for _ in range(count):
            async with conn.cursor() as cur:
                if piped:
                    async with conn.pipeline():
                        await cur.execute(SETTING)
                        await cur.execute(statement)
                else:
                    await cur.execute(statement)
                await cur.fetchall()
        return (time.process_time() - started) * 1e6 / count


if __name__ == "__main__":
    sys.exit(main())
