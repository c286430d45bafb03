"""`AsyncClient`: the API over httpx.AsyncClient, for asyncio programs (the same flows as `Client`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar, overload
from uuid import UUID

import httpx
from typing_extensions import Unpack

from imagesearch.client.bodies import (
    Cutoff,
    Example,
    Filters,
    ImageChanges,
    ImageSort,
    RecommendOptions,
    SearchOptions,
    WebhookEvent,
)
from imagesearch.client.flow import Call, Flow
from imagesearch.client.models import (
    DuplicateGroup,
    Health,
    Image,
    SearchResponse,
    SearchResult,
    Webhook,
    WebhookCreated,
    WebhookDelivery,
)
from imagesearch.client.operations import (
    ALL_EVENTS,
    MULTIPART_LIMIT,
    ImageRef,
    Operations,
    Source,
    UploadResult,
    api_key_from_environment,
    base_url_from_environment,
)
from imagesearch.client.retry import RetryPolicy

T = TypeVar("T")
Item = TypeVar("Item")


class AsyncClient:
    """`Client`'s twin for asyncio: the same arguments, the same methods, awaited (iterators: `async for`)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int | RetryPolicy = 3,
        multipart_limit: int = MULTIPART_LIMIT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        policy = retries if isinstance(retries, RetryPolicy) else RetryPolicy(retries=retries)
        self.api = Operations(api_key_from_environment(api_key), policy, multipart_limit)
        self.http = httpx.AsyncClient(
            base_url=base_url_from_environment(base_url), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.aclose()

    async def run(self, flow: Flow[T]) -> T:
        """Run a flow: send its calls, sleep its sleeps, throw transport errors into it."""
        reply: Any = None
        error: httpx.TransportError | None = None
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as done:
                return done.value
            reply, error = None, None
            if isinstance(step, Call):
                try:
                    reply = await self.http.request(step.method, step.url, **step.arguments())
                except httpx.TransportError as e:
                    error = e
            else:
                await asyncio.sleep(step.seconds)

    async def _pages(
        self, page: Callable[[str | None], Flow[Any]], items: Callable[[Any], list[Item]]
    ) -> AsyncIterator[Item]:
        cursor: str | None = None
        while True:
            result = await self.run(page(cursor))
            for item in items(result):
                yield item
            cursor = result.next_cursor
            if not cursor:
                return

    async def health(self) -> Health:
        return await self.run(self.api.health())

    # --- images ---

    async def upload(
        self,
        source: Source,
        *,
        title: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        filename: str | None = None,
    ) -> Image:
        """Upload a file (a path) or bytes; the same bytes again return the existing image."""
        result = await self.upload_result(
            source, title=title, description=description, tags=tags, filename=filename
        )
        return result.image

    async def upload_result(
        self,
        source: Source,
        *,
        title: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        filename: str | None = None,
    ) -> UploadResult:
        """As `upload`, and whether this call created the image."""
        flow = self.api.upload(source, title=title, description=description, tags=tags, filename=filename)
        return await self.run(flow)

    async def get_image(self, image: ImageRef) -> Image:
        return await self.run(self.api.get_image(image))

    def list_images(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        sha256: str | None = None,
        page_size: int = 100,
        sort: ImageSort | None = None,
        **filters: Unpack[Filters],
    ) -> AsyncIterator[Image]:
        """Every image (newest first, or in `sort` order) that the filters keep (POST /search's: `camera=`,
        `taken_after=`, `near={"lat": ..., "lon": ..., "radius_km": ...}`...), fetched a page at a time."""
        return self._pages(
            lambda cursor: self.api.list_images(
                status=status,
                tag=tag,
                sha256=sha256,
                limit=page_size,
                cursor=cursor,
                sort=sort,
                filters=filters,
            ),
            lambda page: page.items,
        )

    def duplicates(self, *, page_size: int = 100) -> AsyncIterator[DuplicateGroup]:
        """Every group of near-duplicate images (newest first), fetched a page at a time."""
        return self._pages(
            lambda cursor: self.api.list_duplicates(limit=page_size, cursor=cursor), lambda page: page.items
        )

    async def update_image(self, image: ImageRef, **changes: Unpack[ImageChanges]) -> Image:
        return await self.run(self.api.update_image(image, changes))

    async def delete_image(self, image: ImageRef) -> None:
        await self.run(self.api.delete_image(image))

    @overload
    async def wait_ready(self, images: ImageRef, *, timeout: float = ..., interval: float = ...) -> Image: ...
    @overload
    async def wait_ready(
        self, images: list[ImageRef] | tuple[ImageRef, ...], *, timeout: float = ..., interval: float = ...
    ) -> list[Image]: ...
    async def wait_ready(
        self, images: ImageRef | Sequence[ImageRef], *, timeout: float = 120.0, interval: float = 0.5
    ) -> Image | list[Image]:
        """Wait until the image (or each one) is ready; ImageFailed if one fails, WaitTimeout at `timeout`."""
        if isinstance(images, ImageRef):
            return (await self.run(self.api.wait_ready([images], timeout=timeout, interval=interval)))[0]
        return await self.run(self.api.wait_ready(images, timeout=timeout, interval=interval))

    # --- search ---

    async def search(self, query: str | None = None, **options: Unpack[SearchOptions]) -> SearchResponse:
        """One page of results (pass `cursor=response.next_cursor` for the next)."""
        return await self.run(self.api.search(query, options))

    def iter_search(
        self, query: str | None = None, **options: Unpack[SearchOptions]
    ) -> AsyncIterator[SearchResult]:
        """Every result of a search, page after page (`limit` is the page size)."""
        return self._pages(
            lambda cursor: self.api.search(query, {**options, "cursor": cursor} if cursor else options),
            lambda page: page.results,
        )

    async def search_by_image(
        self,
        source: Source,
        *,
        limit: int | None = None,
        min_score: float | None = None,
        tags: Iterable[str] | None = None,
        cutoff: Cutoff | None = None,
    ) -> SearchResponse:
        """Images like a picture (a path or bytes; it is not stored)."""
        return await self.run(
            self.api.search_by_image(source, limit=limit, min_score=min_score, tags=tags, cutoff=cutoff)
        )

    async def similar(
        self,
        image: ImageRef,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        cutoff: Cutoff | None = None,
    ) -> SearchResponse:
        """Images like a stored one."""
        return await self.run(self.api.similar(image, limit=limit, cursor=cursor, cutoff=cutoff))

    async def recommend(
        self, positive: Iterable[ImageRef | Example], **options: Unpack[RecommendOptions]
    ) -> SearchResponse:
        """More like `positive` (Images or UUIDs: stored images; strings: texts), less like `negative`."""
        return await self.run(self.api.recommend(positive, options))

    # --- webhooks ---

    async def create_webhook(
        self, url: str, events: Iterable[WebhookEvent] = ALL_EVENTS, *, description: str | None = None
    ) -> WebhookCreated:
        """Subscribe `url`; keep the answer's `secret` to verify deliveries (`verify_webhook`)."""
        return await self.run(self.api.create_webhook(url, events, description))

    async def list_webhooks(self) -> list[Webhook]:
        return await self.run(self.api.list_webhooks())

    async def get_webhook(self, webhook_id: UUID | str) -> Webhook:
        return await self.run(self.api.get_webhook(webhook_id))

    async def delete_webhook(self, webhook_id: UUID | str) -> None:
        await self.run(self.api.delete_webhook(webhook_id))

    def list_deliveries(
        self, webhook_id: UUID | str, *, page_size: int | None = None
    ) -> AsyncIterator[WebhookDelivery]:
        """A webhook's deliveries, fetched a page at a time."""
        return self._pages(
            lambda cursor: self.api.list_deliveries(webhook_id, limit=page_size, cursor=cursor),
            lambda page: page.items,
        )
