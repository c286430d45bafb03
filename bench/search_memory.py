"""The search server's memory, process by process, and what each of its imports costs.

    .venv/bin/python bench/search_memory.py [--size 10000] [--seconds 3]

Starts bench/_search_server.py (the text model bypassed) with one uvicorn worker, then with two, loads it
at concurrency 4 for a few seconds, and prints each process's resident set (RSS), its own pages (USS) and
its proportional set size (PSS: each shared page split between the processes that map it, so PSS sums to
the processes' real total). A second table gives the RSS that importing each of the app's larger
dependencies adds to a fresh interpreter, one interpreter per import.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _search_app import http_load, loaded_corpus, log, search_server, warm

from imagesearch.tables import format_table

IMPORTS = [
    "fastapi",
    "psycopg",
    "numpy",
    "uvloop",
    "mangum",
    "pydantic",
    "aws_lambda_powertools",
    "botocore",
    "imagesearch.http.app",
]
MEASURE_IMPORT = """
import importlib, sys
def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
before = rss()
importlib.import_module(sys.argv[1])
print(rss() - before)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, loaded_corpus(Path(tmp), args.size, "memory") as loaded:
        url, queries_file, bodies = loaded
        for workers in (1, 2):
            log(f"{workers} worker(s)")
            server_args = argparse.Namespace(candidates=200, ef_search=200, workers=workers)
            with search_server(url, queries_file, server_args) as server:
                warm(server.base, bodies)
                http_load(f"{server.base}/search", bodies, concurrency=4, seconds=args.seconds)
                for process in server._processes():
                    memory = process.memory_full_info()
                    command = " ".join(process.cmdline())
                    role = (
                        "resource tracker"
                        if "resource_tracker" in command
                        else "worker"
                        if "multiprocessing" in command or workers == 1
                        else "supervisor"
                    )
                    sizes = (memory.rss, memory.uss, memory.pss)
                    rows.append([str(workers), role] + [f"{v / 2**20:.0f}" for v in sizes])
    print(f"\n{args.size:,} images, after {args.seconds:.0f} s at concurrency 4, the text model bypassed")
    print(format_table(["workers", "process", "RSS MB", "USS MB", "PSS MB"], rows))
    imports = []
    for module in IMPORTS:
        out = subprocess.run(
            [sys.executable, "-c", MEASURE_IMPORT, module], capture_output=True, text=True, check=True
        )
        imports.append([module, f"{float(out.stdout.split()[-1]):.0f}"])
    print("\nRSS an import adds to a fresh interpreter")
    print(format_table(["module", "MB"], imports))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
