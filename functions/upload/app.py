"""Upload function: the images API behind the HTTP API (multipart and presigned uploads, CRUD)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import File, Form, Query, Request, Response, UploadFile, status
from mangum import Mangum

from imagesearch.errors import PayloadTooLarge
from imagesearch.http.app import create_app
from imagesearch.http.auth import TenantDep
from imagesearch.http.deps import ImageServiceDep, SettingsDep, WebhookServiceDep
from imagesearch.http.uploads import read_upload
from imagesearch.images.schemas import (
    DuplicateList,
    ImageList,
    ImagePublic,
    ImageSort,
    ImageUpdate,
    UploadCreate,
    UploadPublic,
)
from imagesearch.logs import logger
from imagesearch.observability import UPLOADS_ACCEPTED, metrics, tracer
from imagesearch.search.filter_query import FilterQuery
from imagesearch.webhooks.schemas import (
    DeliveryList,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookPublic,
)

app = create_app("imagesearch upload")

MULTIPART_OVERHEAD = 64 * 1024  # form fields and boundaries around the file


@app.post(
    "/images",
    status_code=status.HTTP_201_CREATED,
    response_model=ImagePublic,
    responses={200: {"model": ImagePublic, "description": "the same bytes were uploaded before"}},
    tags=["images"],
)
def upload_image(
    request: Request,
    response: Response,
    tenant: TenantDep,
    images: ImageServiceDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="the image; its type is decided from the bytes")],
    title: Annotated[str | None, Form()] = None,
    description: Annotated[str | None, Form()] = None,
    tags: Annotated[list[str] | None, Form(description="repeat the field, or separate with commas")] = None,
) -> ImagePublic:
    """Upload a small image (Lambda payloads stop at 6 MB: use POST /uploads for large files)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_upload_bytes + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(f"the request is {declared} bytes; the limit is {settings.max_upload_bytes}")
    data = read_upload(file, settings.max_upload_bytes)
    record, created = images.upload(
        tenant, data, filename=file.filename, title=title, description=description, tags=tags
    )
    if created:
        metrics.add(UPLOADS_ACCEPTED, dimension="multipart")
    else:
        response.status_code = status.HTTP_200_OK
    return record


@app.post(
    "/uploads",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadPublic,
    responses={200: {"model": UploadPublic, "description": "the announced sha256 is already here: no URL"}},
    tags=["images"],
)
def create_upload(
    body: UploadCreate, response: Response, tenant: TenantDep, images: ImageServiceDep
) -> UploadPublic:
    """A presigned PUT URL for a direct upload; the record is pending until the bytes arrive."""
    upload, created = images.create_upload(tenant, body)
    if created:
        metrics.add(UPLOADS_ACCEPTED, dimension="presigned")
    else:
        response.status_code = status.HTTP_200_OK
    return upload


@app.get("/images", response_model=ImageList, tags=["images"])
def list_images(
    tenant: TenantDep,
    images: ImageServiceDep,
    filters: Annotated[FilterQuery, Query()],
    status: Literal["pending", "ready", "failed"] | None = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    sha256: Annotated[str | None, Query(pattern="^[0-9a-fA-F]{64}$", description="exact bytes")] = None,
    sort: Annotated[ImageSort, Query(description="taken_*: by the date taken, images without one last")] = (
        "newest"
    ),
) -> ImageList:
    """Images newest first, one page at a time (pass `next_cursor` back as `cursor`), narrowed by the
    filters of POST /search as query parameters (near=lat,lon,radius_km and
    bbox=min_lat,min_lon,max_lat,max_lon: latitude first)."""
    return images.list(
        tenant,
        status=status,
        tag=tag,
        limit=limit,
        cursor=cursor,
        sha256=sha256,
        filters=filters.filters(),
        sort=sort,
    )


@app.get("/duplicates", response_model=DuplicateList, tags=["images"])
def list_duplicates(
    tenant: TenantDep,
    images: ImageServiceDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> DuplicateList:
    """Groups of near-duplicate images (resized, recompressed or lightly cropped copies, burst shots),
    newest first by their newest member, each with its members' distances to its first image."""
    return images.duplicates(tenant, limit=limit, cursor=cursor)


@app.get("/images/{image_id}", response_model=ImagePublic, tags=["images"])
def get_image(image_id: UUID, tenant: TenantDep, images: ImageServiceDep) -> ImagePublic:
    return images.get(tenant, image_id)


@app.patch("/images/{image_id}", response_model=ImagePublic, tags=["images"])
def update_image(
    image_id: UUID, body: ImageUpdate, tenant: TenantDep, images: ImageServiceDep
) -> ImagePublic:
    """Change title, description or tags; keyword search sees the change at once."""
    return images.update(tenant, image_id, body)


@app.delete("/images/{image_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["images"])
def delete_image(image_id: UUID, tenant: TenantDep, images: ImageServiceDep) -> Response:
    """Remove the record, its embeddings, the original and its thumbnail."""
    images.delete(tenant, image_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@app.post("/webhooks", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated, tags=["webhooks"])
def create_webhook(body: WebhookCreate, tenant: TenantDep, webhooks: WebhookServiceDep) -> WebhookCreated:
    """Subscribe a URL to image events; the answer carries the signing secret, shown this once."""
    return webhooks.create(tenant.id, body)


@app.get("/webhooks", response_model=WebhookList, tags=["webhooks"])
def list_webhooks(tenant: TenantDep, webhooks: WebhookServiceDep) -> WebhookList:
    return webhooks.list(tenant.id)


@app.get("/webhooks/{webhook_id}", response_model=WebhookPublic, tags=["webhooks"])
def get_webhook(webhook_id: UUID, tenant: TenantDep, webhooks: WebhookServiceDep) -> WebhookPublic:
    return webhooks.get(tenant.id, webhook_id)


@app.delete("/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["webhooks"])
def delete_webhook(webhook_id: UUID, tenant: TenantDep, webhooks: WebhookServiceDep) -> Response:
    """Unsubscribe; deliveries not yet sent are dropped."""
    webhooks.delete(tenant.id, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@app.get("/webhooks/{webhook_id}/deliveries", response_model=DeliveryList, tags=["webhooks"])
def list_deliveries(
    webhook_id: UUID,
    tenant: TenantDep,
    webhooks: WebhookServiceDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> DeliveryList:
    """The webhook's deliveries newest first, with their attempts and last outcome."""
    return webhooks.deliveries(tenant.id, webhook_id, limit=limit, cursor=cursor)


_asgi = Mangum(app, lifespan="off")


@tracer.capture_lambda_handler
@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _asgi(event, context)
