"""Originals without a record: which are deleted, which are kept, which get a record (and what it holds).

Delete only what is known to be deleted. An original named by one of our image ids goes only when that
image's tombstone says it was deleted; without a tombstone its record was never made or was lost (a
database restored from a dump older than the upload), so the original, perhaps the only copy, is adopted:
a pending record under its own id. Any other name was put there by another tool and gets a record under a
new id. Objects of a tenant this database does not know are left alone (its row may come back).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from enum import StrEnum

import psycopg

from imagesearch.auth.tenant import tenant_exists
from imagesearch.errors import ObjectNotFound
from imagesearch.images import object_keys, repository
from imagesearch.images.repository import ImageRecord
from imagesearch.images.schemas import clean_description, clean_filename, clean_tags, clean_title
from imagesearch.logs import logger
from imagesearch.storage import ObjectStorage


class Stray(StrEnum):
    DELETED = "record deleted"  # id-named, and its image was deleted: the object goes
    UNKNOWN_TENANT = "unknown tenant"  # left alone
    ADOPTED = "adopted"  # id-named, never deleted: a record under its id
    FOREIGN = "foreign"  # put there by another tool: a record under a new id


def classify(conn: psycopg.Connection, parsed: object_keys.OriginalKey) -> Stray:
    """What becomes of an original that has no record."""
    if parsed.image_id is not None and repository.tombstoned(conn, parsed.tenant_id, parsed.image_id):
        return Stray.DELETED
    if not tenant_exists(conn, parsed.tenant_id):
        return Stray.UNKNOWN_TENANT
    return Stray.FOREIGN if parsed.image_id is None else Stray.ADOPTED


def make_record(
    conn: psycopg.Connection, storage: ObjectStorage, key: str, parsed: object_keys.OriginalKey
) -> tuple[ImageRecord | None, str]:
    """A pending record for the original at `key`, which has none; else None and why."""
    stray = classify(conn, parsed)
    if stray in (Stray.DELETED, Stray.UNKNOWN_TENANT):
        return None, stray
    try:
        metadata = dict(storage.head(key).metadata)
    except ObjectNotFound:
        return None, "object gone"
    image_id = parsed.image_id
    # An id says nothing as a file name (and would be a keyword): only a name the metadata keeps.
    filename = clean_filename(parsed.name) if image_id is None else None
    try:
        title, description = (
            clean_title(metadata.get("title")),
            clean_description(metadata.get("description")),
        )
        tags = clean_tags([metadata["tags"]] if metadata.get("tags") else []) or []
        filename = filename or clean_filename(metadata.get("filename"))
    except Exception:  # metadata we cannot use is dropped, the image still counts
        title, description, tags = None, None, []
    new = repository.NewImage(
        id=image_id or uuid.uuid4(),
        tenant_id=parsed.tenant_id,
        storage_key=key,
        filename=filename,
        title=title,
        description=description,
        tags=tags,
        content_type=None,
        size=None,
    )
    if image_id is None:
        return repository.insert(conn, new), stray
    record = repository.adopt(conn, new)
    if record is not None:
        logger.warning("original adopted", extra={"image_id": str(image_id), "key": key})
        return record, stray
    record = repository.get_by_key(conn, key)
    if record is not None:  # adopted by another event a moment ago: go on with it
        return record, stray
    if repository.tombstoned(conn, parsed.tenant_id, image_id):  # deleted meanwhile
        return None, Stray.DELETED
    # The id is (or was) another tenant's image's, so this is no lost record of this tenant: an object put
    # there by some other tool, under a misleading name. It gets a record of its own, never the other's.
    return repository.insert(conn, replace(new, id=uuid.uuid4())), Stray.FOREIGN
