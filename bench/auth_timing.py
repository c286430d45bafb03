"""API key verification time by how much of the key matches: it should not depend on it.

    .venv/bin/python bench/auth_timing.py [--rounds 2000]

Verifies, against an embedded PostgreSQL, a valid key and wrong keys that share nothing, the prefix only,
or all but the last character with it; prints median and p95 microseconds and the ratio to the
all-wrong case. The database lookup (by prefix) dominates and is the same for all; the comparison of
SHA-256 digests is constant-time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _postgres import migrated_database

from imagesearch.auth.api_keys import ApiKeys
from imagesearch.db import Database
from imagesearch.errors import Unauthorized
from imagesearch.local.postgres import EPHEMERAL_SERVER_SETTINGS
from imagesearch.tables import format_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        migrated_database(Path(tmp), "auth", EPHEMERAL_SERVER_SETTINGS) as url,
    ):
        db = Database(url, max_size=1)
        keys = ApiKeys(db, touch_seconds=3600)
        key, record = keys.create("bench")
        secret_at = len("isk_") + len(record.prefix) + 1
        cases = {
            "valid key": key,
            "nothing matches": "isk_" + "0" * 12 + "_" + "A" * (len(key) - secret_at),
            "prefix only": key[:secret_at] + "A" * (len(key) - secret_at),
            "all but the last": key[:-1] + ("A" if key[-1] != "A" else "B"),
        }
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):  # interleaved, so drift hits every case alike
            for name, candidate in cases.items():
                started = time.perf_counter()
                try:
                    keys.verify(candidate)
                except Unauthorized:
                    pass
                samples[name].append((time.perf_counter() - started) * 1e6)
        db.close()
    base = float(np.median(samples["nothing matches"]))
    rows = [
        [name, f"{np.median(v):.0f}", f"{np.percentile(v, 95):.0f}", f"{np.median(v) / base:.2f}"]
        for name, v in samples.items()
    ]
    print(format_table(["key presented", "median us", "p95 us", "median vs nothing matches"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
