"""A connection storm through PgBouncer (transaction pooling, the local RDS Proxy) against the same storm
straight to PostgreSQL, both against a server that allows few connections, in one run.

    .venv/bin/python bench/proxy_storm.py [--clients 300] [--max-connections 40] [--pool 30]

Each client is a Lambda-like container: a runtime of its own with a one-connection pool, which creates
its tenant, uploads an image, embeds it (what the embed function does on its event), searches for it and
reads it back (tests/support/storm.py; tests/reliability/test_proxy.py asserts the same storm loses
nothing). The table: errors, images lost (uploaded but not ready and found), wall time, the server's
peak client connections, per-step latency percentiles, and this process's CPU per client.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.storm import StormResult, run_storm  # noqa: E402 - the tests' storm

from imagesearch.config import DEMO_MODEL_DIR  # noqa: E402
from imagesearch.db import migrate  # noqa: E402
from imagesearch.local.pgbouncer import PgBouncer  # noqa: E402
from imagesearch.local.postgres import EPHEMERAL_SERVER_SETTINGS, EmbeddedPostgres  # noqa: E402
from imagesearch.model.embedder import Embedder  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def row(name: str, result: StormResult, cpu: float) -> str:
    lost = result.uploaded - min(result.ready, result.found)
    steps = " | ".join(
        f"{percentile(times, 0.5):.0f} / {percentile(times, 0.99):.0f}"
        for times in (result.latencies.get(step, []) for step in ("connect", "upload", "embed", "search"))
    )
    return (
        f"| {name} | {result.clients} | {len(result.errors)} | {lost} | {result.uploaded} "
        f"| {result.seconds:.1f} | {result.peak_server_connections} | {steps} "
        f"| {cpu / result.clients * 1000:.0f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--max-connections", type=int, default=40, help="the server's max_connections")
    parser.add_argument("--pool", type=int, default=30, help="PgBouncer's server connections")
    args = parser.parse_args()
    model = Embedder(DEMO_MODEL_DIR, threads=1)
    model.embed_texts(["warm"])
    with tempfile.TemporaryDirectory(prefix="storm-") as tmp_name:
        tmp = Path(tmp_name)
        server = EmbeddedPostgres(
            tmp / "pg",
            server_settings={**EPHEMERAL_SERVER_SETTINGS, "max_connections": str(args.max_connections)},
        )
        server.start()
        try:
            with PgBouncer(
                server.url("postgres"), pool_size=args.pool, max_db_connections=args.pool
            ) as proxy:
                rows = []
                for name, through_proxy in (
                    ("direct (baseline)", False),
                    ("PgBouncer, transaction mode", True),
                ):
                    database = f"storm_{'proxy' if through_proxy else 'direct'}"
                    direct = server.ensure_database(database)
                    migrate.upgrade(direct)
                    url = proxy.url(database) if through_proxy else direct
                    print(f"{name}: {args.clients} clients ...", file=sys.stderr, flush=True)
                    before = cpu_seconds()
                    result = run_storm(
                        url,
                        clients=args.clients,
                        direct_url=direct,
                        model=model,
                        storage_dir=tmp / f"objects-{database}",
                        settings={"db_connect_timeout": 5.0},
                    )
                    rows.append(row(name, result, cpu_seconds() - before))
                    if result.errors:
                        kinds = statistics.multimode(e.split(": ", 1)[-1][:80] for e in result.errors)
                        print(f"  most common error: {kinds[0]}", file=sys.stderr)
                    time.sleep(1)  # let the refused backends go
        finally:
            server.stop()
    print(
        f"\nserver max_connections={args.max_connections}, PgBouncer pool={args.pool}, demo model, "
        "one onnxruntime thread, this process's CPU\n"
    )
    print(
        "| path | clients | errors | lost | uploaded | seconds | peak server connections "
        "| connect p50 / p99 ms | upload p50 / p99 ms | embed p50 / p99 ms | search p50 / p99 ms "
        "| CPU ms per client |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for line in rows:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
