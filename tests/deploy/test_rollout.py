"""The model rollout of docs/model.md ("Rolling out a new model"), end to end, while searches run.

GIVEN model A deployed (MODEL_URI on S3) and images embedded with it, and a bundle B uploaded beside it,
WHEN the operator runs, from another process, `imagesearch reindex --model s3://.../B/ --queue-url URL`,
the embed function drains the queue, `imagesearch model status B` says complete, `imagesearch model
activate B` switches search, and the functions are redeployed with MODEL_URI pointing at B,
THEN no search fails, searches answer with A before the activation and with B after it, and an image
uploaded in the middle of it all gets vectors of both models.

moto's server stands for S3 and SQS (the bucket notifies the queue for originals/, as the template wires
it); the embed handler takes SQS-shaped batches of 4 messages (EmbedBatchSize) from the queue, as the event
source mapping does; the search and upload functions' apps run in this process; the operator's commands
run as child processes with only what an operator's shell has (the database URL, the moto endpoints).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from fastapi.testclient import TestClient
from support.aws import bucket_with_queue, sqs_record
from support.bundles import variant_bundle
from support.images import make_image
from support.live import free_port
from support.moto_server import RestartableMotoServer

from imagesearch.config import Settings, load_settings
from imagesearch.db import Database
from imagesearch.local.context import LocalLambdaContext
from imagesearch.local.functions import load_function
from imagesearch.model.manifest import load_manifest
from imagesearch.runtime import configure, get_runtime, reset, using

BUCKET = "imagesearch-rollout"
MODEL_B = "demo-rollout-b"
EMBED_BATCH_SIZE = 4  # the template's EmbedBatchSize default
# The functions re-read the active model every 30 s; the test compresses that to keep it quick.
ACTIVE_TTL_SECONDS = 0.5
# Between two searches: moto's server shares this process, and a search loop without a pause would starve it.
PAUSE_SECONDS = 0.01


@dataclass
class Moto:
    endpoint: str
    s3: Any
    sqs: Any
    queue_url: str


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[Moto]:
    """moto's server (a real endpoint the operator's processes reach), with the images bucket notifying
    the ingestion queue; its state is reset afterwards."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    server = RestartableMotoServer(free_port())
    server.start()
    try:
        s3 = boto3.client("s3", endpoint_url=server.url, config=Config(s3={"addressing_style": "path"}))
        sqs = boto3.client("sqs", endpoint_url=server.url)
        yield Moto(server.url, s3, sqs, bucket_with_queue(s3, sqs, BUCKET))
    finally:
        httpx.post(f"{server.url}/moto-api/reset")
        server.stop()


def upload_bundle(moto: Moto, bundle: Path, model_id: str) -> str:
    """`aws s3 sync bundle s3://BUCKET/models/<model id>/`; the bundle's URI."""
    for path in bundle.iterdir():
        moto.s3.upload_file(str(path), BUCKET, f"models/{model_id}/{path.name}")
    return f"s3://{BUCKET}/models/{model_id}/"


def function_settings(database_url: str, moto: Moto, model_uri: str, cache: Path) -> Settings:
    """The deployed functions' configuration (template.yaml): S3 storage, the model on S3."""
    return load_settings(
        database_url=database_url,
        storage_url=f"s3://{BUCKET}",
        storage_endpoint_url=moto.endpoint,
        storage_region="us-east-1",
        model_uri=model_uri,
        model_cache_dir=cache,
        db_connect_timeout=2,
        # One process stands for every container of two functions: room for both at once.
        db_pool_max=6,
    )


def drain(moto: Moto) -> int:
    """Deliver the queue to the embed handler in SQS batches until it is empty; messages delivered."""
    handler = load_function("embed").handler
    delivered = 0
    idle = 0
    while idle < 3:  # moto may hand out an empty receive while messages are in flight
        response = moto.sqs.receive_message(
            QueueUrl=moto.queue_url, MaxNumberOfMessages=EMBED_BATCH_SIZE, AttributeNames=["All"]
        )
        messages = response.get("Messages", [])
        if not messages:
            idle += 1
            time.sleep(0.05)
            continue
        idle = 0
        event = {"Records": [sqs_record(m) for m in messages]}
        result = handler(event, LocalLambdaContext(function_name="imagesearch-embed"))
        assert result == {"batchItemFailures": []}, result
        for message in messages:
            moto.sqs.delete_message(QueueUrl=moto.queue_url, ReceiptHandle=message["ReceiptHandle"])
        delivered += len(messages)
    return delivered


@dataclass
class Search:
    started: float
    ended: float
    status: int  # 0: no answer at all
    model: str | None
    results: int


class Searches:
    """Searches through the search function's app, one after another on a thread, until stopped: by text
    (hybrid) and by a stored image (similar), in turn."""

    def __init__(self, image_id: str) -> None:
        self.image_id = image_id
        self.done: list[Search] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="searches", daemon=True)

    def __enter__(self) -> Searches:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def wait_for(self, count: int, *, model: str | None = None, timeout: float = 30) -> None:
        """Until `count` more searches ended (answered by `model`, when given)."""

        def matching() -> int:
            return sum(1 for s in list(self.done) if model is None or s.model == model)

        target = matching() + count
        deadline = time.monotonic() + timeout
        while matching() < target:
            assert time.monotonic() < deadline, f"searches stalled: {self.done[-3:]}"
            time.sleep(0.02)

    def _run(self) -> None:
        with TestClient(load_function("search").app, raise_server_exceptions=False) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                started = time.monotonic()
                try:
                    if n % 2:
                        response = client.post("/search", json={"query": "a red circle", "limit": 5})
                    else:
                        response = client.get(f"/images/{self.image_id}/similar", params={"limit": 5})
                    body = response.json() if response.status_code == 200 else {}
                    status = response.status_code
                except Exception:  # a failed search all the same
                    body, status = {}, 0
                self.done.append(
                    Search(started, time.monotonic(), status, body.get("model"), len(body.get("results", [])))
                )
                time.sleep(PAUSE_SECONDS)


