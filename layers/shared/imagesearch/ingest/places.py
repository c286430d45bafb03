"""The place a photo was taken in (imagesearch.enrichment.places), at ingestion and as a back-fill step.

Looked up from the stored location only: where the deployment does not store locations
(IMAGESEARCH_STORE_LOCATION=false) there is none, so no place either (a town says where as well). An image
with a location gets `place_at` whatever the lookup found (nothing at sea); one without keeps it NULL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import psycopg

from imagesearch.db import Database
from imagesearch.enrichment.places import PlaceName, lookup
from imagesearch.exif import ExifData
from imagesearch.images import repository


@dataclass(frozen=True)
class PlaceLookup:
    """A lookup done: the place found, or None where nothing is within reach (the open sea)."""

    place: PlaceName | None


def look_up(exif: ExifData) -> PlaceLookup | None:
    """The lookup of the photo's location; None when it has none (never recorded, or not stored)."""
    if exif.latitude is None or exif.longitude is None:
        return None
    return PlaceLookup(lookup(exif.latitude, exif.longitude))


def store(conn: psycopg.Connection, image_id: UUID, found: PlaceLookup | None) -> None:
    """Ingestion's result, over whatever an earlier version of the image had: the place and that it was
    looked up, or no place and unread (no location; or the lookup failed, and the back-fill retries it)."""
    repository.set_place(conn, image_id, found.place if found else None, looked_up=found is not None)


class _Source(Protocol):
    """What the step reads of an EnrichSource: the id alone."""

    @property
    def image_id(self) -> UUID: ...


class PlaceStep:
    """The back-fill of places for images with a stored location; reads no original."""

    name = "place"
    unread = "place_at IS NULL AND latitude IS NOT NULL"
    images_per_message = 50  # a lookup each, no original read

    def params(self) -> dict[str, Any]:
        return {}

    def enrich(self, db: Database, source: _Source) -> bool:
        with db.connection() as conn:
            where = repository.location(conn, source.image_id)
        if where is None:
            return False
        place = lookup(*where)
        with db.connection() as conn:
            # Only while unread, and for the location it was looked up for: a replacement may have moved it.
            return repository.set_place(conn, source.image_id, place, only_unread_at=where)
