"""What onnxruntime's spinning intra-op threads cost a server that embeds one query at a time.

    .venv/bin/python bench/ort_spinning.py --bundle DIR [--rounds 2] [--queries 300]

DIR: a bundle with an int8 text tower (`bench/embedding.py --keep DIR` exports ViT-B-32 with random
weights). Each case runs in a fresh process of its own (process CPU time counts every thread of the
process, so two sessions in one process would bill each other's spinning), on short queries of the
query's own tokens, with 5 ms idle between queries as a server has between requests. Prints p50 latency
and CPU time per query for spinning on (onnxruntime's default) and off, with 1 and 2 intra-op threads, and
each against spinning on with the same threads; rounds alternate the cases.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from imagesearch.tables import format_table

QUERIES = [
    "cat",
    "red car",
    "a dog on the beach",
    "sunset over the harbour in lisbon",
    "two children playing football in a park",
]
CASES = [(True, 2), (False, 2), (True, 1), (False, 1)]
IDLE_SECONDS = 0.005


def worker(bundle: Path, spin: bool, threads: int, count: int) -> dict[str, float]:
    from imagesearch.model.embedder import Embedder

    embedder = Embedder(bundle, variant="int8", threads=threads, spinning=spin)
    embedder.warm_up("text")
    for query in QUERIES:
        embedder.embed_texts([query])
    wall: list[float] = []
    cpu_started = time.process_time()
    while len(wall) < count:
        for query in QUERIES:
            started = time.perf_counter()
            embedder.embed_texts([query])
            wall.append(time.perf_counter() - started)
            time.sleep(IDLE_SECONDS)
    cpu = time.process_time() - cpu_started
    return {"p50_ms": statistics.median(wall) * 1000, "cpu_ms": cpu / len(wall) * 1000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spin, threads = args.worker[0] == "on", int(args.worker[1])
        print(json.dumps(worker(args.bundle, spin, threads, args.queries)))
        return 0
    results: dict[tuple[bool, int], list[dict[str, float]]] = {case: [] for case in CASES}
    for _ in range(args.rounds):
        for spin, threads in CASES:
            command = [sys.executable, __file__, "--bundle", str(args.bundle), "--queries", str(args.queries)]
            command += ["--worker", "on" if spin else "off", str(threads)]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            results[(spin, threads)].append(json.loads(out.strip().splitlines()[-1]))
    rows = []
    for spin, threads in CASES:
        p50 = statistics.median(r["p50_ms"] for r in results[(spin, threads)])
        cpu = statistics.median(r["cpu_ms"] for r in results[(spin, threads)])
        base = results[(True, threads)]
        base_p50 = statistics.median(r["p50_ms"] for r in base)
        base_cpu = statistics.median(r["cpu_ms"] for r in base)
        rows.append(
            [
                "on" if spin else "off",
                str(threads),
                f"{p50:.2f}",
                f"{cpu:.2f}",
                f"{p50 / base_p50:.2f}",
                f"{cpu / base_cpu:.2f}",
            ]
        )
    print(f"\nint8 text tower, one query at a time, {args.queries} queries per case, {args.rounds} rounds")
    print(format_table(["spinning", "threads", "p50 ms", "CPU ms/query", "p50 vs on", "CPU vs on"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
