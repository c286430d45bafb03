"""Where the search app's CPU goes by machine code: one uvicorn worker under wrk load, sampled by `perf`.

    .venv/bin/python bench/_profile_cpu.py [--seconds 10] [--concurrency 4] [--perf /usr/bin/perf]

Same corpus, database and server as bench/search_ab.py (10,000 images, the text model bypassed, hybrid
POST /search). `perf record -e cpu-clock` samples the worker's CPU time only (a thread that waits is not
sampled, unlike py-spy's wall-clock samples in bench/_profile_search.py), kernel included, and the table
gives each shared object's share: the Python interpreter (bytecode, objects, dicts), the kernel (system
calls, sockets, wake-ups), libc, and the C extensions (pydantic-core, uvloop, psycopg's, libpq). The
shares times the CPU per request give microseconds per request. Needs `perf` (Debian's linux-perf) and
the right to sample another process (root, or kernel.perf_event_paranoid <= 1).
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from _search_app import http_load, loaded_corpus, log, search_server, warm

from imagesearch.tables import format_table

SHARE = re.compile(r"^\s*([\d.]+)%\s+(.+?)\s*$")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--perf", default="perf", help="the perf executable")
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=200)
    parser.add_argument("--frequency", type=int, default=2000, help="samples per second of CPU")
    args = parser.parse_args()
    args.workers = 1

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "perf.data"
        with loaded_corpus(tmp, args.size, "cpu") as (url, queries_file, bodies):
            with search_server(url, queries_file, args) as server:
                warm(server.base, bodies)
                command = [args.perf, "record", "-e", "cpu-clock", "-F", str(args.frequency), "-o", str(data)]
                command += ["-p", str(server.process.pid)]
                perf = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                threading.Event().wait(1.0)  # perf attached
                with server.measure() as usage:
                    result = http_load(
                        f"{server.base}/search", bodies, concurrency=args.concurrency, seconds=args.seconds
                    )
                perf.send_signal(signal.SIGINT)
                perf.wait()
        report = subprocess.run(
            [args.perf, "report", "-i", str(data), "--sort", "dso", "--stdio", "-g", "none"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    cpu_us = usage.us_per_request(result.requests)
    shares = [(m.group(2), float(m.group(1))) for m in map(SHARE.match, report.splitlines()) if m]
    log(f"{result.requests} requests, {result.throughput:.0f} req/s, {cpu_us / 1000:.2f} ms CPU per request")
    rows = [[name, f"{share:.1f}%", f"{share / 100 * cpu_us:.0f}"] for name, share in shares if share >= 0.5]
    rest = sum(share for _, share in shares if share < 0.5)
    rows.append(["everything else", f"{rest:.1f}%", f"{rest / 100 * cpu_us:.0f}"])
    rows.append(["total (CPU time per request)", "100%", f"{cpu_us:.0f}"])
    print(f"\n{args.size:,} images, concurrency {args.concurrency}, {args.seconds:g} s, one worker")
    print(format_table(["shared object", "share of CPU", "us/request"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
