"""The local stand-in for the OCR queue: the OCR handler reads the embed handler's own events, right after.

In the cloud the OCR function has its own queue and reads the same object-created events (docs/deploy.md,
"OCR"). Locally the embed handler has just made the image ready when the OCR handler runs, so the order is
kept without a second queue. A message the OCR handler fails (a transient fault) is reported failed like
an embed failure: the local queue delivers it again, the embed handler skips it as a duplicate, and the
OCR handler reads it then.
"""

from __future__ import annotations

from typing import Any

from imagesearch.local.events import Handler


def followed_by_ocr(embed: Handler, ocr: Handler) -> Handler:
    """A handler that calls `embed`, then `ocr` with the records `embed` did not fail."""

    def handler(event: dict[str, Any], context: Any) -> Any:
        response = embed(event, context) or {}
        failed = {str(f["itemIdentifier"]) for f in response.get("batchItemFailures", [])}
        records = [r for r in event.get("Records", []) if r.get("messageId") not in failed]
        if not records:
            return response
        ocr_response = ocr({**event, "Records": records}, context) or {}
        failures = [*response.get("batchItemFailures", []), *ocr_response.get("batchItemFailures", [])]
        return {**response, "batchItemFailures": failures}

    return handler
