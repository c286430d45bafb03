"""S3 -> SQS -> embed function, end to end on moto: the production wiring without AWS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws
from support.aws import bucket_with_queue
from support.images import make_image

from imagesearch.config import Settings, load_settings
from imagesearch.db import Database
from imagesearch.local.context import LocalLambdaContext
from imagesearch.local.functions import load_function
from imagesearch.local.postgres import EmbeddedPostgres
from imagesearch.runtime import configure, reset

BUCKET = "imagesearch-images"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3")
        sqs = boto3.client("sqs")
        queue_url = bucket_with_queue(s3, sqs, BUCKET)
        yield {"s3": s3, "sqs": sqs, "queue_url": queue_url}


@pytest.fixture
def s3_settings(
    database_url: str, model_bundle: Path, aws: dict[str, Any], db: Database
) -> Iterator[Settings]:
    settings = load_settings(
        database_url=database_url, storage_url=f"s3://{BUCKET}", model_dir=model_bundle, db_connect_timeout=2
    )
    configure(settings)
    yield settings
    reset()


def receive(aws: dict[str, Any]) -> dict[str, Any]:
    """Messages as the Lambda event source mapping would deliver them."""
    response = aws["sqs"].receive_message(
        QueueUrl=aws["queue_url"], MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
    )
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m["Attributes"],
            "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ingest",
            "awsRegion": "us-east-1",
        }
        for m in response.get("Messages", [])
    ]
    return {"Records": records}


def acknowledge(aws: dict[str, Any], event: dict[str, Any], result: dict[str, Any]) -> None:
    """What the event source mapping does: delete every message not reported as failed."""
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    for record in event["Records"]:
        if record["messageId"] not in failed:
            aws["sqs"].delete_message(QueueUrl=aws["queue_url"], ReceiptHandle=record["receiptHandle"])


def test_upload_to_s3_notifies_sqs_and_the_embed_function_makes_it_ready(
    s3_settings: Settings, aws: dict[str, Any]
) -> None:
    upload = load_function("upload").app
    embed = load_function("embed").handler
    with TestClient(upload) as client:
        image = client.post("/images", files={"file": ("a b ü.png", make_image(color="green"))}).json()
        assert image["status"] == "pending"

        event = receive(aws)
        assert len(event["Records"]) == 1
        result = embed(event, LocalLambdaContext())
        acknowledge(aws, event, result)

        assert result == {"batchItemFailures": []}
        assert client.get(f"/images/{image['id']}").json()["status"] == "ready"
        # The thumbnail was written under thumbnails/, which raises no event: nothing loops back.
        assert receive(aws)["Records"] == []


def test_database_down_during_embedding_is_retried_until_it_succeeds(
    s3_settings: Settings, aws: dict[str, Any], postgres: EmbeddedPostgres
) -> None:
    upload = load_function("upload").app
    embed = load_function("embed").handler
    with TestClient(upload) as client:
        image = client.post("/images", files={"file": ("x.png", make_image(color="yellow"))}).json()

    event = receive(aws)
    postgres.stop()
    try:
        result = embed(event, LocalLambdaContext())
    finally:
        postgres.start()
    acknowledge(aws, event, result)
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}

    redelivered = receive(aws)  # the message came back (visibility timeout 0 in this test)
    assert int(redelivered["Records"][0]["attributes"]["ApproximateReceiveCount"]) == 2
    result = embed(redelivered, LocalLambdaContext())
    acknowledge(aws, redelivered, result)
    assert result == {"batchItemFailures": []}
    with psycopg.connect(s3_settings.database_url or "") as conn:
        row = conn.execute("SELECT status FROM images WHERE id = %s", (image["id"],)).fetchone()
    assert row == ("ready",)
    assert receive(aws)["Records"] == []
