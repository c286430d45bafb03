"""Build the configured storage adapter from a URL (file:///dir or s3://bucket/prefix)."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import unquote, urlparse

from imagesearch.config import Settings
from imagesearch.errors import StorageMisconfigured
from imagesearch.storage.base import ObjectStorage
from imagesearch.storage.filesystem import FileSystemStorage
from imagesearch.storage.s3 import S3Storage
from imagesearch.storage.signing import UrlSigner


def storage_from_url(
    url: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    public_base_url: str = "http://127.0.0.1:8000",
    signing_secret: str | None = None,
) -> ObjectStorage:
    """An adapter for `url`; file:// storage needs a signing secret for its URLs (a random one if absent)."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        return S3Storage(parsed.netloc, parsed.path.lstrip("/"), endpoint_url=endpoint_url, region=region)
    if parsed.scheme == "file":
        root = Path(unquote(parsed.netloc + parsed.path))
        secret = (signing_secret or secrets.token_hex(32)).encode("utf-8")
        return FileSystemStorage(root, signer=UrlSigner(secret=secret, base_url=public_base_url.rstrip("/")))
    raise ValueError(f"unsupported storage URL {url!r}")


def storage_from_settings(settings: Settings) -> ObjectStorage:
    """The adapter of IMAGESEARCH_STORAGE_URL (StorageMisconfigured, a 503, when it is not set)."""
    if settings.storage_url is None:
        raise StorageMisconfigured("IMAGESEARCH_STORAGE_URL is not set")
    return storage_from_url(
        settings.storage_url,
        endpoint_url=settings.storage_endpoint_url,
        region=settings.storage_region,
        public_base_url=settings.public_base_url,
        signing_secret=settings.signing_secret,
    )
