"""Search function: the read-only search path (text, example-image and hybrid queries)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import File, Form, Query, Response, UploadFile
from mangum import Mangum

from imagesearch.errors import InvalidRequest
from imagesearch.http.app import create_app, json_response
from imagesearch.http.auth import TenantDep
from imagesearch.http.deps import SearchServiceDep, SettingsDep
from imagesearch.http.lean import lean_post
from imagesearch.http.uploads import read_upload
from imagesearch.logs import logger
from imagesearch.observability import metrics, tracer
from imagesearch.runtime import prepare_at_init
from imagesearch.search.plan import plan_search
from imagesearch.search.query_parse import understood
from imagesearch.search.recommend import recommend_plan
from imagesearch.search.schemas import (
    MAX_EXAMPLES,
    Cutoff,
    RecommendOptions,
    RecommendRequest,
    SearchFilters,
    SearchRequest,
    SearchResponse,
    effective_cutoff,
)

app = create_app("imagesearch search")


# The common case skips FastAPI's request handling (http/lean.py); its errors are FastAPI's, as before.
@lean_post(app, "/search", response_model=SearchResponse, tags=["search"])
async def search(body: SearchRequest, tenant: TenantDep, service: SearchServiceDep) -> Response:
    """Hybrid (default), vector or keyword search by text, by a stored image, or both."""
    query, filters, interpreted = understood(body.query, body.filters, parse=body.parse)
    plan = plan_search(
        query=query,
        image_id=body.image_id,
        mode=body.mode,
        limit=body.limit,
        offset=body.offset,
        filters=filters,
        min_score=body.min_score,
        explain=body.explain,
        cutoff=effective_cutoff(body.cutoff, body.sort, body.min_score),
        sort=body.sort,
        facets=body.facets,
        diversity=body.diversity,
        collapse=body.collapse == "duplicates",
    )
    response = await service.asearch(tenant, plan, cursor=body.cursor)  # the read awaited, no thread hop
    if interpreted is not None:
        response.interpreted = interpreted
    return json_response(response)


@app.post("/recommend", response_model=SearchResponse, tags=["search"])
def recommend(body: RecommendRequest, tenant: TenantDep, service: SearchServiceDep) -> Response:
    """More like the positive examples, less like the negative ones (stored images or texts)."""
    plan = recommend_plan(service, tenant, body)
    return json_response(service.search(tenant, plan, cursor=body.cursor))


@app.post("/recommend/images", response_model=SearchResponse, tags=["search"])
def recommend_by_images(
    tenant: TenantDep,
    service: SearchServiceDep,
    settings: SettingsDep,
    positive: Annotated[list[UploadFile], File(description="pictures to find more like")] = [],  # noqa: B006
    negative: Annotated[list[UploadFile], File(description="pictures to find fewer like")] = [],  # noqa: B006
    request: Annotated[
        str | None,
        Form(max_length=100_000, description="a POST /recommend body as JSON; its lists may be empty"),
    ] = None,
) -> Response:
    """Recommend with uploaded pictures as examples (embedded with the image tower, never stored), beside
    any stored-image or text examples in `request`."""
    if len(positive) + len(negative) > MAX_EXAMPLES:
        raise InvalidRequest(f"at most {MAX_EXAMPLES} examples, positive and negative together")
    try:
        body = RecommendOptions.model_validate_json(request or "{}")
    except ValueError as e:
        raise InvalidRequest(f"request: {e}") from None
    positives, negatives = (
        [service.by_image(read_upload(file, settings.max_upload_bytes)) for file in files]
        for files in (positive, negative)
    )
    plan = recommend_plan(service, tenant, body, uploaded=(positives, negatives))
    return json_response(service.search(tenant, plan, cursor=body.cursor))


@app.get(
    "/images/{image_id}/similar",
    response_model=SearchResponse,
    tags=["search"],
)
def similar(
    image_id: UUID,
    tenant: TenantDep,
    service: SearchServiceDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    cutoff: Annotated[Cutoff, Query(description='"auto": stop where the similarities drop')] = "none",
) -> Response:
    """Images like a stored one, by its stored vector (no model run)."""
    plan = plan_search(query=None, image_id=image_id, mode="vector", limit=limit, cutoff=cutoff)
    return json_response(service.search(tenant, plan, cursor=cursor))


@app.post("/search/image", response_model=SearchResponse, tags=["search"])
def search_by_image(
    tenant: TenantDep,
    service: SearchServiceDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="a picture to search with; it is not stored")],
    limit: Annotated[int, Form(ge=1, le=100)] = 20,
    min_score: Annotated[float | None, Form(ge=-1.0, le=1.0)] = None,
    tags: Annotated[list[str] | None, Form()] = None,
    cutoff: Annotated[Cutoff, Form(description='"auto": stop where the similarities drop')] = "none",
) -> Response:
    """Images similar to an uploaded picture (embedded with the image tower, never stored)."""
    data = read_upload(file, settings.max_upload_bytes)
    try:
        filters = SearchFilters(tags=tags)
    except ValueError as e:
        raise InvalidRequest(str(e)) from None
    vector = service.by_image(data)
    plan = plan_search(
        query=None,
        image_id=None,
        mode="vector",
        limit=limit,
        filters=filters,
        min_score=min_score,
        query_vector=vector,
        cutoff=cutoff,
    )
    return json_response(service.search(tenant, plan))


_asgi = Mangum(app, lifespan="off")
# Lambda's init phase (snapshotted under SnapStart): with IMAGESEARCH_WARM_MODEL_AT_INIT the text tower is
# loaded and run here, not on the first request. No database connection is opened.
prepare_at_init()


@tracer.capture_lambda_handler
@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _asgi(event, context)
