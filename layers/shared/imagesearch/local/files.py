"""GET/PUT /files/{key}: the local server's side of the filesystem adapter's presigned URLs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from imagesearch.errors import InvalidRequest, PayloadTooLarge
from imagesearch.storage.filesystem import FileSystemStorage


def files_router(storage: FileSystemStorage) -> APIRouter:
    """Routes that honour URLs signed by `storage.signer`, and nothing else."""
    router = APIRouter(tags=["files"])

    @router.get("/files/{key:path}", include_in_schema=False)
    def get_file(key: str, expires: Annotated[str, Query()], sig: Annotated[str, Query()]) -> Response:
        storage.signer.verify("GET", key, expires=expires, sig=sig)
        info = storage.head(key)
        return Response(
            storage.get(key),
            media_type=info.content_type or "application/octet-stream",
            headers={
                "Cache-Control": "private, max-age=300",
                "ETag": f'"{info.etag}"',
                # An image that is also valid HTML (a polyglot) must never be rendered as a page.
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )

    @router.put("/files/{key:path}", include_in_schema=False)
    async def put_file(
        key: str,
        request: Request,
        expires: Annotated[str, Query()],
        sig: Annotated[str, Query()],
        ct: Annotated[str, Query()] = "",
        size: Annotated[str, Query()] = "",
    ) -> Response:
        storage.signer.verify("PUT", key, expires=expires, sig=sig, content_type=ct, size=size)
        # As S3 does with signed headers: the body must be what the URL was issued for.
        if request.headers.get("content-type", "") != ct:
            raise InvalidRequest(f"Content-Type must be {ct!r}, as when the upload URL was requested")
        if not size.isdigit():
            raise InvalidRequest("the upload URL carries no size")
        expected = int(size)
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > expected:
                raise PayloadTooLarge(
                    f"body is larger than the {expected} bytes the upload URL was issued for"
                )
        if len(body) != expected:
            raise InvalidRequest(f"body is {len(body)} bytes; the upload URL was issued for {expected}")
        info = storage.put(key, bytes(body), content_type=ct)
        return Response(status_code=200, headers={"ETag": f'"{info.etag}"'})

    return router
