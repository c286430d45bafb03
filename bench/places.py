"""Place names offline (imagesearch.enrichment.places): cold load, lookup time and memory, against the
reverse_geocode package's own lookup (scipy's k-d tree) in the same run.

    .venv/bin/python bench/places.py [--points 2000] [--runs 3]

Cold load: a fresh subprocess per run, numpy already imported, imports the module and loads the gazetteer
(ours: the package's JSON into numpy arrays and two string blobs; the package's: the same JSON into dicts
and a cKDTree). Median of `--runs`: seconds, the RSS it added (after, less before) and the process's peak
RSS less before. Lookup: one call per point, in this process, on `--points` points: half within ~20 km
of random gazetteer places (where photos are taken), half uniform on the sphere (mostly sea); median and
p95 microseconds. On the near-place half it also counts how often our rule (a big city's reach before a
suburb's nearer point) names another town than the nearest point does, and another country.

Without scipy the baseline is a pure-Python haversine loop over every place, on 20 points only.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from importlib.util import find_spec
from typing import Any

import numpy as np

from imagesearch.enrichment.places import EARTH_RADIUS_KM, Gazetteer, gazetteer

WORKERS = ("ours", "reverse_geocode")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def cold_load(worker: str) -> dict[str, float]:
    """In this (fresh) process: load one gazetteer, and what it cost."""
    before = rss_mb()
    started = time.perf_counter()
    if worker == "ours":
        from imagesearch.enrichment import places

        places.gazetteer()
    else:
        import reverse_geocode

        reverse_geocode.GeocodeData()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    return {"seconds": seconds, "added_mb": rss_mb() - before, "peak_mb": peak - before}


def cold_runs(worker: str, runs: int) -> dict[str, float]:
    results = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, __file__, "--worker", worker], capture_output=True, text=True, check=True
        )
        results.append(json.loads(done.stdout))
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def sample_points(n: int, seed: int = 7) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(near places, uniform on the sphere): n // 2 each."""
    rng = np.random.default_rng(seed)
    directory = gazetteer()
    units = directory._units  # the places' unit vectors
    picks = units[rng.integers(0, len(units), n // 2)]
    jitter = rng.normal(0, 20 / EARTH_RADIUS_KM / math.sqrt(3), picks.shape)
    near = [to_lat_lon(v / np.linalg.norm(v)) for v in picks + jitter]
    uniform = rng.normal(size=(n - n // 2, 3))
    anywhere = [to_lat_lon(v / np.linalg.norm(v)) for v in uniform]
    return near, anywhere


def to_lat_lon(unit: np.ndarray) -> tuple[float, float]:
    x, y, z = (float(c) for c in unit)
    return math.degrees(math.asin(max(-1.0, min(1.0, z)))), math.degrees(math.atan2(y, x))


def timed(lookup: Any, points: list[tuple[float, float]]) -> tuple[list[Any], list[float]]:
    answers, micros = [], []
    for lat, lon in points:
        started = time.perf_counter()
        answers.append(lookup(lat, lon))
        micros.append((time.perf_counter() - started) * 1e6)
    return answers, micros


def python_nearest(directory: Gazetteer) -> Any:
    """The baseline without scipy: every place's haversine distance in a Python loop."""
    lat = np.degrees(np.arcsin(directory._units[:, 2])).tolist()
    lon = np.degrees(np.arctan2(directory._units[:, 1], directory._units[:, 0])).tolist()

    def nearest(qlat: float, qlon: float) -> dict[str, str]:
        best, best_d = 0, math.inf
        p1, cos1 = math.radians(qlat), math.cos(math.radians(qlat))
        for i, (plat, plon) in enumerate(zip(lat, lon, strict=True)):
            p2 = math.radians(plat)
            a = (
                math.sin((p2 - p1) / 2) ** 2
                + cos1 * math.cos(p2) * math.sin(math.radians(plon - qlon) / 2) ** 2
            )
            if a < best_d:
                best, best_d = i, a
        return {"city": directory._cities[best], "country_code": directory._codes[best].decode()}

    return nearest


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(cold_load(args.worker)))
        return 0

    has_scipy = find_spec("scipy") is not None
    near, anywhere = sample_points(args.points)
    ours = gazetteer()
    rows: list[list[str]] = []
    cold = cold_runs("ours", args.runs)
    times: dict[str, list[float]] = {}
    our_near, times["near"] = timed(ours.lookup, near)
    _, times["anywhere"] = timed(ours.lookup, anywhere)
    rows.append(row("ours: numpy, latitude band, reach rule", cold, times))

    if has_scipy:
        import reverse_geocode

        base_cold = cold_runs("reverse_geocode", args.runs)
        base_times: dict[str, list[float]] = {}
        baseline, base_times["near"] = timed(lambda lat, lon: reverse_geocode.get((lat, lon)), near)
        _, base_times["anywhere"] = timed(lambda lat, lon: reverse_geocode.get((lat, lon)), anywhere)
        rows.append(row("reverse_geocode: scipy cKDTree, nearest", base_cold, base_times))
    else:
        few = near[:20]
        baseline, python_times = timed(python_nearest(ours), few)
        our_near = our_near[:20]
        rows.append(row("python loop, nearest (20 points)", None, {"near": python_times}))

    print(f"{args.points} points, cold load median of {args.runs} fresh processes\n")
    print("| lookup | cold load s | RSS added MB | peak MB | near a place µs (p95) | anywhere µs (p95) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    towns = sum(1 for mine in our_near if mine is not None and mine.city is not None)
    other_town = sum(
        1
        for mine, theirs in zip(our_near, baseline, strict=True)
        if mine is not None and mine.city is not None and mine.city != theirs["city"]
    )
    other_country = sum(
        1
        for mine, theirs in zip(our_near, baseline, strict=True)
        if mine is not None and mine.country_code != theirs["country_code"]
    )
    print(
        f"\nNear a place: {towns} of {len(our_near)} named a town; the reach rule named another town than "
        f"the nearest point for {other_town}, another country for {other_country}."
    )
    return 0


def row(name: str, cold: dict[str, float] | None, times: dict[str, list[float]]) -> list[str]:
    def micros(key: str) -> str:
        values = times.get(key)
        if not values:
            return "-"
        return f"{statistics.median(values):.0f} ({percentile(values, 95):.0f})"

    if cold is None:
        return [name, "-", "-", "-", micros("near"), micros("anywhere")]
    return [
        name,
        f"{cold['seconds']:.2f}",
        f"{cold['added_mb']:.0f}",
        f"{cold['peak_mb']:.0f}",
        micros("near"),
        micros("anywhere"),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
