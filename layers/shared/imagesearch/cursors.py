"""Opaque keyset cursors: a few values as URL-safe base64 of their JSON (image lists, search pages)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, TypeVar

from imagesearch.errors import InvalidRequest

T = TypeVar("T")


def encode_cursor(values: list[str]) -> str:
    raw = json.dumps(values).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, parse: Callable[[Any], T]) -> T:
    """`parse` of the decoded values; InvalidRequest ("malformed cursor") when either step fails."""
    try:
        return parse(json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidRequest("malformed cursor") from None
