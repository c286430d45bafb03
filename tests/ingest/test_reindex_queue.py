"""`imagesearch reindex --model URI --queue-url URL` (back-fill messages on SQS, moto) and
`imagesearch model status` (progress from the database, an exit status to wait on)."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from support.events import sqs_event
from support.ingest import embedded_image

from imagesearch.cli.main import main
from imagesearch.config import Settings
from imagesearch.db import Database
from imagesearch.db import model_records as records
from imagesearch.errors import ImageSearchError
from imagesearch.ingest.backfill import ReindexMessage
from imagesearch.ingest.sqs_sender import SqsSender, region_of
from imagesearch.local.context import LocalLambdaContext
from imagesearch.local.functions import load_function
from imagesearch.model.manifest import load_manifest, write_manifest
from imagesearch.runtime import configure, get_runtime
from imagesearch.storage import ObjectStorage

BUCKET = "imagesearch-images"
MODEL_B = "demo-variant-b"
URI_B = f"s3://{BUCKET}/models/{MODEL_B}/"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, model_bundle: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A moto bucket holding model B under models/, and the ingestion queue."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bundle = tmp_path / "bundle-b"
    shutil.copytree(model_bundle, bundle)
    manifest = load_manifest(bundle)
    write_manifest(manifest.model_copy(update={"model_id": MODEL_B, "mean": (0.5, 0.5, 0.5)}), bundle)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        for path in bundle.iterdir():
            s3.upload_file(str(path), BUCKET, f"models/{MODEL_B}/{path.name}")
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="ingest")["QueueUrl"]
        yield {"s3": s3, "sqs": sqs, "queue_url": queue_url}


@pytest.fixture
def rollout(settings: Settings, db: Database, aws: dict[str, Any], tmp_path: Path) -> Settings:
    """The test runtime, with remote bundles cached under tmp_path."""
    value = settings.model_copy(update={"model_cache_dir": tmp_path / "model-cache"})
    configure(value)
    return value


def ready_images(db: Database, storage: ObjectStorage, count: int) -> list[uuid.UUID]:
    """`count` images uploaded and embedded by the embed function (with the active model, A)."""
    embed = load_function("embed").handler
    return [
        embedded_image(lambda event: embed(event, LocalLambdaContext()), db, storage, size=(40 + n, 40))
        for n in range(count)
    ]


def drain(aws: dict[str, Any]) -> list[dict[str, Any]]:
    """Every message in the queue, received and deleted."""
    messages = []
    while (
        batch := aws["sqs"].receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10).get("Messages")
    ):
        for message in batch:
            messages.append(json.loads(message["Body"]))
            aws["sqs"].delete_message(QueueUrl=aws["queue_url"], ReceiptHandle=message["ReceiptHandle"])
    return messages


def state_of(db: Database, model_id: str) -> str | None:
    with db.connection() as conn:
        record = records.get_model(conn, model_id)
    return record.state if record else None


def test_reindex_to_the_queue_registers_the_model_and_sends_every_missing_image_once(
    rollout: Settings, db: Database, aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ids = ready_images(db, get_runtime().storage, 5)

    code = main(["reindex", "--model", URI_B, "--queue-url", aws["queue_url"], "--batch-size", "2"])

    assert code == 0
    assert "sent 5 images in 3 messages" in capsys.readouterr().out
    with db.connection() as conn:
        record = records.get_model(conn, MODEL_B)
    assert record is not None and (record.state, record.bundle_uri, record.dim) == ("backfill", URI_B, 64)
    messages = [ReindexMessage.model_validate(body) for body in drain(aws)]
    assert sorted(len(m.image_ids) for m in messages) == [1, 2, 2]
    assert {m.model_id for m in messages} == {MODEL_B}
    assert sorted(i for m in messages for i in m.image_ids) == sorted(ids)

    # The embed function has not run: the model is incomplete, and `model status` says so with exit 1
    assert main(["model", "status", MODEL_B]) == 1
    out = capsys.readouterr().out
    assert "5 ready images lack a vector of demo-variant-b" in out
    assert f"imagesearch reindex --model {URI_B} --queue-url URL" in out


def test_the_embed_function_completes_the_backfill_and_a_second_run_sends_nothing(
    rollout: Settings, db: Database, aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ready_images(db, get_runtime().storage, 3)
    assert main(["reindex", "--model", URI_B, "--queue-url", aws["queue_url"]]) == 0
    bodies = drain(aws)
    assert len(bodies) == 1  # 3 images fit one message of the default 10

    result = load_function("embed").handler(sqs_event(*bodies), LocalLambdaContext())

    assert result == {"batchItemFailures": []}
    capsys.readouterr()
    assert main(["model", "status", MODEL_B]) == 0
    out = capsys.readouterr().out
    assert "complete: switch search to it with: imagesearch model activate demo-variant-b" in out
    assert main(["reindex", "--model", URI_B, "--queue-url", aws["queue_url"]]) == 0
    assert "nothing to send" in capsys.readouterr().out
    assert drain(aws) == []


def test_without_a_queue_an_s3_bundle_is_backfilled_in_this_process(
    rollout: Settings, db: Database, aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ready_images(db, get_runtime().storage, 3)

    assert main(["reindex", "--model", URI_B, "--batch-size", "2"]) == 0

    assert "embedded 3 images with demo-variant-b; 0 still lack a vector" in capsys.readouterr().out
    assert drain(aws) == []
    assert main(["model", "status", MODEL_B]) == 0


def test_model_status_lists_every_model_and_refuses_an_unknown_one(
    rollout: Settings, db: Database, aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "status"]) == 0
    assert capsys.readouterr().out.strip() == "no models yet"
    ready_images(db, get_runtime().storage, 3)
    with db.connection() as conn:
        records.register_model(conn, model_id="half-done", dim=8)
        ids = [row[0] for row in conn.execute("SELECT id FROM images ORDER BY id").fetchall()]
        conn.execute(
            "INSERT INTO embeddings (image_id, model_id, tenant_id, embedding) "
            "SELECT id, 'half-done', tenant_id, '[1,0,0,0,0,0,0,0]' FROM images WHERE id = %s",
            (ids[0],),
        )

    assert main(["model", "status"]) == 0  # without a model named, a report only
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    active = get_runtime().configured_model.model_id
    assert rows[active] == ["active", "3", "3", "0", "100.0%", "active"]
    assert rows["half-done"] == ["backfill", "1", "3", "2", "33.3%", "no"]

    assert main(["model", "status", "half-done"]) == 1
    assert main(["model", "status", active]) == 0
    assert main(["model", "status", "never-registered"]) == 2
    assert "no model 'never-registered'" in capsys.readouterr().err


def test_a_local_directory_cannot_be_backfilled_through_the_queue(
    rollout: Settings, aws: dict[str, Any], model_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reindex", "--model-dir", str(model_bundle), "--queue-url", aws["queue_url"]]) == 2
    assert "which the embed function cannot open: upload it" in capsys.readouterr().err
    assert main(["reindex", "--model", URI_B, "--queue-url", aws["queue_url"], "--batch-size", "101"]) == 2


def test_reindexing_a_retired_model_puts_it_back_in_backfill(
    rollout: Settings, db: Database, aws: dict[str, Any]
) -> None:
    ready_images(db, get_runtime().storage, 1)
    active = get_runtime().configured_model.model_id
    with db.connection() as conn:
        records.register_model(conn, model_id=MODEL_B, dim=64, bundle_uri=URI_B)
        records.activate(conn, MODEL_B)
        records.activate(conn, active)
    assert state_of(db, MODEL_B) == "retired"

    assert main(["reindex", "--model", URI_B, "--queue-url", aws["queue_url"]]) == 0

    assert state_of(db, MODEL_B) == "backfill"  # a roll-back: new uploads get its vectors again
    assert len(drain(aws)) == 1


class FakeSqs:
    """send_message_batch answering with the failures it is told to, call by call."""

    def __init__(self, *answers: list[dict[str, Any]] | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls.append([entry["MessageBody"] for entry in Entries])
        answer = self.answers.pop(0) if self.answers else []
        if isinstance(answer, Exception):
            raise answer
        return {"Successful": [], "Failed": [{"Id": entry["Id"], **entry} for entry in answer]}


def test_the_sender_sends_again_only_what_sqs_failed_for_a_passing_reason() -> None:
    client = FakeSqs([{"Id": "1", "SenderFault": False, "Code": "InternalError"}])
    SqsSender("https://sqs.eu-west-1.amazonaws.com/1/q", client=client).send(["a", "b", "c"])  # type: ignore[arg-type]
    assert client.calls == [["a", "b", "c"], ["b"]]


@pytest.mark.parametrize(
    "answer",
    [
        [{"Id": "0", "SenderFault": True, "Code": "InvalidMessageContents"}],
        ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessageBatch"),
    ],
)
def test_the_sender_explains_what_it_cannot_send(answer: Any) -> None:
    sender = SqsSender("https://sqs.eu-west-1.amazonaws.com/1/q", client=FakeSqs(answer))  # type: ignore[arg-type]
    with pytest.raises(ImageSearchError, match="needs sqs:SendMessage on the queue"):
        sender.send(["a"])


def test_the_region_comes_from_the_queue_url() -> None:
    assert region_of("https://sqs.eu-west-1.amazonaws.com/123456789012/ingest") == "eu-west-1"
    assert region_of("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/ingest") == "cn-north-1"
    assert region_of("http://127.0.0.1:5000/123456789012/ingest") is None
