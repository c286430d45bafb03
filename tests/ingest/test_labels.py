"""Zero-shot labels at ingestion and as the "labels" enrichment step (imagesearch.ingest.labels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient
from support.images import demo_shape
from support.ingest import ingest_pending
from support.models import CountingModel

from imagesearch.config import Settings
from imagesearch.db import Database
from imagesearch.images import repository
from imagesearch.ingest.enrich import EnrichSource, Limits, Pending, enrich_missing, pending_count
from imagesearch.ingest.labels import LabelStep
from imagesearch.model.embedder import Embedder
from imagesearch.runtime import configure, get_runtime


def upload(client: TestClient, data: bytes, **fields: Any) -> UUID:
    response = client.post("/images", files={"file": ("shape.png", data)}, data=fields)
    assert response.status_code == 201, response.text
    return UUID(response.json()["id"])


def labels_of(db: Database, image_id: UUID) -> tuple[list[str], list[str], str | None]:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT auto_tags, tags, auto_tags_model FROM images WHERE id = %s", (image_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def test_a_red_circle_on_grey_is_labelled_red_and_circle_apart_from_the_users_tags(
    settings: Settings, db: Database, client: TestClient
) -> None:
    image_id = upload(client, demo_shape(), tags=["holiday"])
    ingest_pending(db)

    auto_tags, tags, model = labels_of(db, image_id)
    assert {"red", "circle"} <= set(auto_tags)
    assert tags == ["holiday"]
    labeller = get_runtime().labeller
    assert labeller is not None and model == labeller.version()
    assert model.startswith(get_runtime().models.active().id + ":")
    shown = client.get(f"/images/{image_id}").json()
    assert {"red", "circle"} <= set(shown["auto_tags"]) and shown["tags"] == ["holiday"]


def test_a_blue_square_gets_its_own_labels(settings: Settings, db: Database, client: TestClient) -> None:
    image_id = upload(client, demo_shape(color="blue", shape="square", background="white"))
    ingest_pending(db)
    auto_tags, _, _ = labels_of(db, image_id)
    assert "blue" in auto_tags and "red" not in auto_tags and "circle" not in auto_tags


def test_labels_off_leaves_auto_tags_empty(settings: Settings, db: Database, client: TestClient) -> None:
    configure(settings.model_copy(update={"labels_enabled": False}))
    image_id = upload(client, demo_shape())
    ingest_pending(db)
    assert labels_of(db, image_id)[::2] == ([], None)
    assert all(step.name != "labels" for step in get_runtime().enrich_steps())


def test_a_replaced_vocabulary_relabels_through_the_step(
    settings: Settings, db: Database, client: TestClient, tmp_path: Path
) -> None:
    image_id = upload(client, demo_shape())
    ingest_pending(db)
    before = labels_of(db, image_id)
    assert "red" in before[0]

    # GIVEN a deployment's own vocabulary: the shapes only
    vocabulary = tmp_path / "labels.txt"
    vocabulary.write_text("threshold: 1.0\nprompts: {label} | {a} {label}\ncircle\nsquare\ntriangle\nstar\n")
    configure(settings.model_copy(update={"labels_file": vocabulary}))
    runtime = get_runtime()
    (step,) = [s for s in runtime.enrich_steps() if s.name == "labels"]
    assert isinstance(step, LabelStep)
    assert pending_count(db, step) == 1  # the model is the same, the vocabulary is not

    # WHEN the back-fill runs the step
    report = enrich_missing(db, runtime.storage, step, limits=runtime.enrich_limits)

    # THEN the image has labels of the new vocabulary, and nothing is left
    auto_tags, _, model = labels_of(db, image_id)
    assert report.stored == 1
    assert auto_tags == ["circle"] and model == step.labeller.version() and model != before[2]
    assert pending_count(db, step) == 0
    # the stored vector was used: the step never read the original
    source = EnrichSource(runtime.storage, Pending(image_id, UUID(int=1), "gone"), Limits(1, 1))
    assert step.enrich(db, source) is False  # already labelled with this version: nothing stored


def test_an_image_never_labelled_is_labelled_by_the_step(
    settings: Settings, db: Database, client: TestClient
) -> None:
    image_id = upload(client, demo_shape())
    ingest_pending(db)
    with db.connection() as conn:
        repository.set_auto_tags(conn, image_id, [], model=None)  # as before labels existed
    runtime = get_runtime()
    (step,) = [s for s in runtime.enrich_steps() if s.name == "labels"]
    assert pending_count(db, step) == 1
    enrich_missing(db, runtime.storage, step, limits=runtime.enrich_limits)
    assert {"red", "circle"} <= set(labels_of(db, image_id)[0])


def test_a_cold_embed_function_reads_the_label_vectors_instead_of_running_the_text_tower(
    settings: Settings, db: Database, client: TestClient, model_bundle: Path
) -> None:
    warm = CountingModel(Embedder(model_bundle))
    configure(settings, configured_model=warm)
    first = upload(client, demo_shape())
    ingest_pending(db)
    assert warm.text_calls == 1  # the whole vocabulary in one call, once
    second = upload(client, demo_shape(color="green", shape="star"))
    ingest_pending(db)
    assert warm.text_calls == 1

    cold = CountingModel(Embedder(model_bundle))  # a new container: nothing in memory
    configure(settings, configured_model=cold)
    third = upload(client, demo_shape(color="yellow", shape="triangle"))
    ingest_pending(db)
    assert cold.text_calls == 0
    assert {"red", "circle"} <= set(labels_of(db, first)[0])
    assert {"green", "star"} <= set(labels_of(db, second)[0])
    assert {"yellow", "triangle"} <= set(labels_of(db, third)[0])


def test_a_labelling_error_never_fails_the_upload_and_the_step_labels_it_later(
    settings: Settings, db: Database, client: TestClient, tmp_path: Path
) -> None:
    vocabulary = tmp_path / "labels.txt"
    vocabulary.write_text("threshold: 1.0\ncircle\nsquare\nstar\n")
    configure(settings.model_copy(update={"labels_file": vocabulary}))
    runtime = get_runtime()
    assert runtime.ingestor.labeller is not None  # the file was fine when the function started
    vocabulary.write_text("# emptied by a bad deploy\n")

    image_id = upload(client, demo_shape())
    ingest_pending(db)

    with db.connection() as conn:
        row = conn.execute("SELECT status, enrich_failures FROM images WHERE id = %s", (image_id,)).fetchone()
    assert row is not None and row[0] == "ready"
    assert "VocabularyError" in row[1]["labels"]
    assert labels_of(db, image_id)[::2] == ([], None)

    vocabulary.write_text("threshold: 1.0\ncircle\nsquare\nstar\n")
    (step,) = [s for s in runtime.enrich_steps() if s.name == "labels"]
    assert enrich_missing(db, runtime.storage, step, limits=runtime.enrich_limits).stored == 1
    assert labels_of(db, image_id)[0] == ["circle"]
    with db.connection() as conn:
        row = conn.execute("SELECT enrich_failures FROM images WHERE id = %s", (image_id,)).fetchone()
    assert row is not None and "labels" not in row[0]
