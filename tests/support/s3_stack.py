"""The production wiring over real HTTP, on moto's servers: the API (the upload and search functions'
routes) served by uvicorn with S3 storage, the bucket notifying an SQS queue, and the embed handler fed
from that queue as the Lambda event source mapping does it (batches, partial batch failures, redelivery
after the visibility timeout). S3 and SQS are served separately, so S3 can go down while SQS stays up."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from imagesearch.config import load_settings
from imagesearch.local.context import LocalLambdaContext
from imagesearch.local.functions import load_function
from imagesearch.local.server import local_app
from imagesearch.runtime import configure, reset
from support.aws import bucket_with_queue, sqs_record
from support.faulty_s3 import FaultyS3Proxy, faulty_s3
from support.live import free_port, serving
from support.moto_server import RestartableMotoServer

BUCKET = "imagesearch-faults"
VISIBILITY_TIMEOUT = 1  # seconds before a failed message is delivered again


class EventSourceMapping:
    """Receives batches from the queue, calls the embed handler, deletes every message it did not report
    as failed; the others come back after the visibility timeout. On a thread until stopped."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs, self.queue_url = sqs, queue_url
        self.handler = load_function("embed").handler
        self.deliveries = 0  # messages handed to the function, redeliveries included
        self.failures = 0  # messages it reported as failed (to be delivered again)
        self.paused = threading.Event()  # set: messages wait in the queue
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-source-mapping", daemon=True)

    def __enter__(self) -> EventSourceMapping:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.paused.is_set():
                time.sleep(0.05)
                continue
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
            )
            messages = response.get("Messages", [])
            if not messages:
                time.sleep(0.05)
                continue
            event = {"Records": [sqs_record(m) for m in messages]}
            try:
                result = self.handler(event, LocalLambdaContext(function_name="imagesearch-embed"))
                failed = {str(f["itemIdentifier"]) for f in result["batchItemFailures"]}
            except Exception:  # the invocation failed as a whole (as a crashed Lambda): all come back
                failed = {m["MessageId"] for m in messages}
            self.deliveries += len(messages)
            self.failures += len(failed)
            for message in messages:
                if message["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@dataclass
class S3Stack:
    base_url: str  # the API
    s3_server: RestartableMotoServer  # what the API's S3 endpoint leads to (stop and start it)
    proxy: FaultyS3Proxy | None  # between the API and S3, when asked for
    s3: Any  # a client straight to the S3 server (no proxy), for setting up and checking
    ingest: EventSourceMapping


@contextmanager
def s3_stack(*, database_url: str, model_dir: Path, proxy: bool = False) -> Iterator[S3Stack]:
    """Everything started for the block and stopped after it; moto's state is reset at the end.
    Needs AWS credentials and region in the environment (any values)."""
    with ExitStack() as stack:
        s3_server = RestartableMotoServer(free_port())
        sqs_server = RestartableMotoServer(free_port())
        for server in (s3_server, sqs_server):
            server.start()
            stack.callback(server.stop)
        stack.callback(httpx.post, f"{sqs_server.url}/moto-api/reset")  # last: backends are process-wide

        path_style = Config(s3={"addressing_style": "path"})
        s3 = boto3.client("s3", endpoint_url=s3_server.url, config=path_style)
        sqs = boto3.client("sqs", endpoint_url=sqs_server.url)
        queue_url = bucket_with_queue(s3, sqs, BUCKET)
        sqs.set_queue_attributes(
            QueueUrl=queue_url, Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT)}
        )

        faults = stack.enter_context(faulty_s3(s3_server.url)) if proxy else None
        settings = load_settings(
            database_url=database_url,
            storage_url=f"s3://{BUCKET}",
            storage_endpoint_url=faults.url if faults else s3_server.url,
            storage_region="us-east-1",
            model_dir=model_dir,
            db_connect_timeout=2,
        )
        configure(settings)
        stack.callback(reset)
        base_url = stack.enter_context(serving(local_app()))
        ingest = stack.enter_context(EventSourceMapping(sqs, queue_url))
        yield S3Stack(base_url=base_url, s3_server=s3_server, proxy=faults, s3=s3, ingest=ingest)
