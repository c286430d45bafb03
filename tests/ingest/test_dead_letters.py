"""Events that keep failing are dead-lettered, never lost, and can be replayed."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from imagesearch.ingest import dead_letters
from imagesearch.ingest.events import parse_body
from imagesearch.local import dead_letters as local_dead_letters
from imagesearch.local.events import LocalEventQueue
from imagesearch.storage import ObjectInfo


class RecordingHandler:
    """An embed handler stand-in that fails the keys in `failing` (partial batch failures)."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.done: list[str] = []
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        failures = []
        with self.lock:
            self.batches.append(len(event["Records"]))
            for record in event["Records"]:
                key = parse_body(json.loads(record["body"]))[0].key
                if key in self.failing:
                    failures.append({"itemIdentifier": record["messageId"]})
                else:
                    self.done.append(key)
        return {"batchItemFailures": failures}


def info(key: str) -> ObjectInfo:
    return ObjectInfo(key=key, size=1, etag="e")


def test_local_queue_batches_retries_and_dead_letters(tmp_path: Path) -> None:
    handler = RecordingHandler(failing={"originals/t/bad"})
    queue = LocalEventQueue(
        handler, dlq_dir=tmp_path / "dlq", retry_delay=0.01, max_receives=3, batch_window=0.05
    )
    queue.start()
    try:
        for key in ("originals/t/a", "originals/t/bad", "originals/t/b", "thumbnails/t/a.webp"):
            queue.notify(info(key))
        assert queue.drain(timeout=10)
    finally:
        queue.stop()

    assert sorted(handler.done) == ["originals/t/a", "originals/t/b"]  # thumbnails raise no event
    assert handler.batches[0] == 3  # one invocation for the burst
    letters = list((tmp_path / "dlq").glob("*.json"))
    assert len(letters) == 1
    assert json.loads(letters[0].read_text())["receive_count"] == 3


def test_local_replay_sends_dead_letters_back_to_the_running_stack(tmp_path: Path) -> None:
    data_dir = tmp_path / "stack"
    failing = RecordingHandler(failing={"originals/t/bad"})
    queue = LocalEventQueue(failing, dlq_dir=data_dir / "dead-letters", retry_delay=0.01, max_receives=2)
    queue.start()
    queue.notify(info("originals/t/bad"))
    assert queue.drain(timeout=10)
    queue.stop()
    assert [letter.summary for letter in local_dead_letters.list_local(data_dir)] == ["originals/t/bad"]

    fixed = RecordingHandler(failing=set())
    queue = LocalEventQueue(fixed, dlq_dir=data_dir / "dead-letters", replay_dir=data_dir / "replay")
    queue.start()
    try:
        assert local_dead_letters.replay_local(data_dir) == 1
        deadline_ok = False
        for _ in range(100):
            if fixed.done:
                deadline_ok = True
                break
            threading.Event().wait(0.05)
        assert deadline_ok and fixed.done == ["originals/t/bad"]
        assert local_dead_letters.list_local(data_dir) == []
    finally:
        queue.stop()


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("sqs")


def test_sqs_replay_moves_every_message_back_to_the_live_queue(sqs: Any) -> None:
    live = sqs.create_queue(QueueName="ingest")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="ingest-dlq")["QueueUrl"]
    bodies = [json.dumps({"Records": [], "n": n}) for n in range(13)]
    for body in bodies:
        sqs.send_message(QueueUrl=dlq, MessageBody=body)

    assert len(dead_letters.list_sqs(dlq)) == 13  # peeking leaves them there
    assert dead_letters.replay_sqs(dlq, live) == 13

    moved = []
    while messages := sqs.receive_message(QueueUrl=live, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            moved.append(m["Body"])
            sqs.delete_message(QueueUrl=live, ReceiptHandle=m["ReceiptHandle"])
    assert sorted(moved) == sorted(bodies)
    assert sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []


def test_a_dead_lettered_backfill_message_says_what_it_was() -> None:
    """`imagesearch dlq list` names back-fill messages (reindex --queue-url) instead of calling them
    unrecognised; a malformed one says so; S3 events keep their keys."""
    import uuid

    from imagesearch.ingest.backfill import ReindexMessage

    message = ReindexMessage(model_id="vit-b-32", image_ids=[uuid.uuid4(), uuid.uuid4()])
    letter = dead_letters.DeadLetter("m1", 5, json.loads(message.body()))
    assert letter.summary == "back-fill of vit-b-32: 2 images"
    broken = dead_letters.DeadLetter("m2", 5, {"imagesearch": "reindex", "version": 9})
    assert broken.summary == "(malformed back-fill message)"
    assert dead_letters.DeadLetter("m3", 5, {"hello": 1}).summary == "(unrecognised body)"
