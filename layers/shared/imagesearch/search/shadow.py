"""Shadow mode: on sampled requests, run a candidate strategy beside the live one and record agreement.

Lambda freezes the container once the response is returned, so nothing may run "after" it. The candidate
therefore starts together with the live query (on a worker thread, its own connection) and the request
waits for it at most `timeout_ms` beyond the live answer; a candidate still running then is recorded as a
timeout. The comparison is written (primary database, one INSERT) and emitted as CloudWatch metrics (EMF)
before the response. Unsampled requests pay nothing; bench/search.py measures what sampled ones pay
(docs/search.md).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from imagesearch.config import SearchStrategy
from imagesearch.db import Database
from imagesearch.logs import logger

METRICS_NAMESPACE = "imagesearch"


def overlap_at_k(live: Sequence[Any], candidate: Sequence[Any], k: int) -> float:
    """|top-k(live) ∩ top-k(candidate)| / k: 1.0 when both return the same items in any order.

    When fewer than k results exist, k is the longer of the two lists (same 5 of 5 is full agreement).
    """
    top_live, top_candidate = set(live[:k]), set(candidate[:k])
    depth = max(len(top_live), len(top_candidate))
    if depth == 0:
        return 1.0
    return len(top_live & top_candidate) / depth


def rank_biased_overlap(live: Sequence[Any], candidate: Sequence[Any], p: float = 0.9) -> float:
    """Extrapolated rank-biased overlap (Webber, Moffat & Zobel 2010) of two rankings of equal depth.

    1.0 for identical rankings; the top ranks weigh most (p = 0.9: the first 10 ranks carry ~86%).
    """
    depth = min(len(live), len(candidate))
    if depth == 0:
        return 1.0 if len(live) == len(candidate) else 0.0
    seen_live: set[Any] = set()
    seen_candidate: set[Any] = set()
    overlap = 0
    total = 0.0
    for d in range(1, depth + 1):
        a, b = live[d - 1], candidate[d - 1]
        if a == b:
            overlap += 1
        else:
            overlap += (a in seen_candidate) + (b in seen_live)
        seen_live.add(a)
        seen_candidate.add(b)
        total += (overlap / d) * p**d
    return min(1.0, (overlap / depth) * p**depth + (1 - p) / p * total)


@dataclass(frozen=True)
class Comparison:
    candidate: str
    outcome: str  # ok, timeout, error
    overlap: float | None
    rbo: float | None
    live_ms: float
    candidate_ms: float | None
    error: str | None = None


CandidateRun = Callable[[], list[UUID]]


class ShadowRunner:
    """Samples requests, runs the candidate concurrently, compares, records."""

    def __init__(
        self,
        db: Database,
        candidate: SearchStrategy,
        *,
        live_name: str = "live",
        sample_rate: float,
        timeout_ms: int,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.candidate = candidate
        self.live_name = live_name
        self.sample_rate = sample_rate
        self.timeout = timeout_ms / 1000
        self._rng = rng or random.Random()
        # Two workers: a candidate that hangs past its timeout must not block the next sampled request.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shadow")

    def sampled(self) -> bool:
        return self.sample_rate > 0 and self._rng.random() < self.sample_rate

    def start(self, run: CandidateRun) -> Future[tuple[list[UUID], float]]:
        """Start the candidate now; it runs while the live query does."""

        def timed() -> tuple[list[UUID], float]:
            started = time.perf_counter()
            ids = run()
            return ids, (time.perf_counter() - started) * 1000

        return self._pool.submit(timed)

    def finish(
        self,
        future: Future[tuple[list[UUID], float]],
        *,
        live_ids: list[UUID],
        live_ms: float,
        k: int,
        tenant_id: UUID,
        mode: str,
        query_key: str,
    ) -> Comparison:
        """Wait for the candidate (bounded), compare with the live ranking, record it."""
        try:
            candidate_ids, candidate_ms = future.result(timeout=self.timeout)
            comparison = Comparison(
                candidate=self.candidate.name,
                outcome="ok",
                overlap=overlap_at_k(live_ids, candidate_ids, k),
                rbo=rank_biased_overlap(live_ids[:k], candidate_ids[:k]),
                live_ms=live_ms,
                candidate_ms=candidate_ms,
            )
        except FutureTimeout:
            comparison = Comparison(self.candidate.name, "timeout", None, None, live_ms, None)
        except Exception as e:  # the candidate's failure is data for the report, never the user's problem
            comparison = Comparison(
                self.candidate.name, "error", None, None, live_ms, None, error=repr(e)[:500]
            )
        self._record(comparison, k=k, tenant_id=tenant_id, mode=mode, query_key=query_key)
        return comparison

    def _record(self, c: Comparison, *, k: int, tenant_id: UUID, mode: str, query_key: str) -> None:
        try:
            with self.db.connection() as conn:
                conn.execute(
                    """
                    INSERT INTO shadow_comparisons (tenant_id, live_strategy, candidate_strategy, mode, k,
                                                    overlap, rbo, live_ms, candidate_ms, outcome, error,
                                                    query_hash)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                    """,
                    (
                        tenant_id,
                        self.live_name,
                        c.candidate,
                        mode,
                        k,
                        c.overlap,
                        c.rbo,
                        c.live_ms,
                        c.candidate_ms,
                        c.outcome,
                        c.error,
                        hashlib.sha256(query_key.encode("utf-8")).hexdigest()[:16],
                    ),
                )
        except Exception:  # recording is best effort: the user's search already succeeded
            logger.warning("shadow comparison not recorded", extra={"candidate": c.candidate})
        _emit_metrics(c)


def _emit_metrics(c: Comparison) -> None:
    """CloudWatch embedded-metric-format lines (Powertools), flushed at once."""
    values: list[tuple[str, MetricUnit, float]] = [("ShadowLiveLatency", MetricUnit.Milliseconds, c.live_ms)]
    if c.outcome == "ok":
        assert c.overlap is not None and c.rbo is not None and c.candidate_ms is not None
        values += [
            ("ShadowOverlapAtK", MetricUnit.Count, c.overlap),
            ("ShadowRBO", MetricUnit.Count, c.rbo),
            ("ShadowCandidateLatency", MetricUnit.Milliseconds, c.candidate_ms),
        ]
    else:
        values.append((f"Shadow{c.outcome.capitalize()}", MetricUnit.Count, 1))
    for name, unit, value in values:
        with single_metric(name=name, unit=unit, value=value, namespace=METRICS_NAMESPACE) as metric:
            metric.add_dimension(name="candidate", value=c.candidate)
