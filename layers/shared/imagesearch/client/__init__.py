"""A Python client of a running imagesearch API (README, "Python client").

    from imagesearch.client import Client

    with Client("http://127.0.0.1:8000") as client:  # or IMAGESEARCH_URL / IMAGESEARCH_API_KEY
        image = client.wait_ready(client.upload("photo.jpg", tags=["holiday"]))
        for result in client.iter_search("a red circle", limit=50):
            ...

`imagesearch ingest` and `imagesearch demo seed` go through it; there is no other HTTP client here.
"""

from imagesearch.client.aio import AsyncClient
from imagesearch.client.bodies import Example, Filters
from imagesearch.client.errors import ApiError, ImageFailed, WaitTimeout
from imagesearch.client.models import (
    DeliveryPage,
    DuplicateGroup,
    DuplicateImage,
    Health,
    Image,
    ImagePage,
    Problem,
    SearchResponse,
    SearchResult,
    Webhook,
    WebhookCreated,
    WebhookDelivery,
)
from imagesearch.client.operations import UploadResult
from imagesearch.client.retry import RetryPolicy
from imagesearch.client.sync import Client
from imagesearch.webhooks.signing import InvalidSignature
from imagesearch.webhooks.signing import verify as verify_webhook

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "DeliveryPage",
    "DuplicateGroup",
    "DuplicateImage",
    "Example",
    "Filters",
    "Health",
    "Image",
    "ImageFailed",
    "ImagePage",
    "InvalidSignature",
    "Problem",
    "RetryPolicy",
    "SearchResponse",
    "SearchResult",
    "UploadResult",
    "WaitTimeout",
    "Webhook",
    "WebhookCreated",
    "WebhookDelivery",
    "verify_webhook",
]
