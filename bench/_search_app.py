"""The search app under load, for bench/search.py and bench/search_ab.py: the server in its own processes
(bench/_search_server.py, this checkout's or another's), its warm-up, and what it costs (CPU, memory)."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx
import numpy as np
import psutil
import psycopg
from _corpus import load, make_corpus, query_texts, query_vectors
from _load import LoadResult, run_load, run_wrk, wrk_available
from _postgres import migrated_database
from pgvector.psycopg import register_vector

from imagesearch.local.postgres import LOCAL_SERVER_SETTINGS

BENCH_DIR = Path(__file__).resolve().parent
MODEL_ID = "bench-clustered-512"
QUERIES = 100


def http_load(url: str, bodies: list[dict[str, Any]], *, concurrency: int, seconds: float) -> LoadResult:
    """HTTP load from wrk when it is installed (a C client, as pgbench is), else from Python threads."""
    if wrk_available():
        return run_wrk(url, bodies, concurrency=concurrency, seconds=seconds)
    return run_load(url, bodies, concurrency=concurrency, seconds=seconds)


@dataclass
class Usage:
    cpu_seconds: float = 0.0
    rss_mb: float = 0.0  # the processes' resident sets summed: pages they share counted in each
    pss_mb: float = 0.0  # proportional set sizes summed: each shared page split between its processes

    def us_per_request(self, requests: int) -> float:
        """The CPU time per request of a load level that made `requests`, in microseconds."""
        return self.cpu_seconds * 1e6 / max(1, requests)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AppServer:
    """An app in processes of its own (uvicorn and its workers), on `port`: waited for until /health
    answers, measured (CPU and memory), stopped at the end of the block."""

    def __init__(
        self, command: list[str], port: int, *, env: dict[str, str] | None = None, cwd: Path = BENCH_DIR
    ):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        # stdout: the shadow rows print CloudWatch metrics lines there, which would bury the tables.
        self.process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, env=env)

    def __enter__(self) -> Self:
        for _ in range(300):
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code in (200, 503):
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def _processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    @contextmanager
    def measure(self) -> Iterator[Usage]:
        """CPU seconds the server's processes (uvicorn and its workers) spend inside the block, and their
        resident memory at its end: what the app costs per request, beside the latency it adds."""
        usage = Usage()

        def cpu() -> float:
            return sum(sum(p.cpu_times()[:2]) for p in self._processes())

        before = cpu()
        yield usage
        usage.cpu_seconds = cpu() - before
        memory = [p.memory_full_info() for p in self._processes()]
        usage.rss_mb = sum(m.rss for m in memory) / 2**20
        usage.pss_mb = sum(m.pss for m in memory) / 2**20

    def __exit__(self, *exc: Any) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class search_server(AppServer):  # noqa: N801 - used as a context manager
    def __init__(
        self,
        url: str,
        queries: Path,
        args: argparse.Namespace,
        text_model: Path | None = None,
        shadow: str | None = None,
        checkout: Path | None = None,
    ) -> None:
        """The search app of bench/_search_server.py; `checkout`: another checkout's app (its package and
        its bench/_search_server.py)."""
        port = free_port()
        bench_dir, env = BENCH_DIR, dict(os.environ)
        if checkout is not None:
            bench_dir = checkout / "bench"
            env["PYTHONPATH"] = str(checkout / "layers" / "shared")
        command = [
            sys.executable,
            str(bench_dir / "_search_server.py"),
            "--database-url",
            url,
            "--port",
            str(port),
            "--queries",
            str(queries),
            "--model-id",
            MODEL_ID,
            "--candidates",
            str(args.candidates),
            "--ef-search",
            str(args.ef_search),
            "--workers",
            str(args.workers),
        ]
        if text_model is not None:
            command += ["--text-model", str(text_model)]
        if shadow is not None:
            command += ["--shadow", shadow]
        super().__init__(command, port, env=env, cwd=bench_dir)


def warm(base: str, bodies: list[dict[str, Any]], *, passes: int = 6, clients: int = 4) -> None:
    """Passes over the queries from parallel clients on new connections, so that every uvicorn worker
    (each with its own query cache and lazily loaded model) has seen the queries: prepared statements,
    caches, index pages. One keep-alive client would warm one worker and leave the other cold."""

    def send(body: dict[str, Any]) -> None:
        with httpx.Client(timeout=60) as http:
            response = http.post(f"{base}/search", json=body)
        if response.status_code != 200:
            raise RuntimeError(f"warm-up search failed: {response.status_code} {response.text}")

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, bodies * passes))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def loaded_corpus(tmp: Path, size: int, name: str) -> Iterator[tuple[str, Path, list[dict[str, Any]]]]:
    """A migrated database in `tmp` holding `size` clustered images (bench/_corpus.py), the file of the
    benchmark's query texts and vectors (for bench/_search_server.py), and the request bodies."""
    corpus = make_corpus(size)
    settings = {**LOCAL_SERVER_SETTINGS, "shared_buffers": "512MB"}
    with migrated_database(tmp, name, settings) as url:
        with psycopg.connect(url) as conn:
            register_vector(conn)
            load(conn, corpus, model_id=MODEL_ID)
        texts = query_texts(corpus, QUERIES)
        queries_file = tmp / "queries.npz"
        np.savez(queries_file, texts=np.array(texts), vectors=query_vectors(corpus, QUERIES))
        yield url, queries_file, [{"query": t, "limit": 10} for t in texts]


def in_process_search(
    url: str, tmp: Path, texts: list[str], vectors: np.ndarray, *, candidates: int, ef_search: int
) -> tuple[Any, list[Any], list[Any], dict[str, str]]:
    """The search function's runtime in this process, configured as bench/_search_server.py configures the
    app (the text model a lookup of `texts`), with the hybrid plans (limit 10) of `texts`, their statements
    and the strategy's HNSW settings: (runtime, plans, queries, settings)."""
    os.environ.update(
        {
            "IMAGESEARCH_DATABASE_URL": url,
            "IMAGESEARCH_STORAGE_URL": f"file://{tmp / 'storage'}",
            "IMAGESEARCH_SEARCH_CANDIDATES": str(candidates),
            "IMAGESEARCH_SEARCH_EF_SEARCH": str(ef_search),
            "IMAGESEARCH_SHADOW_SAMPLE_RATE": "0.0",
            "IMAGESEARCH_LOG_LEVEL": "WARNING",
        }
    )
    from _lookup_model import LookupModel

    from imagesearch.auth.tenant import DEFAULT_TENANT
    from imagesearch.db.pool import hnsw_settings
    from imagesearch.runtime import configure
    from imagesearch.search.plan import plan_search

    runtime = configure(configured_model=LookupModel(MODEL_ID, texts, vectors))
    service = runtime.search
    plans = [plan_search(query=t, image_id=None, mode="hybrid", limit=10) for t in texts]
    queries = [service.query(DEFAULT_TENANT, plan, service.strategy) for plan in plans]
    return runtime, plans, queries, hnsw_settings(service.strategy.effective_ef_search)
