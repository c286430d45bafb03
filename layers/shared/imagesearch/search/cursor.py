"""Search cursors: the (score, id) of a page's last result, tied to the query they came from."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from imagesearch import cursors
from imagesearch.errors import InvalidRequest


def encode_cursor(score: float, image_id: UUID, fingerprint: str) -> str:
    return cursors.encode_cursor([score.hex(), str(image_id), fingerprint])


def decode_cursor(cursor: str, fingerprint: str) -> tuple[float, UUID]:
    """Inverse of encode_cursor; InvalidRequest for anything else, or a cursor of another query."""

    def parse(values: Any) -> tuple[float, UUID, str]:
        score_hex, image_id, expected = values
        return float.fromhex(score_hex), UUID(image_id), expected

    score, image_id, expected = cursors.decode_cursor(cursor, parse)
    if expected != fingerprint:
        raise InvalidRequest("this cursor belongs to another query")
    return score, image_id
