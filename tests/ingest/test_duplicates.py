"""Near-duplicate groups: assigned when an image is embedded, merged, kept per tenant, and back-filled."""

from __future__ import annotations

import io
import threading
import uuid
from uuid import UUID

import psycopg
import pytest
from PIL import Image
from support.ingest import Handler, embedded_image

from imagesearch.auth.tenant import get_or_create_tenant
from imagesearch.cli.main import main
from imagesearch.config import DEFAULT_TENANT_ID, Settings
from imagesearch.db import Database
from imagesearch.demo.photos import photo_jpeg
from imagesearch.enrichment.phash import hamming, phash
from imagesearch.images import duplicates
from imagesearch.ingest.duplicates import PhashStep, group_image
from imagesearch.ingest.enrich import EnrichSource, pending
from imagesearch.runtime import get_runtime
from imagesearch.storage import ObjectStorage

TENANT = UUID(DEFAULT_TENANT_ID)


def variant(data: bytes, *, scale: float = 1.0, quality: int = 85) -> bytes:
    """The picture resized and recompressed: other bytes, the same photo."""
    image = Image.open(io.BytesIO(data))
    resized = image.resize((round(image.width * scale), round(image.height * scale)))
    out = io.BytesIO()
    resized.save(out, "JPEG", quality=quality)
    return out.getvalue()


def groups(db: Database) -> dict[UUID, UUID | None]:
    with db.connection() as conn:
        return dict(conn.execute("SELECT id, duplicate_group FROM images").fetchall())


def hashes(db: Database) -> dict[UUID, int | None]:
    with db.connection() as conn:
        return dict(conn.execute("SELECT id, phash FROM images").fetchall())


def test_a_resized_recompressed_copy_joins_the_original_and_another_photo_does_not(
    settings: Settings, db: Database, storage: ObjectStorage, handler: Handler
) -> None:
    original_bytes = photo_jpeg(800, 600, seed=1)
    original = embedded_image(handler, db, storage, data=original_bytes)
    assert groups(db)[original] is None  # alone: no group

    copy = embedded_image(handler, db, storage, data=variant(original_bytes, scale=0.5, quality=40))
    other = embedded_image(handler, db, storage, data=photo_jpeg(800, 600, seed=2))

    found = groups(db)
    assert found[original] == found[copy] == original  # the group is named after its first image
    assert found[other] is None
    stored = hashes(db)  # of the reduced decode ingestion makes for its models: within 2 bits of a full one
    mine, theirs = stored[original], stored[other]
    assert mine is not None and hamming(mine, phash(Image.open(io.BytesIO(original_bytes)))) <= 2
    assert theirs is not None and hamming(mine, theirs) > duplicates.DISTANCE


def test_another_tenants_copy_is_never_grouped_with_it(
    settings: Settings, db: Database, storage: ObjectStorage, handler: Handler
) -> None:
    with db.connection() as conn:
        other_tenant = get_or_create_tenant(conn, "other").id
    data = photo_jpeg(640, 480, seed=3)
    mine = embedded_image(handler, db, storage, data=data)
    theirs = embedded_image(handler, db, storage, tenant_id=str(other_tenant), data=variant(data, quality=60))
    found = groups(db)
    assert found[mine] is None and found[theirs] is None


def ready_image(db: Database, *, tenant_id: UUID = TENANT) -> UUID:
    """A ready record with no pHash yet (as before enrichment)."""
    image_id = uuid.uuid4()
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO images (id, tenant_id, storage_key, status) VALUES (%s, %s, %s, 'ready')",
            (image_id, tenant_id, f"originals/{tenant_id}/{image_id}"),
        )
    return image_id


def flip(value: int, bits: range) -> int:
    """`value` with these bits flipped, as a signed 64-bit integer."""
    value &= (1 << 64) - 1
    for bit in bits:
        value ^= 1 << bit
    return value - (1 << 64) if value >= 1 << 63 else value


