"""A canned search response: what the HTTP- and metrics-overhead benches return instead of searching."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from imagesearch.search.schemas import SearchResponse, SearchResult


def canned_response(*, signed: bool = True) -> SearchResponse:
    """A page of 10 results as the search function answers it (URLs with a presigned signature, or not)."""
    signatures = (f"?X-Amz-Signature={'ab' * 32}", f"?X-Amz-Signature={'cd' * 32}") if signed else ("", "")
    return SearchResponse(
        results=[
            SearchResult(
                id=uuid.uuid4(),
                score=0.5 - i / 100,
                title=f"picture {i}",
                filename=f"IMG_{i:04d}.jpg",
                tags=["sea", "evening"],
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
                url=f"https://bucket.example/originals/{i}{signatures[0]}",
                thumbnail_url=f"https://bucket.example/thumbnails/{i}{signatures[1]}",
            )
            for i in range(10)
        ],
        next_cursor="WyIweDEuMDAwMDAwMDAwMDAwMHAtMSIsICJhYmMiXQ" if signed else None,
        took_ms=4.2,
        model="bench-model",
        mode="hybrid",
    )
