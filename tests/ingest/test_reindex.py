"""Back-filling a second model beside the active one, then switching search to it, losing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.images import make_image

from imagesearch.config import Settings
from imagesearch.db import Database
from imagesearch.db import model_records as model_rows
from imagesearch.errors import ImageSearchError
from imagesearch.ingest.reindex import activate, missing_count, reindex
from imagesearch.model.embedder import Embedder
from imagesearch.runtime import get_runtime
from imagesearch.storage import ObjectStorage

SECOND_MODEL_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def second_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another model (a tiny ViT with random weights), exported through the real export path."""
    from imagesearch.export.bundle import export_pretrained

    out = tmp_path_factory.mktemp("second") / "bundle"
    export_pretrained("tiny-test-vit", "none", out, model_config=SECOND_MODEL_CONFIG)
    return out


def ingest(settings: Settings, storage: ObjectStorage, colors: list[str]) -> None:
    ingestor = get_runtime().ingestor
    events = []
    for color in colors:
        key = f"originals/00000000-0000-0000-0000-000000000001/{color}.png"
        info = storage.put(key, make_image(color=color), content_type="image/png")
        from imagesearch.ingest.events import ObjectEvent

        events.append(ObjectEvent("local", key, info.size, info.etag, None, "ObjectCreated:Put"))
    ingestor.ingest(events)


def vectors_by_model(db: Database) -> dict[str, int]:
    with db.connection() as conn:
        rows = conn.execute("SELECT model_id, count(*) FROM embeddings GROUP BY model_id").fetchall()
    return {row[0]: row[1] for row in rows}


@pytest.mark.export
def test_reindex_backfills_new_uploads_follow_and_activation_switches(
    settings: Settings, db: Database, storage: ObjectStorage, second_bundle: Path
) -> None:
    first = get_runtime().configured_model.model_id
    ingest(settings, storage, ["red", "green", "blue"])
    second = Embedder(second_bundle)
    assert vectors_by_model(db) == {first: 3}

    done: list[int] = []
    report = reindex(
        get_runtime().models,
        storage,
        second,
        bundle_uri=str(second_bundle),
        max_image_pixels=10**7,
        batch_size=2,
        progress=done.append,
    )

    assert report.embedded == 3 and sum(done) == 3
    assert vectors_by_model(db) == {first: 3, second.model_id: 3}
    with db.connection() as conn:
        assert model_rows.get_model(conn, second.model_id).state == "backfill"  # type: ignore[union-attr]
        assert model_rows.active_model(conn).id == first  # type: ignore[union-attr]

    # While it is back-filled, new uploads get vectors of both models: coverage never slips.
    ingest(settings, storage, ["yellow"])
    assert vectors_by_model(db) == {first: 4, second.model_id: 4}
    assert missing_count(db, second.model_id) == 0

    activate(db, second.model_id)
    with db.connection() as conn:
        assert model_rows.active_model(conn).id == second.model_id  # type: ignore[union-attr]
        assert model_rows.get_model(conn, first).state == "retired"  # type: ignore[union-attr]
    assert vectors_by_model(db) == {first: 4, second.model_id: 4}  # the old vectors stay until dropped

    # A second run has nothing left to do (resumable: it only looks for missing vectors).
    assert (
        reindex(get_runtime().models, storage, second, bundle_uri=None, max_image_pixels=10**7).embedded == 0
    )


def test_activation_refuses_a_model_that_does_not_cover_the_images(
    settings: Settings, db: Database, storage: ObjectStorage
) -> None:
    ingest(settings, storage, ["red"])
    with db.connection() as conn:
        model_rows.register_model(conn, model_id="other-model", dim=8)
    with pytest.raises(ImageSearchError, match="1 ready images have no vector"):
        activate(db, "other-model")
    with pytest.raises(ImageSearchError, match="no model"):
        activate(db, "never-registered")
    activate(db, "other-model", force=True)
    with db.connection() as conn:
        assert model_rows.active_model(conn).id == "other-model"  # type: ignore[union-attr]


def test_model_commands_list_and_activate(
    settings: Settings, db: Database, storage: ObjectStorage, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest(settings, storage, ["red", "blue"])
    with db.connection() as conn:
        model_rows.register_model(conn, model_id="next-model", dim=8)
    from imagesearch.cli.main import main

    assert main(["model", "list"]) == 0
    listing = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in listing.splitlines()[2:]}
    configured = get_runtime().configured_model
    assert rows[configured.model_id][1:] == ["active", str(configured.dim), "2", "100%"]
    assert rows["next-model"][1:] == ["backfill", "8", "0", "0%"]

    assert main(["model", "activate", "next-model"]) == 2  # it covers no image yet
    assert "2 ready images have no vector" in capsys.readouterr().err
    assert main(["model", "activate", "next-model", "--force"]) == 0
    with db.connection() as conn:
        assert model_rows.active_model(conn).id == "next-model"  # type: ignore[union-attr]
