"""A candidate strategy's ranking from another deployment: the same query POSTed to its /search."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from imagesearch.config import SearchStrategy
from imagesearch.search.plan import SearchPlan


def remote_ranking(strategy: SearchStrategy, plan: SearchPlan) -> list[UUID]:
    """The ids `strategy.endpoint` answers for `plan` (its first page)."""
    import httpx  # only shadow runs against another deployment need an HTTP client

    assert strategy.endpoint is not None
    body: dict[str, Any] = {
        "query": plan.text,
        "image_id": str(plan.query_image) if plan.query_image else None,
        "mode": plan.mode,
        "limit": plan.limit,
        "filters": plan.filters.model_dump(mode="json"),
        "min_score": plan.min_score,
    }
    headers = {"Authorization": f"Bearer {strategy.api_key}"} if strategy.api_key else {}
    response = httpx.post(strategy.endpoint, json=body, headers=headers, timeout=10)
    response.raise_for_status()
    return [UUID(result["id"]) for result in response.json()["results"]]
