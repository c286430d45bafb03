"""What the compiled reference (bench/reference/, Go) needs to run the app's own statements: for each of the
bench's query texts, the statement exactly as the app sends it (psycopg's conversion: $n placeholders, the
parameters' bytes, types and formats), the query vector (the reference encodes it per request, as the app
does), and the page's cursor fingerprint; with the settings statement that travels with every search, the
model id and the URL signing the app uses.

    .venv/bin/python bench/_reference_queries.py --database-url URL --queries FILE.npz --out FILE.json

bench/_reference.py runs it in a process of its own before it starts the reference.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from _reference import SIGNING_SECRET
from _search_app import in_process_search
from pgvector.psycopg import register_vector
from psycopg._queries import PostgresQuery
from psycopg.adapt import Transformer

from imagesearch.db.pool import _SESSION_VALUES, QUERY_SETTINGS


def write_reference_queries(
    url: str, queries_file: Path, out: Path, *, candidates: int, ef_search: int, signing_secret: str
) -> None:
    data = np.load(queries_file)
    texts, vectors = list(data["texts"]), data["vectors"]
    with tempfile.TemporaryDirectory() as tmp:
        runtime, plans, queries, settings = in_process_search(
            url, Path(tmp), texts, vectors, candidates=candidates, ef_search=ef_search
        )
        db = runtime.search.db
        record = runtime.search.model_for(runtime.search.strategy)
        with psycopg.connect(url, autocommit=True) as conn:
            register_vector(conn)
            # What a new connection of the app's pool sends with each search: the settings it lacks.
            db._remember_session(conn, conn.execute(_SESSION_VALUES, QUERY_SETTINGS).fetchone())
            set_config = db._set_config(conn, db._changed(conn, settings)).decode("utf-8")
            entries: dict[str, Any] = {}
            for text, plan, query, vector in zip(texts, plans, queries, vectors, strict=True):
                pgq = PostgresQuery(Transformer.from_context(conn))
                pgq.convert(query.sql, query.params)
                params = list(pgq.params or [])
                vector_bytes = _vector_bytes(vector)
                vector_param = [i for i, p in enumerate(params) if p == vector_bytes]
                if len(vector_param) != 1:
                    raise RuntimeError(f"the query vector is not one parameter of {text!r}'s statement")
                entries[text] = {
                    "sql": pgq.query.decode("utf-8"),
                    "params": [None if p is None else base64.b64encode(p).decode("ascii") for p in params],
                    "types": list(pgq.types),
                    "formats": [int(f) for f in pgq.formats or []],
                    "vector_param": vector_param[0],
                    "vector": [float(x) for x in np.asarray(vector, dtype=np.float32)],
                    "fingerprint": plan.fingerprint(record.id),
                    "limit": plan.limit,
                }
        runtime.close()
    out.write_text(
        json.dumps(
            {
                "set_config": set_config,
                "model": record.id,
                "mode": "hybrid",
                "signing_secret": signing_secret,
                "public_base_url": runtime.settings.public_base_url.rstrip("/"),
                "url_expiry_seconds": runtime.settings.presign_expiry_seconds,
                "queries": entries,
            }
        )
    )


def _vector_bytes(vector: np.ndarray) -> bytes:
    """pgvector's binary format of `vector`: dimensions, a reserved zero, big-endian float32s."""
    values = np.asarray(vector, dtype=">f4")
    return len(values).to_bytes(2, "big") + b"\0\0" + values.tobytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=200)
    parser.add_argument("--signing-secret", default=SIGNING_SECRET)
    args = parser.parse_args()
    write_reference_queries(
        args.database_url,
        args.queries,
        args.out,
        candidates=args.candidates,
        ef_search=args.ef_search,
        signing_secret=args.signing_secret,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
