"""`imagesearch shadow report`: agreement and latency of each candidate strategy."""

from __future__ import annotations

from dataclasses import dataclass

from imagesearch.db import Database
from imagesearch.tables import format_table

REPORT_SQL = """
    SELECT candidate_strategy,
           count(*) AS comparisons,
           count(*) FILTER (WHERE outcome = 'ok') AS ok,
           count(*) FILTER (WHERE outcome = 'timeout') AS timeouts,
           count(*) FILTER (WHERE outcome = 'error') AS errors,
           avg(overlap) AS overlap,
           avg(rbo) AS rbo,
           min(overlap) AS worst_overlap,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY live_ms) AS live_p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY live_ms) AS live_p95,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY candidate_ms) AS candidate_p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY candidate_ms) AS candidate_p95
    FROM shadow_comparisons
    WHERE created_at >= now() - make_interval(hours => %s)
    GROUP BY candidate_strategy
    ORDER BY candidate_strategy
"""


@dataclass(frozen=True)
class StrategyReport:
    candidate: str
    comparisons: int
    ok: int
    timeouts: int
    errors: int
    overlap: float | None
    rbo: float | None
    worst_overlap: float | None
    live_p50: float | None
    live_p95: float | None
    candidate_p50: float | None
    candidate_p95: float | None


def shadow_report(db: Database, *, since_hours: float = 24 * 7) -> list[StrategyReport]:
    with db.connection() as conn:
        rows = conn.execute(REPORT_SQL, (since_hours,)).fetchall()
    return [StrategyReport(*row) for row in rows]


def render(reports: list[StrategyReport]) -> str:
    def num(value: float | None, digits: int = 3) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    headers = [
        "candidate",
        "n",
        "ok",
        "timeout",
        "error",
        "overlap@k",
        "RBO",
        "worst",
        "live p50/p95 ms",
        "cand p50/p95 ms",
    ]
    rows = [
        [
            r.candidate,
            str(r.comparisons),
            str(r.ok),
            str(r.timeouts),
            str(r.errors),
            num(r.overlap),
            num(r.rbo),
            num(r.worst_overlap),
            f"{num(r.live_p50, 1)}/{num(r.live_p95, 1)}",
            f"{num(r.candidate_p50, 1)}/{num(r.candidate_p95, 1)}",
        ]
        for r in reports
    ]
    return format_table(headers, rows)
