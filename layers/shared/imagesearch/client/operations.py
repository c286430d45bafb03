"""The API's operations as flows (client/flow.py): built and parsed once, run by Client and AsyncClient."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from imagesearch.client.bodies import (
    Cutoff,
    Example,
    Filters,
    ImageChanges,
    ImageSort,
    RecommendBody,
    RecommendOptions,
    SearchBody,
    SearchOptions,
    UploadAnnouncement,
    WebhookCreate,
    WebhookEvent,
    filter_query,
    to_json,
)
from imagesearch.client.errors import ImageFailed, WaitTimeout
from imagesearch.client.flow import Call, Flow, Sleep, checked, parsed, retried
from imagesearch.client.models import (
    DeliveryPage,
    DuplicatePage,
    Health,
    Image,
    ImagePage,
    SearchResponse,
    UploadTicket,
    Webhook,
    WebhookCreated,
    WebhookList,
)
from imagesearch.client.retry import RetryPolicy

# The client runs outside the server, so the server's Settings are not its configuration: these two
# variables are its own defaults, read here and nowhere else.
URL_VARIABLE = "IMAGESEARCH_URL"
API_KEY_VARIABLE = "IMAGESEARCH_API_KEY"
LOCAL_STACK_URL = "http://127.0.0.1:8000"

# Above this many bytes an upload goes to storage through a presigned URL (Lambda payloads stop at 6 MB).
MULTIPART_LIMIT = 5 * 1024 * 1024
ALL_EVENTS: tuple[WebhookEvent, ...] = ("image.ready", "image.failed", "image.deleted")

ImageRef = UUID | str | Image
Source = bytes | str | os.PathLike[str]


def base_url_from_environment(base_url: str | None) -> str:
    return base_url or os.environ.get(URL_VARIABLE) or LOCAL_STACK_URL


def api_key_from_environment(api_key: str | None) -> str | None:
    return api_key or os.environ.get(API_KEY_VARIABLE) or None


def image_id(ref: ImageRef) -> str:
    return str(ref.id if isinstance(ref, Image) else ref)


def example(ref: ImageRef | Example) -> Example:
    """An image (or its id) as an image example, a string as a text example; an Example as it is."""
    if isinstance(ref, dict):
        return ref
    if isinstance(ref, Image | UUID):
        return {"image_id": ref.id if isinstance(ref, Image) else ref}
    return {"text": ref}


def read_source(source: Source, filename: str | None) -> tuple[bytes, str]:
    """The bytes to upload and the filename to send (the file's own name for a path)."""
    if isinstance(source, bytes):
        return source, filename or "image"
    path = Path(source)
    return path.read_bytes(), filename or path.name


@dataclass(frozen=True)
class UploadResult:
    image: Image
    created: bool  # False: the API already had these bytes, and `image` is that record


@dataclass(frozen=True)
class Operations:
    """Each method returns a flow; the clients run it."""

    api_key: str | None
    policy: RetryPolicy
    multipart_limit: int = MULTIPART_LIMIT

    def send(self, method: str, path: str, **call: Any) -> Flow[httpx.Response]:
        """An API request with the credentials, retried as the policy says."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return retried(Call(method, path, headers=headers, **call), self.policy)

    def health(self) -> Flow[Health]:
        response = yield from self.send("GET", "/health")
        return parsed(Health, checked(response, ok=(200, 503)))

    # --- images ---

    def upload(
        self,
        source: Source,
        *,
        title: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        filename: str | None = None,
    ) -> Flow[UploadResult]:
        """Small files in one multipart POST /images; larger ones announced (POST /uploads, with their
        SHA-256) and PUT to the presigned URL. Bytes the API already has come back as that record."""
        data, name = read_source(source, filename)
        fields: dict[str, Any] = {"title": title, "description": description}
        fields = {k: v for k, v in fields.items() if v is not None}
        if tags is not None:
            fields["tags"] = list(tags)
        if len(data) <= self.multipart_limit:
            files = {"file": (name, data, "application/octet-stream")}
            response = checked(
                (yield from self.send("POST", "/images", files=files, data=fields)), (200, 201)
            )
            return UploadResult(parsed(Image, response), created=response.status_code == 201)

        from imagesearch.imaging import CONTENT_TYPES, sniff_format

        fmt = sniff_format(data)
        announcement: UploadAnnouncement = {
            "filename": name,
            # an unknown format is the API's to refuse (with problem details), not the client's
            "content_type": CONTENT_TYPES[fmt] if fmt else "application/octet-stream",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            **fields,  # type: ignore[typeddict-item]
        }
        body = to_json(UploadAnnouncement, announcement)
        ticket = parsed(
            UploadTicket, checked((yield from self.send("POST", "/uploads", json=body)), (200, 201))
        )
        if ticket.upload_url is None:
            return UploadResult(ticket.image, created=False)
        # the presigned URL carries its own authorisation: no API credentials to storage
        put = Call(ticket.method, ticket.upload_url, content=data, headers=ticket.headers)
        checked((yield from retried(put, self.policy)), (200, 201, 204))
        return UploadResult(ticket.image, created=True)

    def get_image(self, ref: ImageRef) -> Flow[Image]:
        return parsed(Image, checked((yield from self.send("GET", f"/images/{image_id(ref)}"))))

    def list_images(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        sha256: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        sort: ImageSort | None = None,
        filters: Filters | None = None,
    ) -> Flow[ImagePage]:
        params = {
            "status": status,
            "tag": tag,
            "sha256": sha256,
            "limit": limit,
            "cursor": cursor,
            "sort": sort,
        }
        params = {k: v for k, v in params.items() if v is not None} | filter_query(filters or {})
        return parsed(ImagePage, checked((yield from self.send("GET", "/images", params=params))))

    def list_duplicates(self, *, limit: int = 100, cursor: str | None = None) -> Flow[DuplicatePage]:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        return parsed(DuplicatePage, checked((yield from self.send("GET", "/duplicates", params=params))))

    def update_image(self, ref: ImageRef, changes: ImageChanges) -> Flow[Image]:
        body = to_json(ImageChanges, changes)
        response = yield from self.send("PATCH", f"/images/{image_id(ref)}", json=body)
        return parsed(Image, checked(response))

    def delete_image(self, ref: ImageRef) -> Flow[None]:
        checked((yield from self.send("DELETE", f"/images/{image_id(ref)}")), (204,))

    def wait_ready(self, refs: Sequence[ImageRef], *, timeout: float, interval: float) -> Flow[list[Image]]:
        """Poll until every image is ready; ImageFailed at the first failed one, WaitTimeout at the end."""
        deadline = time.monotonic() + timeout
        ids = [image_id(ref) for ref in refs]
        latest: dict[str, Image] = {}
        pending = list(dict.fromkeys(ids))
        while True:
            for each in pending:
                latest[each] = yield from self.get_image(each)
                if latest[each].status == "failed":
                    raise ImageFailed(latest[each])
            pending = [each for each in pending if latest[each].status != "ready"]
            if not pending:
                return [latest[each] for each in ids]
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout([latest[each] for each in pending], timeout)
            yield Sleep(min(interval, left))

    # --- search ---

    def search(self, query: str | None, options: SearchOptions) -> Flow[SearchResponse]:
        body: SearchBody = {**options, "query": query} if query is not None else {**options}
        response = yield from self.send("POST", "/search", json=to_json(SearchBody, body))
        return parsed(SearchResponse, checked(response))

    def search_by_image(
        self,
        source: Source,
        *,
        limit: int | None = None,
        min_score: float | None = None,
        tags: Iterable[str] | None = None,
        cutoff: Cutoff | None = None,
    ) -> Flow[SearchResponse]:
        data, name = read_source(source, None)
        fields: dict[str, Any] = {"limit": limit, "min_score": min_score, "cutoff": cutoff}
        fields = {k: str(v) for k, v in fields.items() if v is not None}
        form: dict[str, Any] = {**fields, "tags": list(tags)} if tags is not None else fields
        files = {"file": (name, data, "application/octet-stream")}
        response = yield from self.send("POST", "/search/image", files=files, data=form)
        return parsed(SearchResponse, checked(response))

    def similar(
        self,
        ref: ImageRef,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        cutoff: Cutoff | None = None,
    ) -> Flow[SearchResponse]:
        params = {
            k: v for k, v in {"limit": limit, "cursor": cursor, "cutoff": cutoff}.items() if v is not None
        }
        response = yield from self.send("GET", f"/images/{image_id(ref)}/similar", params=params)
        return parsed(SearchResponse, checked(response))

    def recommend(
        self, positive: Iterable[ImageRef | Example], options: RecommendOptions
    ) -> Flow[SearchResponse]:
        body: RecommendBody = {**options, "positive": [example(ref) for ref in positive]}
        response = yield from self.send("POST", "/recommend", json=to_json(RecommendBody, body))
        return parsed(SearchResponse, checked(response))

    # --- webhooks ---

    def create_webhook(
        self, url: str, events: Iterable[WebhookEvent], description: str | None
    ) -> Flow[WebhookCreated]:
        body: WebhookCreate = {"url": url, "events": list(events)}
        if description is not None:
            body["description"] = description
        response = yield from self.send("POST", "/webhooks", json=to_json(WebhookCreate, body))
        return parsed(WebhookCreated, checked(response, (201,)))

    def list_webhooks(self) -> Flow[list[Webhook]]:
        return parsed(WebhookList, checked((yield from self.send("GET", "/webhooks")))).items

    def get_webhook(self, webhook_id: UUID | str) -> Flow[Webhook]:
        return parsed(Webhook, checked((yield from self.send("GET", f"/webhooks/{webhook_id}"))))

    def delete_webhook(self, webhook_id: UUID | str) -> Flow[None]:
        checked((yield from self.send("DELETE", f"/webhooks/{webhook_id}")), (204,))

    def list_deliveries(
        self, webhook_id: UUID | str, *, limit: int | None = None, cursor: str | None = None
    ) -> Flow[DeliveryPage]:
        params = {k: v for k, v in {"limit": limit, "cursor": cursor}.items() if v is not None}
        response = yield from self.send("GET", f"/webhooks/{webhook_id}/deliveries", params=params)
        return parsed(DeliveryPage, checked(response))
