"""The dispatcher: sends due outbox rows, records each attempt, retries with backoff, gives up after N.

Claims are short transactions (`repository.claim_due`: FOR UPDATE SKIP LOCKED, then a lease), and the
POSTs happen outside any transaction, so no connection is held while a receiver is slow and any number of
dispatchers can run at once. Delivery is at least once: a dispatcher that dies after a POST but before
recording it sends it again when the lease runs out; receivers dedupe on the event id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from imagesearch.db import Database
from imagesearch.logs import logger
from imagesearch.observability import WEBHOOK_ATTEMPTS_FAILED, WEBHOOKS_DELIVERED, WEBHOOKS_GIVEN_UP, metrics
from imagesearch.webhooks import repository, signing
from imagesearch.webhooks.repository import DueDelivery
from imagesearch.webhooks.sender import Sender, SendResult

# Seconds to wait after the 1st, 2nd, ... failed attempt; the last one repeats: about 31 hours in all.
RETRY_SCHEDULE: tuple[float, ...] = (30, 120, 600, 3600, 6 * 3600, 6 * 3600, 6 * 3600, 12 * 3600)
DEFAULT_MAX_ATTEMPTS = 9

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def retry_delay(attempts: int, schedule: Sequence[float] = RETRY_SCHEDULE) -> float:
    """Seconds to wait after `attempts` failed attempts."""
    return float(schedule[min(attempts, len(schedule)) - 1])


def body_of(delivery: DueDelivery) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class Dispatcher:
    """Works off the outbox of one database."""

    def __init__(
        self,
        db: Database,
        sender: Sender,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        schedule: Sequence[float] = RETRY_SCHEDULE,
        batch_size: int = 10,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.sender = sender
        self.max_attempts = max_attempts
        self.schedule = tuple(schedule)
        self.batch_size = batch_size
        self.clock = clock
        timeout = getattr(sender, "timeout_seconds", 5.0)
        # Longer than a whole batch of receivers timing out on connect and read: never sent twice at once.
        self.lease_seconds = 2 * timeout * batch_size + 30

    def run_once(self) -> int:
        """Claim one batch of due deliveries and send them; how many were attempted."""
        with self.db.connection() as conn:
            due = repository.claim_due(
                conn, now=self.clock(), limit=self.batch_size, lease_seconds=self.lease_seconds
            )
        for delivery in due:
            self._attempt(delivery)
        return len(due)

    def run(self, *, deadline: float | None = None) -> int:
        """Batches until nothing is due (or the monotonic `deadline` passed); how many were attempted."""
        total = 0
        while deadline is None or time.monotonic() < deadline:
            sent = self.run_once()
            total += sent
            if sent < self.batch_size:
                break
        return total

    def _attempt(self, delivery: DueDelivery) -> None:
        body = body_of(delivery)
        headers = {
            "Content-Type": "application/json",
            signing.SIGNATURE_HEADER: signing.sign(delivery.secret, body, timestamp=int(time.time())),
            "Imagesearch-Event-Id": str(delivery.event_id),
            "Imagesearch-Event-Type": delivery.event_type,
        }
        result = self.sender(delivery.url, body, headers)
        self._record(delivery, result)

    def _record(self, delivery: DueDelivery, result: SendResult) -> None:
        now = self.clock()
        with self.db.connection() as conn:
            if result.delivered:
                assert result.status_code is not None
                repository.record_delivered(conn, delivery.id, status_code=result.status_code, at=now)
                metrics.add(WEBHOOKS_DELIVERED)
                return
            give_up = delivery.attempts >= self.max_attempts
            next_at = (
                None if give_up else now + timedelta(seconds=retry_delay(delivery.attempts, self.schedule))
            )
            repository.record_failure(
                conn,
                delivery.id,
                status_code=result.status_code,
                error=result.error or "failed",
                next_attempt_at=next_at,
            )
        metrics.add(WEBHOOK_ATTEMPTS_FAILED)
        if give_up:
            metrics.add(WEBHOOKS_GIVEN_UP)
        logger.info(
            "webhook attempt failed",
            extra={
                "delivery_id": str(delivery.id),
                "attempts": delivery.attempts,
                "status_code": result.status_code,
                "error": result.error,
                "given_up": give_up,
            },
        )
