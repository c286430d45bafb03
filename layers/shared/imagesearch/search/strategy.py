"""A search strategy: the knobs a change to the search path turns (and shadow mode compares)."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagesearch.errors import InvalidRequest


class SearchStrategy(BaseModel):
    """Model, index and fusion settings of one way of answering a query."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "live"
    model_id: str | None = Field(default=None, description="None: the active model")
    candidates: Annotated[int, Field(ge=1, le=1000)] = 200
    ef_search: Annotated[int, Field(ge=1, le=1000)] = 200
    weight_vector: Annotated[float, Field(ge=0)] = 1.0
    weight_keyword: Annotated[float, Field(ge=0)] = 1.0
    rrf_k: Annotated[int, Field(ge=1, le=1000)] = 60
    endpoint: str | None = Field(default=None, description="another deployment's POST /search URL")
    api_key: str | None = Field(default=None, description="credentials for `endpoint`", repr=False)

    @property
    def effective_ef_search(self) -> int:
        # ef_search caps what the index returns: never below the candidates we ask for.
        return max(self.ef_search, self.candidates)


def parse_strategy(text: str) -> SearchStrategy:
    """A strategy from JSON, e.g. '{"name": "ef200", "ef_search": 200}'."""
    try:
        return SearchStrategy.model_validate(json.loads(text))
    except (ValueError, ValidationError) as e:
        raise InvalidRequest(f"not a search strategy: {e}") from e
