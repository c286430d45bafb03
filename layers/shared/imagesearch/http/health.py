"""GET /health: shallow for anonymous callers (the process answers); deep for known ones (the database
answers, which model answers).

Anonymous probes (a load balancer, an uptime check) never touch the database, the secret or object
storage, so they can neither load nor be slowed by them. A caller with a valid API key or token, or any
caller when auth is off, gets the deep check. docs/edge-auth.md.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from imagesearch.errors import ServiceUnavailable
from imagesearch.http.auth import is_authenticated
from imagesearch.runtime import get_runtime

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unavailable", "unchecked"]
    model: str | None
    check: Literal["shallow", "deep"] = Field(
        default="deep", description="shallow: only the process was checked (send a key for the deep check)"
    )


SHALLOW = Health(status="ok", database="unchecked", model=None, check="shallow")


def _model_id() -> str | None:
    try:
        return get_runtime().configured_model.model_id
    except ServiceUnavailable:
        return None


def _deep() -> Health:
    try:
        get_runtime().database.ping()
        database: Literal["ok", "unavailable"] = "ok"
    except ServiceUnavailable:
        database = "unavailable"
    model = _model_id()
    status: Literal["ok", "unavailable"] = "ok" if database == "ok" and model else "unavailable"
    return Health(status=status, database=database, model=model, check="deep")


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "the database or the model is unavailable"}},
)
async def health(request: Request) -> Health | JSONResponse:
    """Liveness for anyone; readiness (database, model bundle) too for a caller with a valid key or token."""
    try:
        known = await is_authenticated(request)
    except ServiceUnavailable:
        known = True  # the credentials cannot be checked now: the deep check says what is down
    if not known:
        return SHALLOW
    result = await run_in_threadpool(_deep)
    if result.status != "ok":
        # The health shape, not a problem document: a prober wants to see which part is down.
        return JSONResponse(result.model_dump(), status_code=503)
    return result
