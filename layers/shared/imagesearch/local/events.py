"""The local stand-in for S3 notifications -> SQS -> the embed function.

Messages carry the exact S3 event JSON inside SQS records; the worker thread calls the embed handler with
batches, honours partial batch failures, retries with backoff and moves a message that keeps failing to a
dead-letter directory, from which `imagesearch dlq replay` sends it again.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagesearch.local.aws_events import s3_notification, sqs_message
from imagesearch.local.context import LocalLambdaContext
from imagesearch.logs import logger
from imagesearch.storage.base import ObjectInfo

Handler = Callable[[dict[str, Any], Any], Any]
ORIGINALS_PREFIX = "originals/"  # the bucket notification's filter, as in template.yaml
REPLAY_POLL_SECONDS = 1.0


@dataclass(order=True)
class _Scheduled:
    ready_at: float
    seq: int
    body: dict[str, Any] = field(compare=False)
    message_id: str = field(compare=False)
    receive_count: int = field(compare=False, default=0)


class LocalEventQueue:
    """A delay queue with a worker thread; `notify` is the storage listener."""

    def __init__(
        self,
        handler: Handler,
        *,
        bucket: str = "local",
        dlq_dir: Path,
        batch_size: int = 10,
        batch_window: float = 0.05,
        max_receives: int = 5,
        retry_delay: float = 1.0,
        replay_dir: Path | None = None,
    ) -> None:
        self._handler = handler
        self._bucket = bucket
        self.dlq_dir = dlq_dir
        self._batch_size = batch_size
        self._batch_window = batch_window
        self._max_receives = max_receives
        self._retry_delay = retry_delay
        self.replay_dir = replay_dir
        self._heap: list[_Scheduled] = []
        self._seq = itertools.count()
        self._sequencer = itertools.count(int(time.time() * 1000) << 16)
        self._cond = threading.Condition()
        self._in_flight = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="local-embed-worker", daemon=True)

    # --- producer side ---------------------------------------------------------------------------------
    def notify(self, info: ObjectInfo) -> None:
        """Storage listener: an object was written; queue its S3 notification if the filter matches."""
        if not info.key.startswith(ORIGINALS_PREFIX):
            return
        body = s3_notification(
            bucket=self._bucket,
            key=info.key,
            size=info.size,
            etag=info.etag,
            sequencer=f"{next(self._sequencer):X}",
        )
        self.send(body)

    def send(self, body: Mapping[str, Any], *, message_id: str | None = None, receive_count: int = 0) -> str:
        """Queue one message body (an S3 notification or EventBridge event); return its message id."""
        message = sqs_message(body, message_id=message_id)
        with self._cond:
            heapq.heappush(
                self._heap,
                _Scheduled(
                    time.monotonic(), next(self._seq), dict(body), message["messageId"], receive_count
                ),
            )
            self._cond.notify()
        return str(message["messageId"])

    # --- worker side -----------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until no message is queued or in flight (delayed retries included); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + self._in_flight

    def _take_replays(self) -> None:
        """Pick up messages `imagesearch dlq replay` put back (it runs in another process)."""
        if self.replay_dir is None or not self.replay_dir.is_dir():
            return
        for path in sorted(self.replay_dir.glob("*.json")):
            try:
                message = json.loads(path.read_text("utf-8"))
                path.unlink()
            except (OSError, ValueError):
                continue
            self.send(message["body"], message_id=path.stem)

    def _take_batch(self) -> list[_Scheduled] | None:
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                if self._heap and self._heap[0].ready_at <= now:
                    break
                wait = self._heap[0].ready_at - now if self._heap else REPLAY_POLL_SECONDS
                self._cond.wait(min(wait, REPLAY_POLL_SECONDS))
                self._take_replays()  # the condition's lock is re-entrant: send() may take it again
            if self._stopping:
                return None
        # Like the SQS batching window: give a burst of uploads a moment to share one invocation.
        time.sleep(self._batch_window)
        with self._cond:
            batch: list[_Scheduled] = []
            now = time.monotonic()
            while self._heap and self._heap[0].ready_at <= now and len(batch) < self._batch_size:
                batch.append(heapq.heappop(self._heap))
            self._in_flight += len(batch)
            return batch

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            try:
                failed = self._invoke(batch)
            finally:
                with self._cond:
                    self._in_flight -= len(batch)
                    self._cond.notify_all()
            for item in batch:
                if item.message_id in failed:
                    self._retry_or_dead_letter(item)

    def _invoke(self, batch: list[_Scheduled]) -> set[str]:
        records = []
        for item in batch:
            item.receive_count += 1
            records.append(
                sqs_message(item.body, receive_count=item.receive_count, message_id=item.message_id)
            )
        try:
            response = self._handler(
                {"Records": records}, LocalLambdaContext(function_name="imagesearch-embed")
            )
        except Exception:
            # The whole invocation failed (as a Lambda crash would): every message comes back.
            logger.exception("embed handler failed for the whole batch", extra={"batch": len(batch)})
            return {item.message_id for item in batch}
        failures = (response or {}).get("batchItemFailures", [])
        return {str(f["itemIdentifier"]) for f in failures}

    def _retry_or_dead_letter(self, item: _Scheduled) -> None:
        if item.receive_count >= self._max_receives:
            self.dlq_dir.mkdir(parents=True, exist_ok=True)
            path = self.dlq_dir / f"{item.message_id}.json"
            path.write_text(json.dumps({"body": item.body, "receive_count": item.receive_count}), "utf-8")
            logger.error("message moved to the dead-letter directory", extra={"path": str(path)})
            return
        delay = min(self._retry_delay * 2 ** (item.receive_count - 1), 60.0)
        with self._cond:
            item.ready_at = time.monotonic() + delay
            heapq.heappush(self._heap, item)
            self._cond.notify()
