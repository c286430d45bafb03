"""What any request may carry: its headers and its declared body, refused before anything reads them."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Scope

from imagesearch.http.problems import problem

# The most any request may carry (the largest upload plus multipart overhead), and a JSON body.
MAX_BODY_BYTES = 64 * 1024 * 1024 + 64 * 1024
JSON_BODY_BYTES = 1024 * 1024
# All request headers together. API Gateway refuses more than 10 KiB in front of Lambda; the local server
# (and any other host) gets the same kind of answer from the app itself.
MAX_HEADER_BYTES = 16 * 1024


def refusal(scope: Scope) -> Response | None:
    """431 problem+json for headers over MAX_HEADER_BYTES, 413 for a declared Content-Length over the body
    limit (JSON_BODY_BYTES for a JSON body); None when the request is within the limits."""
    if sum(len(name) + len(value) for name, value in scope["headers"]) > MAX_HEADER_BYTES:
        return problem(431, f"the request headers are over the limit of {MAX_HEADER_BYTES} bytes")
    headers = dict(scope["headers"])
    declared = headers.get(b"content-length", b"")
    is_json = headers.get(b"content-type", b"").split(b";")[0].strip() == b"application/json"
    limit = JSON_BODY_BYTES if is_json else MAX_BODY_BYTES
    if declared.isdigit() and int(declared) > limit:
        return problem(413, f"the request body is over the limit of {limit} bytes")
    return None
