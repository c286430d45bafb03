"""The search app under uvicorn for bench/search.py, in its own process (as a deployment would run it).

--queries FILE.npz holds the benchmark's query texts and vectors: the text model is bypassed with a
lookup (or, with --text-model DIR, a real bundle answers through the query cache).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import uvicorn
from _lookup_model import LookupModel

from imagesearch.config import load_settings, use_settings
from imagesearch.local.server import local_app
from imagesearch.model.embedder import Embedder, EmbeddingModel, use_embedder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--model-id", required=True)
    parser.add_argument("--text-model", type=Path)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=200)
    parser.add_argument("--shadow", help="a candidate strategy (JSON) compared on every request")
    args = parser.parse_args()

    settings = load_settings(
        database_url=args.database_url,
        storage_url=f"file://{tempfile.mkdtemp()}",
        db_pool_max=16,
        search_candidates=args.candidates,
        search_ef_search=args.ef_search,
        shadow_strategy=args.shadow,
        shadow_sample_rate=1.0 if args.shadow else 0.0,
        log_level="WARNING",
    )
    use_settings(settings)
    data = np.load(args.queries)
    model: EmbeddingModel
    if args.text_model:
        model = Embedder(args.text_model)
    else:
        model = LookupModel(args.model_id, list(data["texts"]), data["vectors"])
    use_embedder(model)
    uvicorn.run(local_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
