"""What the revocation epoch costs a request, against the plain 30 s key cache, measured in one run.

    .venv/bin/python bench/revocation.py [--rounds 3000] [--check-seconds 2]

A cached API key costs an in-memory check per request. With the epoch (IMAGESEARCH_API_KEY_REVOCATION_CHECK_
SECONDS), one request per process per interval also reads the epoch (one single-row query), and a revoked key
is refused everywhere within the interval instead of within the 30 s key cache. Measured against an embedded
PostgreSQL on loopback: the in-memory check with and without the epoch, the epoch read, and the key lookup
the plain cache does every 30 s; then the cost per request at several request rates per process, amortized
(cost of the periodic read / requests in its interval). On Lambda a container serves one request at a time,
so its rate is what one container sees, not the stage's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _postgres import migrated_database

from imagesearch.auth.api_keys import ApiKeys
from imagesearch.db import Database
from imagesearch.local.postgres import EPHEMERAL_SERVER_SETTINGS
from imagesearch.tables import format_table

KEY_CACHE_SECONDS = 30.0


def median_us(samples: list[float]) -> float:
    return float(np.median(samples)) * 1e6


def timed(rounds: int, call: Callable[[], object]) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        out.append(time.perf_counter() - started)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--check-seconds", type=float, default=2.0)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        migrated_database(Path(tmp), "revocation", EPHEMERAL_SERVER_SETTINGS) as url,
    ):
        db = Database(url, max_size=1)
        key, _ = ApiKeys(db).create("bench")
        plain = ApiKeys(db, touch_seconds=3600, cache_seconds=KEY_CACHE_SECONDS)
        epoch = ApiKeys(
            db,
            touch_seconds=3600,
            cache_seconds=KEY_CACHE_SECONDS,
            revocation_check_seconds=args.check_seconds,
        )
        plain.verify(key)
        epoch.verify(key)

        def due_epoch_read() -> None:
            epoch._epoch_read_at = float("-inf")  # what the clock does every interval
            epoch.verify(key)

        def plain_key_lookup() -> None:
            plain._verified.clear()  # what the clock does every 30 s
            plain.verify(key)

        memory_plain, memory_epoch, epoch_read, key_lookup = [], [], [], []
        for _ in range(args.rounds // 100):  # interleaved blocks, so drift hits every case alike
            memory_plain += timed(100, lambda: plain.cached(key))
            memory_epoch += timed(100, lambda: epoch.cached(key))
            epoch_read += timed(10, due_epoch_read)
            key_lookup += timed(10, plain_key_lookup)
        db.close()

    parts = [
        ["cached key, in memory (plain cache)", f"{median_us(memory_plain):.2f}"],
        ["cached key, in memory (with the epoch)", f"{median_us(memory_epoch):.2f}"],
        ["epoch read (one per process per interval)", f"{median_us(epoch_read):.0f}"],
        ["key lookup (plain cache, one per key per 30 s)", f"{median_us(key_lookup):.0f}"],
    ]
    print(f"components, median microseconds ({args.rounds} rounds):")
    print(format_table(["step", "us"], parts))

    rows = []
    for rate in (0.5, 1, 10, 100, 1000):
        plain_cost = median_us(memory_plain) + median_us(key_lookup) / max(1.0, rate * KEY_CACHE_SECONDS)
        epoch_cost = (
            median_us(memory_epoch)
            + median_us(epoch_read) / max(1.0, rate * args.check_seconds)
            + median_us(key_lookup) / max(1.0, rate * KEY_CACHE_SECONDS)
        )
        rows.append(
            [
                f"{rate:g}",
                f"{plain_cost:.1f}",
                f"{epoch_cost:.1f}",
                f"{epoch_cost - plain_cost:.1f}",
                f"{epoch_cost / plain_cost:.2f}",
            ]
        )
    window = f"key cache {KEY_CACHE_SECONDS:g} s, epoch every {args.check_seconds:g} s"
    print(f"\nauth cost per request, amortized ({window}):")
    print(
        format_table(["requests/s per process", "plain cache us", "with epoch us", "added us", "ratio"], rows)
    )
    print(f"revocation window: plain cache {KEY_CACHE_SECONDS:g} s; with the epoch {args.check_seconds:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
