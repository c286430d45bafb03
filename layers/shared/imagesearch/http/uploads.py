"""Uploaded files in request bodies, read within the configured limit."""

from __future__ import annotations

from fastapi import UploadFile

from imagesearch.errors import PayloadTooLarge


def read_upload(file: UploadFile, limit: int) -> bytes:
    """The file's bytes; PayloadTooLarge (413) past `limit`, found by reading one byte more, never all."""
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"the file is over the limit of {limit} bytes")
    return data
