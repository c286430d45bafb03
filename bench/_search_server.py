"""The search app under uvicorn for bench/search.py, in its own processes (as a deployment would run it).

--queries FILE.npz holds the benchmark's query texts and vectors: the text model is bypassed with a
lookup (or, with --text-model DIR, a real bundle answers through the query cache). --workers N runs N
uvicorn worker processes (the settings travel to them in the environment).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from imagesearch.http.protocol import HttpProtocol

if TYPE_CHECKING:
    from fastapi import FastAPI


def create() -> FastAPI:
    """The app of one worker: settings from the environment, the query model from the bench's files.
    (Imported here: with --workers N, uvicorn's supervising process runs this module and serves nothing,
    and a deployment has no such process, so it should not carry the app's modules in its memory.)"""
    import numpy as np
    from _lookup_model import AliasModel, LookupModel

    from imagesearch.local.server import local_app
    from imagesearch.model.embedder import Embedder, EmbeddingModel
    from imagesearch.runtime import configure

    model: EmbeddingModel
    if os.environ.get("BENCH_TEXT_MODEL"):
        model = AliasModel(Embedder(os.environ["BENCH_TEXT_MODEL"]), os.environ["BENCH_MODEL_ID"])
    else:
        data = np.load(os.environ["BENCH_QUERIES"])
        model = LookupModel(os.environ["BENCH_MODEL_ID"], list(data["texts"]), data["vectors"])
    configure(configured_model=model)  # the settings from the environment
    return local_app()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--model-id", required=True)
    parser.add_argument("--text-model", type=Path)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--shadow", help="a candidate strategy (JSON) compared on every request")
    args = parser.parse_args()

    os.environ.update(
        {
            "IMAGESEARCH_DATABASE_URL": args.database_url,
            "IMAGESEARCH_STORAGE_URL": f"file://{tempfile.mkdtemp()}",
            # One secret for every worker, as in a deployment; bench/_reference.py signs with it too.
            "IMAGESEARCH_SIGNING_SECRET": "bench-signing-secret",
            "IMAGESEARCH_DB_POOL_MAX": "16",
            "IMAGESEARCH_SEARCH_CANDIDATES": str(args.candidates),
            "IMAGESEARCH_SEARCH_EF_SEARCH": str(args.ef_search),
            "IMAGESEARCH_SHADOW_SAMPLE_RATE": "1.0" if args.shadow else "0.0",
            "IMAGESEARCH_LOG_LEVEL": "WARNING",
            "BENCH_QUERIES": str(args.queries),
            "BENCH_MODEL_ID": args.model_id,
            "BENCH_TEXT_MODEL": str(args.text_model or ""),
        }
    )
    if args.shadow:
        os.environ["IMAGESEARCH_SHADOW_STRATEGY"] = args.shadow
    uvicorn.run(
        "_search_server:create",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        http=HttpProtocol,  # as `imagesearch serve` runs it
    )


if __name__ == "__main__":
    main()
