"""Near-duplicates at ingestion and in the back-fill: an image's pHash, and the group it joins.

Ingestion hashes the decoded image in `prepare` and groups it in `save`'s transaction, right
after `ready` (`group_image`); the back-fill (`PhashStep`, `imagesearch enrich --missing`) does both for
images ingested before. Neither ever fails an upload: a fault is logged and the hash left empty, so the
back-fill tries again.
"""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

import psycopg
from PIL import Image

from imagesearch.db import Database
from imagesearch.enrichment.phash import phash
from imagesearch.images import duplicates
from imagesearch.logs import logger


def group_image(
    conn: psycopg.Connection, *, tenant_id: UUID, image_id: UUID, phash: int | None
) -> str | None:
    """Store the pHash and the near-duplicate group within the caller's transaction, in a savepoint: a
    fault is logged and undone, the rest of the transaction stands, and why is returned (None: stored, or
    no hash to store)."""
    if phash is None:
        return None
    try:
        with conn.transaction():
            duplicates.assign(conn, tenant_id=tenant_id, image_id=image_id, phash=phash)
    except Exception as e:  # never fails an upload: the hash stays empty and the back-fill tries again
        failure = f"{type(e).__name__}: {e}"[:500]
        logger.warning(
            "near-duplicate group not assigned", extra={"image_id": str(image_id), "error": failure}
        )
        return failure
    return None


class _Source(Protocol):
    """What the step reads of an image (imagesearch.ingest.enrich.EnrichSource)."""

    @property
    def image_id(self) -> UUID: ...

    @property
    def tenant_id(self) -> UUID: ...

    def image(self) -> Image.Image: ...


class PhashStep:
    """The enrichment step: the pHash of a ready image, and its near-duplicate group."""

    name = "phash"
    unread = "phash IS NULL"
    images_per_message = 50  # a download and a reduced decode each

    def params(self) -> dict[str, Any]:
        return {}

    def enrich(self, db: Database, source: _Source) -> bool:
        value = phash(source.image())
        with db.connection() as conn:
            row = conn.execute(
                "SELECT 1 FROM images WHERE id = %s AND status = 'ready' AND phash IS NULL FOR UPDATE",
                (source.image_id,),
            ).fetchone()
            if row is None:  # hashed meanwhile (ingestion got there first), or no longer ready
                return False
            duplicates.assign(conn, tenant_id=source.tenant_id, image_id=source.image_id, phash=value)
            return True
