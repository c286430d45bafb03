"""Label vocabularies, scoring and the label vector cache (imagesearch.model.labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.models import CountingModel

from imagesearch.db import Database, label_vectors
from imagesearch.model.embedder import Embedder
from imagesearch.model.labels import (
    DEFAULT_THRESHOLD,
    DEFAULT_VOCABULARY,
    DEMO_VOCABULARY,
    LabelVectorCache,
    VocabularyError,
    default_vocabulary_path,
    embed_vocabulary,
    load_vocabulary,
    parse_vocabulary,
    score_labels,
)


def test_a_vocabulary_gives_each_label_its_prompts_and_the_files_threshold() -> None:
    vocabulary = parse_vocabulary(
        "# colours\nthreshold: 2.5\nprompts: {label} | something {label}\nRed  \n\n"
        "prompts: a photo of {a} {label}\norange cat  # a comment\napple\n"
    )
    assert vocabulary.labels == ("red", "orange cat", "apple")
    assert vocabulary.prompts == (
        ("red", "something red"),
        ("a photo of an orange cat",),
        ("a photo of an apple",),
    )
    assert vocabulary.threshold == 2.5
    assert parse_vocabulary("red\n").prompts == (("red",),)
    assert parse_vocabulary("red\n").threshold == DEFAULT_THRESHOLD


def test_the_digest_names_what_the_vectors_depend_on() -> None:
    plain = parse_vocabulary("red\nblue\n")
    assert parse_vocabulary("# another comment\n red\nblue").sha256 == plain.sha256
    assert parse_vocabulary("threshold: 3\nred\nblue\n").sha256 == plain.sha256  # scoring, not vectors
    assert parse_vocabulary("blue\nred\n").sha256 != plain.sha256
    assert parse_vocabulary("prompts: a {label} thing\nred\nblue\n").sha256 != plain.sha256


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no labels"),
        ("# only a comment\n", "no labels"),
        ("red\nRed\n", "twice"),
        ("prompts: a photo\nred\n", "{label}"),
        ("threshold: high\nred\n", "not a number"),
        ("threshold: 0\nred\n", "(0, 10]"),
    ],
)
def test_a_vocabulary_that_makes_no_sense_is_refused(text: str, says: str) -> None:
    with pytest.raises(VocabularyError, match=says.replace("(", r"\(").replace("]", r"\]")):
        parse_vocabulary(text)


def test_the_package_vocabularies_load_and_fit_their_models(model_bundle: Path, tmp_path: Path) -> None:
    general, demo = load_vocabulary(DEFAULT_VOCABULARY), load_vocabulary(DEMO_VOCABULARY)
    assert {"red", "circle", "dog", "beach", "document"} <= set(general.labels) and len(general.labels) > 100
    assert set(demo.labels) >= {"red", "grey", "circle", "hexagon"} and "dog" not in demo.labels
    embedder = Embedder(model_bundle)
    expected = (
        DEMO_VOCABULARY if embedder.manifest.architecture.startswith("demo-shapes") else DEFAULT_VOCABULARY
    )
    assert default_vocabulary_path(embedder) == expected
    with pytest.raises(VocabularyError, match="cannot read"):
        load_vocabulary(tmp_path / "missing.txt")


def test_labels_are_those_that_stand_out_best_first() -> None:
    labels = ("red", "blue", "circle", "square", "dog")
    matrix = np.eye(5, dtype=np.float32)
    image = np.array([0.9, 0.1, 0.8, 0.15, 0.12], dtype=np.float32)
    assert score_labels(image, matrix, labels, threshold=0.5) == ["red", "circle"]
    assert score_labels(image, matrix, labels, threshold=1.2) == ["red"]
    assert score_labels(image, matrix, labels, threshold=0.5, limit=1) == ["red"]
    assert score_labels(np.full(5, 0.3, dtype=np.float32), matrix, labels) == []  # nothing stands out


def test_label_vectors_are_the_mean_of_their_prompts(model_bundle: Path) -> None:
    embedder = Embedder(model_bundle)
    vocabulary = parse_vocabulary("prompts: {label} | something {label}\nred\nblue\n")
    matrix = embed_vocabulary(embedder, vocabulary)
    prompts = embedder.embed_texts(["red", "something red"])
    mean = prompts.mean(axis=0)
    # int8 towers quantise per batch: one batch of prompts and another differ in the third decimal
    np.testing.assert_allclose(matrix[0], mean / np.linalg.norm(mean), atol=5e-3)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-6)


def test_label_vectors_are_computed_once_per_model_and_vocabulary(model_bundle: Path, db: Database) -> None:
    vocabulary = load_vocabulary(DEMO_VOCABULARY)
    model = CountingModel(Embedder(model_bundle))
    cache = LabelVectorCache(db)

    first = cache.get(model, vocabulary)
    assert cache.get(model, vocabulary) is first  # this process: no text tower, no database
    assert (model.text_calls, cache.computed) == (1, 1)
    assert not first.matrix.flags.writeable

    # another process (a cold embed function) reads them from the database
    cold_model = CountingModel(Embedder(model_bundle))
    cold = LabelVectorCache(db).get(cold_model, vocabulary)
    assert cold_model.text_calls == 0
    np.testing.assert_array_equal(cold.matrix, first.matrix)

    # another vocabulary is another entry
    other = parse_vocabulary("red\nblue\n")
    cache.get(model, other)
    assert (model.text_calls, cache.computed) == (2, 2)
    with db.connection() as conn:
        stored = label_vectors.get(conn, model_id=model.model_id, vocabulary_sha256=other.sha256)
    assert stored is not None and stored.labels == ("red", "blue") and stored.matrix.shape == (2, model.dim)


def test_stored_vectors_of_another_shape_are_computed_again(model_bundle: Path, db: Database) -> None:
    vocabulary = parse_vocabulary("red\nblue\n")
    model = CountingModel(Embedder(model_bundle))
    with db.connection() as conn:  # the same digest with other labels cannot happen, but is not trusted
        label_vectors.put(
            conn,
            model_id=model.model_id,
            vocabulary_sha256=vocabulary.sha256,
            labels=["green", "blue"],
            matrix=np.zeros((2, model.dim), dtype=np.float32),
        )
    found = LabelVectorCache(db).get(model, vocabulary)
    assert model.text_calls == 1 and np.linalg.norm(found.matrix[0]) == pytest.approx(1.0, abs=1e-5)
