"""Where the search app's CPU goes: one uvicorn worker under wrk load, sampled by py-spy.

    pip install --target /tmp/pyspy py-spy
    .venv/bin/python bench/_profile_search.py --py-spy /tmp/pyspy/bin/py-spy [--seconds 20] [--concurrency 4]

Same corpus, database and server as bench/search_ab.py (10,000 images, the text model bypassed, hybrid
POST /search). py-spy samples the worker (the thread holding the GIL, or with --all-threads every thread;
with --native C frames too) while wrk drives it; the script prints the app's CPU ms per request of that
window and the samples attributed to the request's parts (uvicorn and the event loop, routing and
validation, the tenant dependency, the thread-pool hop, psycopg, result building, serialisation), as
microseconds per request (the share of the samples times the CPU per request). --raw FILE keeps py-spy's
collapsed stacks for a closer look.

Samples are wall-clock time: on a machine whose cores are busy, a thread descheduled while it holds the
GIL (in a socket write, a futex wake-up) collects samples without using CPU, so the shares lean towards
system calls. bench/_profile_parts.py measures CPU layer by layer instead; use this one to find where
inside a layer the time goes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from _search_app import http_load, loaded_corpus, log, search_server, warm

from imagesearch.tables import format_table

# The first rule whose marker appears in a stack (innermost frames first) names its part.
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("JSON serialisation (pydantic)", ("model_dump_json", "json_response")),
    ("result building (SearchResult, URLs)", ("_result (imagesearch/search/service.py", "urls.py")),
    ("psycopg: row conversion", ("fetchall", "_load_rows", "load_rows", "dict_row", "psycopg/_rows")),
    ("psycopg: pipeline, send, wait", ("psycopg/",)),
    ("connection pool (checkout, return)", ("psycopg_pool", "imagesearch/db/pool.py")),
    ("statement building (search/sql.py, plan)", ("imagesearch/search/sql.py", "plan.py", "query_parse")),
    ("search service (other)", ("imagesearch/search/", "imagesearch/model/", "imagesearch/observability")),
    ("tenant dependency, auth", ("imagesearch/http/auth.py", "imagesearch/auth/")),
    ("body validation (pydantic)", ("validate_json", "_validate", "pydantic/")),
    ("thread-pool hop (anyio)", ("anyio/", "concurrent/futures", "threading.py", "queue.py")),
    ("FastAPI routing, dependencies", ("fastapi/",)),
    ("Starlette, middleware", ("starlette/", "imagesearch/http/")),
    ("uvicorn HTTP protocol", ("uvicorn/", "httptools")),
    ("event loop (uvloop, asyncio)", ("uvloop", "asyncio/")),
]


def part(stack: str) -> str:
    frames = stack.split(";")[::-1]  # innermost first
    for frame in frames:
        for name, markers in RULES:
            if any(marker in frame for marker in markers):
                return name
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--py-spy", required=True, help="the py-spy executable")
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=200)
    parser.add_argument("--native", action="store_true", help="C frames too (slower sampling)")
    parser.add_argument("--all-threads", action="store_true", help="every thread, not only the GIL's holder")
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    args = parser.parse_args()
    args.workers = 1

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with loaded_corpus(tmp, args.size, "profile") as (url, queries_file, bodies):
            raw = args.raw or tmp / "profile.txt"
            with search_server(url, queries_file, args) as server:
                warm(server.base, bodies)
                command = [args.py_spy, "record", "--pid", str(server.process.pid), "--format", "raw"]
                command += [
                    "--rate",
                    str(args.rate),
                    "--duration",
                    str(int(args.seconds) + 2),
                    "-o",
                    str(raw),
                ]
                if args.native:
                    command.append("--native")
                if not args.all_threads:  # the GIL's holder: the Python work (waits release the GIL)
                    command.append("--gil")
                spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                threading.Event().wait(1.0)  # py-spy attached
                with server.measure() as usage:
                    result = http_load(
                        f"{server.base}/search", bodies, concurrency=args.concurrency, seconds=args.seconds
                    )
                spy.wait()
                if spy.returncode != 0:
                    log(spy.stderr.read().decode() if spy.stderr else "py-spy failed")
                    return 1
            cpu_us = usage.us_per_request(result.requests)
            counts: Counter[str] = Counter()
            for line in raw.read_text().splitlines():
                stack, _, n = line.rpartition(" ")
                counts[part(stack)] += int(n)

    total = sum(counts.values())
    log(f"{result.requests} requests, {result.throughput:.0f} req/s, {cpu_us / 1000:.2f} ms CPU per request")
    rows = [
        [name, f"{n / total * cpu_us:.0f}", f"{n / total:.1%}", str(n)] for name, n in counts.most_common()
    ]
    rows.append(["total (CPU time per request)", f"{cpu_us:.0f}", "100%", str(total)])
    print(f"\n{args.size:,} images, concurrency {args.concurrency}, {args.seconds:g} s, one worker")
    print(format_table(["part", "us/request", "share", "samples"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
