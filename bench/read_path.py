"""The search read's client-side CPU: psycopg's async cursor against the libpq path of db/wire.py.

    .venv/bin/python bench/read_path.py [--size 10000] [--reads 1000] [--rounds 5]

10,000 images as bench/search_ab.py loads them, the app's own hybrid statements (limit 10) for the
bench's queries, run one at a time in a uvloop event loop, as uvicorn runs the app. Rows:

  cursor + pipeline     psycopg's AsyncCursor: set_config and the statement in `conn.pipeline()`, rows as
                        dicts (`dict_row`): what `Database.aread` did before db/wire.py
  wire + pipeline       `wire.fetch` with the same set_config: one libpq pipeline, one write, one Sync
  cursor, statement alone / wire, statement alone
                        the same without set_config (a session whose defaults are the search's settings)
  Database.aread        the app's read: a pooled async connection, the settings it sends, `wire.fetch`

CPU is this process's time (user + system) per read, the median of the rounds; wall is the time per read.
The statement alone runs with the session's default ef_search (40, not the strategy's 200), so its wall
time is shorter: compare its CPU with the other "alone" row, not with the pipelined ones. Every row's rows
are checked equal to the cursor's first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from _search_app import in_process_search, loaded_corpus

from imagesearch.tables import format_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=1000, help="per row and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", help="a database the bench loaded before (with --queries)")
    parser.add_argument("--queries", type=Path, help="its queries (.npz: texts, vectors)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.database_url and args.queries:
            rows = measure(args.database_url, args.queries, tmp, args)
        else:
            with loaded_corpus(tmp, args.size, "reads") as (url, queries_file, _):
                rows = measure(url, queries_file, tmp, args)

    base = rows[0][1]
    table = [[name, f"{cpu:.0f}", f"{cpu / base:.2f}", f"{wall:.0f}"] for name, cpu, wall in rows]
    print(
        f"\n{args.size:,} images, hybrid statements (limit 10), one at a time; median of {args.rounds} rounds"
    )
    print(format_table(["read", "CPU us per read", "CPU vs cursor + pipeline", "wall us per read"], table))
    return 0


def measure(
    url: str, queries_file: Path, tmp: Path, args: argparse.Namespace
) -> list[tuple[str, float, float]]:
    import uvloop

    data = np.load(queries_file)
    texts = [str(t) for t in data["texts"]]
    runtime, _, queries, settings = in_process_search(
        url, tmp, texts, data["vectors"], candidates=200, ef_search=200
    )
    db = runtime.search_database
    return uvloop.run(_rows(url, db, queries, settings, args))


async def _rows(
    url: str, db: Any, queries: list[Any], settings: dict[str, str], args: argparse.Namespace
) -> Any:
    import psycopg
    from pgvector.psycopg import register_vector_async
    from psycopg.rows import dict_row

    from imagesearch.db import wire

    conn = await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None)
    await register_vector_async(conn)
    set_config = db._set_config(conn, {**settings, "statement_timeout": "15000"})

    async def cursor_pipeline(q: Any) -> Any:
        async with conn.cursor(row_factory=dict_row) as cur:
            async with conn.pipeline():
                await cur.execute(set_config)
                await cur.execute(q.sql, q.params)
            return await cur.fetchall()

    async def cursor_alone(q: Any) -> Any:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(q.sql, q.params)
            return await cur.fetchall()

    async def wire_pipeline(q: Any) -> Any:
        return await wire.fetch(conn, q.sql, q.params, set_config=set_config, dicts=True)

    async def wire_alone(q: Any) -> Any:
        return await wire.fetch(conn, q.sql, q.params, dicts=True)

    async def aread(q: Any) -> Any:
        return await db.aread(q.sql, q.params, settings=settings, dicts=True)

    reads: dict[str, Callable[[Any], Awaitable[Any]]] = {
        "cursor + pipeline": cursor_pipeline,
        "wire + pipeline": wire_pipeline,
        "cursor, statement alone": cursor_alone,
        "wire, statement alone": wire_alone,
        "Database.aread": aread,
    }
    expected = await cursor_pipeline(queries[0])
    for name in ("wire + pipeline", "Database.aread"):
        if await reads[name](queries[0]) != expected:
            raise SystemExit(f"{name}: rows differ from the cursor's")
    if await wire_alone(queries[0]) != await cursor_alone(queries[0]):
        raise SystemExit("wire, statement alone: rows differ from the cursor's")

    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in reads}
    for round_ in range(args.rounds):
        for name, read in reads.items():
            for i in range(100):  # warm-up
                await read(queries[i % len(queries)])
            cpu, wall = time.process_time(), time.perf_counter()
            for i in range(args.reads):
                await read(queries[i % len(queries)])
            samples[name].append(
                (
                    (time.process_time() - cpu) * 1e6 / args.reads,
                    (time.perf_counter() - wall) * 1e6 / args.reads,
                )
            )
        print(f"round {round_ + 1} of {args.rounds}", file=sys.stderr, flush=True)
    await conn.close()
    return [
        (name, statistics.median(s[0] for s in values), statistics.median(s[1] for s in values))
        for name, values in samples.items()
    ]


if __name__ == "__main__":
    sys.exit(main())
