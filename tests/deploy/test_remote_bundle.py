"""MODEL_URI: a bundle fetched from storage once per container, tower by tower, checked file by file."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws
from support.images import make_image

from imagesearch.config import load_settings
from imagesearch.errors import ModelUnavailable
from imagesearch.model.embedder import Embedder
from imagesearch.model.manifest import MANIFEST_NAME, Variant, load_manifest
from imagesearch.model.remote_bundle import FileSource, RemoteBundle, RemoteBundleEmbedder, open_remote_bundle
from imagesearch.runtime import using

BUCKET = "imagesearch-models"
PREFIX = "models/demo/"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, model_bundle: Path) -> Iterator[Any]:
    """A moto S3 bucket holding the test bundle under models/demo/."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        for path in model_bundle.iterdir():
            if path.is_file():
                client.upload_file(str(path), BUCKET, PREFIX + path.name)
        yield client


def local_files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_an_s3_bundle_arrives_tower_by_tower_and_embeds_as_the_local_one(
    s3: Any, model_bundle: Path, tmp_path: Path
) -> None:
    embedder = RemoteBundleEmbedder(open_remote_bundle(f"s3://{BUCKET}/{PREFIX}", tmp_path))
    manifest = load_manifest(model_bundle)
    variant = embedder.variant
    assert embedder.model_id == manifest.model_id
    assert local_files(embedder.bundle_dir) == {MANIFEST_NAME}  # nothing else until a tower is used

    texts = embedder.embed_texts(["a red circle", "a blue square"])
    assert local_files(embedder.bundle_dir) == {
        MANIFEST_NAME,
        manifest.tokenizer.file,
        manifest.text.files[variant],
    }
    images = embedder.embed_images([make_image(color="red")])
    assert manifest.image.files[variant] in local_files(embedder.bundle_dir)

    local = Embedder(model_bundle, variant=variant)
    np.testing.assert_allclose(texts, local.embed_texts(["a red circle", "a blue square"]), atol=1e-6)
    np.testing.assert_allclose(images, local.embed_images([make_image(color="red")]), atol=1e-6)


def test_model_uri_is_read_once_per_process(s3: Any, model_bundle: Path, tmp_path: Path) -> None:
    settings = load_settings(model_uri=f"s3://{BUCKET}/{PREFIX}", model_cache_dir=tmp_path)
    with using(settings) as runtime:
        first = runtime.configured_model
        # GIVEN the bundle is gone from storage, WHEN asked again, THEN the container keeps what it read
        s3.delete_object(Bucket=BUCKET, Key=PREFIX + MANIFEST_NAME)
        assert runtime.configured_model is first
        assert first.model_id == load_manifest(model_bundle).model_id
        # a runtime that replaces this one (same bundle options) keeps the opened bundle too
        with using(settings) as replacement:
            assert replacement.configured_model is first


def test_a_file_that_does_not_match_the_manifest_is_refused_and_never_placed(
    s3: Any, model_bundle: Path, tmp_path: Path
) -> None:
    manifest = load_manifest(model_bundle)
    tokenizer = manifest.tokenizer.file
    s3.put_object(Bucket=BUCKET, Key=PREFIX + tokenizer, Body=b'{"tampered": true}')
    embedder = RemoteBundleEmbedder(open_remote_bundle(f"s3://{BUCKET}/{PREFIX}", tmp_path))

    with pytest.raises(ModelUnavailable, match=f"{tokenizer} from s3://.*does not match the manifest"):
        embedder.embed_texts(["a red circle"])
    assert local_files(embedder.bundle_dir) <= {MANIFEST_NAME, manifest.text.files[embedder.variant]}
    assert not [p for p in embedder.bundle_dir.iterdir() if p.name.endswith(".part")]


def test_a_missing_bundle_says_where_it_looked(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(
        ModelUnavailable, match=r"manifest.json of the model bundle at s3://imagesearch-models/nope/"
    ):
        open_remote_bundle(f"s3://{BUCKET}/nope/", tmp_path)


def test_a_manifest_naming_a_file_outside_the_bundle_is_refused(model_bundle: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    manifest = json.loads((model_bundle / MANIFEST_NAME).read_text("utf-8"))
    manifest["files"]["../escape.onnx"] = next(iter(manifest["files"].values()))
    (source / MANIFEST_NAME).write_text(json.dumps(manifest), "utf-8")
    with pytest.raises(ModelUnavailable, match="unsafe file name '../escape.onnx'"):
        open_remote_bundle(source.as_uri(), tmp_path / "cache")


class CountingSource(FileSource):
    """A file:// source that counts downloads; each one lasts long enough for a second thread to ask."""

    def __init__(self, root: Path, *, slow: bool = False) -> None:
        super().__init__(root, root.as_uri() + "/")
        self.downloads: list[str] = []
        self._slow = slow

    def download(self, name: str, dest: Path) -> None:
        self.downloads.append(name)
        if self._slow:
            time.sleep(0.2)  # widens the window in which an unlocked fetch would download twice
        super().download(name, dest)


def test_two_threads_asking_at_once_download_each_file_once(model_bundle: Path, tmp_path: Path) -> None:
    source = CountingSource(model_bundle, slow=True)
    bundle = RemoteBundle(source, tmp_path)
    variant: Variant = "int8" if "int8" in bundle.manifest.variants else "fp32"
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def fetch() -> None:
        start.wait()
        try:
            bundle.fetch_tower("image", variant)
        except BaseException as e:  # reported below
            failures.append(e)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert source.downloads == [bundle.manifest.image.files[variant]]


def test_a_new_container_reuses_verified_files_and_replaces_damaged_ones(
    model_bundle: Path, tmp_path: Path
) -> None:
    first = RemoteBundle(CountingSource(model_bundle), tmp_path)
    variant: Variant = "int8" if "int8" in first.manifest.variants else "fp32"
    first.fetch_tower("text", variant)
    text_file = first.manifest.text.files[variant]

    # GIVEN another process on the same cache, one file intact and the tokenizer damaged
    (first.dir / first.manifest.tokenizer.file).write_bytes(b"damaged")
    second_source = CountingSource(model_bundle)
    second = RemoteBundle(second_source, tmp_path)
    second.fetch_tower("text", variant)

    assert second.dir == first.dir
    assert second_source.downloads == [first.manifest.tokenizer.file]
    assert load_manifest(second.dir).verify_file(second.dir, text_file)
    assert load_manifest(second.dir).verify_file(second.dir, first.manifest.tokenizer.file)


def test_a_changed_bundle_at_the_same_uri_gets_its_own_directory(model_bundle: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for path in model_bundle.iterdir():
        if path.is_file():
            (source / path.name).write_bytes(path.read_bytes())
    before = open_remote_bundle(source.as_uri(), tmp_path / "cache").dir
    manifest = json.loads((source / MANIFEST_NAME).read_text("utf-8"))
    manifest["created_at"] = "2030-01-01T00:00:00Z"  # a re-export: same model, another manifest
    (source / MANIFEST_NAME).write_text(json.dumps(manifest), "utf-8")
    after = open_remote_bundle(source.as_uri(), tmp_path / "cache").dir
    assert before != after and before.parent == after.parent
