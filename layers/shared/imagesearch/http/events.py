"""The embed function's HTTP entry: object-created events pushed to POST /events (Knative Eventing,
Cloud Run with Eventarc, Azure Event Grid, a MinIO webhook), ingested by the same `Ingestor` the queue
path uses. docs/deploy-anywhere.md.

Redelivery works as on SQS: 200 once every object is committed (ready), permanently failed or has
nothing to do; 503 when a transient fault (database, storage) stopped one, so the platform delivers again
(the objects already saved are skipped as duplicates then); 400 for an event that is not one to ingest.
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from imagesearch.config import Settings
from imagesearch.errors import MalformedEvent, PayloadTooLarge, ServiceUnavailable, Unauthorized
from imagesearch.http.app import create_app
from imagesearch.ingest.cloudevents import parse_delivery
from imagesearch.logs import logger
from imagesearch.runtime import get_runtime

# A batch of 100 CloudEvents of a few hundred bytes each fits many times over.
EVENTS_BODY_BYTES = 1024 * 1024


class EventsAccepted(BaseModel):
    """What became of each delivered object: ready, failed (permanently: recorded) or skipped."""

    events: int
    outcomes: list[str]


async def read_body(request: Request, limit: int = EVENTS_BODY_BYTES) -> bytes:
    """The request body; PayloadTooLarge past `limit`, without reading more than one chunk beyond it."""
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"an event delivery is at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def check_token(request: Request, settings: Settings) -> None:
    """With IMAGESEARCH_EVENTS_TOKEN set, deliveries must carry it (Authorization: Bearer <token>, as
    MinIO's webhook auth_token sends it); platforms that authenticate the push themselves (Cloud Run's
    IAM, a cluster-local Knative service) may leave it unset."""
    expected = settings.events_token
    if not expected:
        return
    presented = request.headers.get("authorization", "")
    token = presented[7:] if presented[:7].lower() == "bearer " else presented
    if not hmac.compare_digest(token.encode("utf-8", "surrogateescape"), expected.encode()):
        raise Unauthorized("a missing or wrong events token")


async def receive_events(request: Request) -> EventsAccepted:
    """Parse one delivery and ingest its objects; raises the 4xx and 503 problems described above."""
    runtime = get_runtime()
    check_token(request, runtime.settings)
    body = await read_body(request)
    try:
        delivery = parse_delivery(request.headers, body)
    except MalformedEvent as e:
        logger.warning(
            "malformed event delivery refused",
            extra={
                "error": e.detail,
                "content_type": request.headers.get("content-type"),
                "ce_id": request.headers.get("ce-id"),
                "bytes": len(body),
            },
        )
        raise
    try:
        outcomes = await run_in_threadpool(runtime.ingestor.ingest, delivery.objects)
    except Exception as e:  # transient: the platform retries the delivery, as SQS would the message
        logger.exception(
            "event delivery failed; the platform will retry", extra={"events": delivery.event_ids}
        )
        raise ServiceUnavailable("the delivery could not be ingested now; retry") from e
    logger.info(
        "events ingested",
        extra={"events": delivery.event_ids, "outcomes": [str(outcome) for outcome in outcomes]},
    )
    return EventsAccepted(events=len(delivery.event_ids), outcomes=[str(outcome) for outcome in outcomes])


def events_app() -> FastAPI:
    """The embed function's HTTP service: POST /events (and GET /health)."""
    app = create_app("imagesearch embed")

    @app.post("/events", response_model=EventsAccepted, tags=["events"])
    async def events(request: Request) -> EventsAccepted:
        """Object-created events: CloudEvents 1.0 (binary, structured or batched) or an S3-shaped webhook."""
        return await receive_events(request)

    @app.options("/events", include_in_schema=False)
    async def events_handshake(request: Request) -> Response:
        """The CloudEvents webhook abuse-protection handshake (Azure Event Grid sends it first)."""
        origin = request.headers.get("webhook-request-origin", "")
        return Response(headers={"WebHook-Allowed-Origin": origin or "*", "WebHook-Allowed-Rate": "*"})

    return app
