"""The search path of two checkouts side by side: same corpus, same database, alternating rounds.

    git worktree add /tmp/before REV
    .venv/bin/python bench/search_ab.py --other /tmp/before [--size 10000] [--rounds 6] [--seconds 5]
        [--workers 1] [--other-workers N]
    .venv/bin/python bench/search_ab.py --reference [...]

With --reference the other app is the compiled reference (bench/reference/, Go: bench/_reference.py), on the
same statements, checked to give the app's answers first.

For a change that should cost nothing per request (a refactoring), where bench/search.py's ratios against
pgbench move by more between runs than the change could. Both apps run under uvicorn, one worker each
unless --workers says otherwise (bench/search.py runs two), as bench/search.py starts them (the other
checkout's package and its bench/_search_server.py), against one PostgreSQL with one corpus, the text model
bypassed. Each round drives hybrid POST /search with wrk through
one app, then the other (the order swapped every round, so drift of the machine hits both), at each
concurrency; the table gives the medians over rounds of throughput, latency and the app's CPU time per
request, and the other checkout's figures as ratios of this one's (1.00: the same).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from _reference import parity_line, reference_server
from _search_app import AppServer, http_load, loaded_corpus, log, search_server, warm

from imagesearch.tables import format_table

Sample = tuple[float, float, float, float]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    other = parser.add_mutually_exclusive_group(required=True)
    other.add_argument("--other", type=Path, help="another checkout of this repository")
    other.add_argument("--reference", action="store_true", help="the compiled reference (Go) instead")
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=5.0, help="per app, concurrency and round")
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of each app")
    parser.add_argument(
        "--other-workers",
        type=int,
        help="the other app's worker processes, when they differ (--other .: "
        "this checkout with another worker count)",
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with loaded_corpus(tmp, args.size, "ab") as (url, queries_file, bodies):
            samples: dict[tuple[str, int], list[Sample]] = {}
            other_args = argparse.Namespace(**{**vars(args), "workers": args.other_workers or args.workers})
            # Each server starts its processes when made: the other app is made only when it is one.
            servers: dict[str, AppServer] = {"this": search_server(url, queries_file, args)}
            if args.reference:
                servers["other"] = reference_server(url, queries_file, args, tmp)
            else:
                servers["other"] = search_server(url, queries_file, other_args, checkout=args.other.resolve())
            for server in servers.values():
                server.__enter__()
                warm(server.base, bodies)
            if args.reference:
                log(parity_line(servers["this"].base, servers["other"].base, bodies))
            try:
                for round_ in range(args.rounds):
                    order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
                    for c in levels:
                        for name in order:
                            sample = measure(servers[name], bodies, c, args.seconds)
                            samples.setdefault((name, c), []).append(sample)
                            log(f"round {round_ + 1} c={c} {name}: {sample[0]:.0f} req/s, {sample[3]:.2f} ms")
            finally:
                for server in servers.values():
                    server.__exit__(None, None, None)

    rows = []
    for c in levels:
        medians = {
            name: [statistics.median(values) for values in zip(*samples[(name, c)], strict=True)]
            for name in servers
        }
        this = medians["this"]
        for name in servers:
            tps, p50, p99, cpu = medians[name]
            rows.append(
                [
                    name,
                    str(c),
                    f"{tps:.0f}",
                    f"{p50:.2f}",
                    f"{p99:.2f}",
                    f"{cpu:.2f}",
                    f"{tps / this[0]:.2f}",
                    f"{p50 / this[1]:.2f}",
                    f"{cpu / this[3]:.2f}",
                ]
            )
    other_name = "the compiled reference (Go)" if args.reference else args.other
    print(
        f"\n{args.size:,} images, {args.rounds} rounds of {args.seconds:g} s, "
        f"{args.workers} uvicorn worker(s) per app; other = {other_name}"
        + (f" with {args.other_workers} worker(s)" if args.other_workers else "")
    )
    headers = ["app", "conc", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "req/s vs this", "p50 vs this"]
    print(format_table([*headers, "CPU vs this"], rows))
    return 0


def measure(server: AppServer, bodies: list[dict[str, Any]], c: int, seconds: float) -> Sample:
    """(req/s, p50 ms, p99 ms, CPU ms per request) of one load level."""
    with server.measure() as usage:
        result = http_load(f"{server.base}/search", bodies, concurrency=c, seconds=seconds)
    cpu_ms = usage.us_per_request(result.requests) / 1000
    return (result.throughput, result.percentile(50), result.percentile(99), cpu_ms)


if __name__ == "__main__":
    sys.exit(main())
