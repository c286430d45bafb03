"""Search cursors: the (score, id) of a page's last result, tied to the query they came from."""

from __future__ import annotations

import base64
import binascii
import json
from uuid import UUID

from imagesearch.errors import InvalidRequest


def encode_cursor(score: float, image_id: UUID, fingerprint: str) -> str:
    raw = json.dumps([score.hex(), str(image_id), fingerprint]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> tuple[float, UUID]:
    """Inverse of encode_cursor; InvalidRequest for anything else, or a cursor of another query."""
    try:
        score_hex, image_id, expected = json.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        value = (float.fromhex(score_hex), UUID(image_id))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidRequest("malformed cursor") from None
    if expected != fingerprint:
        raise InvalidRequest("this cursor belongs to another query")
    return value