def test_an_image_matching_two_groups_merges_them_under_the_earliest(db: Database) -> None:
    base = -0x3C3C_5A5A_0F0F_A5A5
    first, first_copy, second, second_copy, bridge = (ready_image(db) for _ in range(5))
    far = flip(base, range(0, 12))  # 12 bits from `base`: no match (no vectors either)
    with db.connection() as conn:
        assert duplicates.assign(conn, tenant_id=TENANT, image_id=first, phash=base) is None
        assert duplicates.assign(conn, tenant_id=TENANT, image_id=first_copy, phash=flip(base, range(60, 62)))
        assert duplicates.assign(conn, tenant_id=TENANT, image_id=second, phash=far) is None
        assert duplicates.assign(conn, tenant_id=TENANT, image_id=second_copy, phash=flip(far, range(62, 64)))
    before = groups(db)
    assert before[first] == before[first_copy] == first and before[second] == before[second_copy] == second

    with db.connection() as conn:  # 6 bits from each
        merged = duplicates.assign(conn, tenant_id=TENANT, image_id=bridge, phash=flip(base, range(0, 6)))
    assert merged == first
    assert set(groups(db).values()) == {first}


def test_a_fault_while_grouping_is_recorded_and_the_rest_of_the_save_stands(db: Database) -> None:
    image_id = ready_image(db)
    with db.connection() as conn:
        # a hash past 64 bits: PostgreSQL refuses it, inside the savepoint
        why = group_image(conn, tenant_id=TENANT, image_id=image_id, phash=1 << 64)
        conn.execute("UPDATE images SET title = 'saved' WHERE id = %s", (image_id,))
    assert why is not None and "out of range" in why
    with db.connection() as conn:
        assert conn.execute("SELECT title, phash FROM images WHERE id = %s", (image_id,)).fetchone() == (
            "saved",
            None,
        )


def test_two_near_duplicates_saved_at_once_end_in_one_group(db: Database, database_url: str) -> None:
    """The second save waits for the first's commit (the tenant's advisory lock), then finds it."""
    a, b = ready_image(db), ready_image(db)
    value = -0x1234_5678_9ABC_DEF0

    def second_save() -> None:
        with db.connection() as conn:
            duplicates.assign(conn, tenant_id=TENANT, image_id=b, phash=flip(value, range(0, 2)))

    with db.connection() as conn, psycopg.connect(database_url, autocommit=True) as spy:
        duplicates.assign(conn, tenant_id=TENANT, image_id=a, phash=value)
        thread = threading.Thread(target=second_save)
        thread.start()
        waiting = None
        while waiting is None and thread.is_alive():  # until the second save waits for this one's commit
            waiting = spy.execute(
                "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()
        assert waiting is not None
    thread.join()
    found = groups(db)
    assert found[a] == found[b] == a


def test_the_back_fill_hashes_and_groups_images_ingested_before(
    settings: Settings,
    db: Database,
    storage: ObjectStorage,
    handler: Handler,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = photo_jpeg(640, 480, seed=4)
    original = embedded_image(handler, db, storage, data=data)
    copy = embedded_image(handler, db, storage, data=variant(data, scale=1.5, quality=70))
    alone = embedded_image(handler, db, storage, data=photo_jpeg(640, 480, seed=5))
    ingested = hashes(db)
    with db.connection() as conn:
        conn.execute("UPDATE images SET phash = NULL, duplicate_group = NULL")

    step = PhashStep()
    assert "phash" in [s.name for s in get_runtime().enrich_steps()]
    rows = pending(db, step, limit=10)
    assert len(rows) == 3
    for row in rows:
        source = EnrichSource(storage, row, get_runtime().enrich_limits)
        assert step.enrich(db, source)
        assert not step.enrich(db, source)  # done: stored only while unread

    assert hashes(db) == ingested  # the same reduced decode as ingestion's
    found = groups(db)
    assert found[original] == found[copy] == original and found[alone] is None

    # the same by the command line, as an operator runs it after deploying
    with db.connection() as conn:
        conn.execute("UPDATE images SET phash = NULL, duplicate_group = NULL")
    assert main(["enrich", "--missing", "--step", "phash"]) == 0
    assert "phash: enriched 3 images; 0 left" in capsys.readouterr().out
    assert hashes(db) == ingested and groups(db) == found
