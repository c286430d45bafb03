"""GET /health: is the database reachable, which model answers."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from imagesearch.errors import ServiceUnavailable
from imagesearch.http.deps import DbDep
from imagesearch.runtime import get_runtime

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unavailable"]
    model: str | None


def _model_id() -> str | None:
    try:
        return get_runtime().configured_model.model_id
    except ServiceUnavailable:
        return None


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "the database or the model is unavailable"}},
)
def health(db: DbDep) -> Health | JSONResponse:
    """Liveness and readiness in one: 200 when the database answers and the model bundle is readable."""
    try:
        db.ping()
        database: Literal["ok", "unavailable"] = "ok"
    except ServiceUnavailable:
        database = "unavailable"
    model = _model_id()
    result = Health(
        status="ok" if database == "ok" and model else "unavailable", database=database, model=model
    )
    if result.status != "ok":
        # The health shape, not a problem document: a prober wants to see which part is down.
        return JSONResponse(result.model_dump(), status_code=503)
    return result