def operator(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`imagesearch ARGS` from the operator's shell: another process, reaching AWS and the database."""
    return subprocess.run(
        [sys.executable, "-m", "imagesearch.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def vectors_of(db: Database, image_id: str) -> set[str]:
    with db.connection() as conn:
        rows = conn.execute("SELECT model_id FROM embeddings WHERE image_id = %s", (image_id,)).fetchall()
    return {row[0] for row in rows}


def upload(client: TestClient, color: str, shape: str) -> str:
    response = client.post("/images", files={"file": (f"{color}.png", make_image(color=color, shape=shape))})
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


def test_a_model_rollout_with_searches_running_fails_no_search(
    moto: Moto, database_url: str, db: Database, model_bundle: Path, tmp_path: Path
) -> None:
    model_a = load_manifest(model_bundle).model_id
    uri_a = upload_bundle(moto, model_bundle, model_a)
    uri_b = upload_bundle(moto, variant_bundle(model_bundle, tmp_path / "b", MODEL_B), MODEL_B)
    deployed_a = function_settings(database_url, moto, uri_a, tmp_path / "function-cache")
    configure(deployed_a)
    get_runtime().models.active_ttl_seconds = ACTIVE_TTL_SECONDS
    shell = {
        **os.environ,
        "IMAGESEARCH_DATABASE_URL": database_url,
        "IMAGESEARCH_STORAGE_ENDPOINT_URL": moto.endpoint,  # where the bundle's manifest is read
        "AWS_ENDPOINT_URL_SQS": moto.endpoint,
        "IMAGESEARCH_MODEL_CACHE_DIR": str(tmp_path / "operator-cache"),
    }
    upload_app = TestClient(load_function("upload").app)
    try:
        # GIVEN model A deployed, with images embedded by the embed function
        gallery = [
            upload(upload_app, color, shape)
            for color in ("red", "green", "blue", "yellow")
            for shape in ("circle", "square")
        ]
        drain(moto)
        with Searches(gallery[0]) as searches:
            searches.wait_for(6)

            # WHEN the back-fill goes to the queue (3 images a message: several batches)
            reindex = operator(
                "reindex", "--model", uri_b, "--queue-url", moto.queue_url, "--batch-size", "3", env=shell
            )
            assert reindex.returncode == 0, reindex.stderr
            assert "sent 8 images in 3 messages" in reindex.stdout
            # ... an image is uploaded while the back-fill is under way (its event behind the messages)
            mid_rollout = upload(upload_app, "white", "triangle")
            waiting = operator("model", "status", MODEL_B, env=shell)
            assert waiting.returncode == 1, waiting.stdout + waiting.stderr  # a pipeline would wait here
            searches.wait_for(4)

            # ... the embed function drains the queue at its own pace, searches still on A
            assert drain(moto) == 4  # 3 back-fill messages and the upload's event
            status = operator("model", "status", MODEL_B, env=shell)
            assert status.returncode == 0, status.stdout + status.stderr
            assert "complete: switch search to it" in status.stdout
            searches.wait_for(4)

            # ... and search is switched to B
            activation_started = time.monotonic()
            activate = operator("model", "activate", MODEL_B, env=shell)
            activated = time.monotonic()
            assert activate.returncode == 0, activate.stderr
            searches.wait_for(6, model=MODEL_B)

            # ... then the functions are redeployed with MODEL_URI pointing at B (old containers keep
            # serving what they started: the old runtime is left open)
            deployed_b = function_settings(database_url, moto, uri_b, tmp_path / "function-cache")
            with using(deployed_b):
                redeployed = time.monotonic()
                searches.wait_for(6)
                after_redeploy = upload(upload_app, "black", "circle")
                assert drain(moto) == 1
                searches.wait_for(2)
                searches.stop()  # before this runtime is closed, as the old one is put back
        done = searches.done
    finally:
        upload_app.close()
        reset()

    failed = [s for s in done if s.status != 200]
    empty = [s for s in done if s.status == 200 and s.results == 0]
    before = [s for s in done if s.ended < activation_started]
    after = [s for s in done if s.started > activated + ACTIVE_TTL_SECONDS]
    print(
        f"\nrollout: {len(done)} searches, {len(failed)} failed, {len(empty)} empty; "
        f"{len(before)} before the activation (A), {len(after)} after it (B), "
        f"{sum(1 for s in done if s.started > redeployed)} after the redeploy"
    )
    assert failed == [] and empty == []
    assert before and {s.model for s in before} == {model_a}
    assert after and {s.model for s in after} == {MODEL_B}
    assert {s.model for s in done} == {model_a, MODEL_B}
    # The image uploaded mid-rollout got both models' vectors; after the redeploy, B's alone (A is retired)
    assert vectors_of(db, mid_rollout) == {model_a, MODEL_B}
    assert vectors_of(db, after_redeploy) == {MODEL_B}
    assert all(vectors_of(db, image_id) == {model_a, MODEL_B} for image_id in gallery)
    with db.connection() as conn:
        states = dict(conn.execute("SELECT id, state FROM models").fetchall())
    assert states == {model_a: "retired", MODEL_B: "active"}
