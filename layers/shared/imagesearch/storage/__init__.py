"""Object storage: a small interface with a filesystem adapter and an S3 adapter."""

from imagesearch.storage.base import ObjectInfo, ObjectStorage, PresignedRequest
from imagesearch.storage.factory import storage_from_settings, storage_from_url

__all__ = ["ObjectInfo", "ObjectStorage", "PresignedRequest", "storage_from_settings", "storage_from_url"]
