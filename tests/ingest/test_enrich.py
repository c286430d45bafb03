"""`imagesearch enrich --missing`: back-fills the EXIF of images ingested before it was read."""

from __future__ import annotations

import pytest
from support.exif import photo_with_exif
from support.images import make_image
from support.ingest import Handler, embedded_image

from imagesearch.cli.main import main
from imagesearch.config import Settings
from imagesearch.db import Database
from imagesearch.storage import ObjectStorage


def forget_exif(db: Database) -> None:
    """As images ingested before migration 0007 are: no EXIF columns, never read."""
    with db.connection() as conn:
        conn.execute(
            "UPDATE images SET exif_read_at = NULL, taken_at = NULL, taken_at_local = NULL, "
            "camera_make = NULL, camera_model = NULL, lens = NULL, latitude = NULL, longitude = NULL"
        )


def exif_columns(db: Database) -> dict[str, tuple]:
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT storage_key, camera_make, taken_at_local IS NOT NULL, latitude, exif_read_at IS NOT NULL "
            "FROM images"
        ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_enrich_fills_in_what_was_never_read_and_is_idempotent(
    settings: Settings,
    db: Database,
    storage: ObjectStorage,
    handler: Handler,
    capsys: pytest.CaptureFixture[str],
) -> None:
    canon = photo_with_exif(make="Canon", taken="2024:07:14 10:30:00", gps=(48.8584, 2.2945))
    located = embedded_image(handler, db, storage, data=canon)
    plain = embedded_image(handler, db, storage, data=make_image(color="blue"))
    gone = embedded_image(handler, db, storage, data=photo_with_exif(make="Sony", color="green"))
    forget_exif(db)
    with db.connection() as conn:
        keys = dict(conn.execute("SELECT id, storage_key FROM images").fetchall())
    storage.delete(keys[gone])

    assert main(["enrich", "--missing"]) == 0

    after = exif_columns(db)
    assert after[keys[located]][:3] == ("Canon", True, pytest.approx(48.8584, abs=1e-5))
    assert after[keys[located]][3] and after[keys[plain]] == (None, False, None, True)  # read: nothing there
    assert after[keys[gone]] == (None, False, None, False)  # left for a later run
    out = capsys.readouterr().out
    assert "read the EXIF of 2 images; 1 left" in out and f"skipped: {gone}" in out

    assert main(["enrich", "--missing"]) == 0  # again: only what is left, and nothing changes
    assert exif_columns(db) == after
    assert "read the EXIF of 0 images; 1 left" in capsys.readouterr().out


def test_new_uploads_need_no_enrichment(
    settings: Settings, db: Database, storage: ObjectStorage, handler: Handler
) -> None:
    embedded_image(handler, db, storage, data=photo_with_exif(make="Canon"))
    assert all(values[3] for values in exif_columns(db).values())  # exif_read_at set on ingestion
