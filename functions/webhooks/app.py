"""Webhooks function: sends the webhook outbox's due deliveries (imagesearch.webhooks.dispatch).

Invoked every minute by an EventBridge schedule (retries come due on their own), and by the rule on the
stack's own `imagesearch.image.*` events, so a delivery usually leaves within a second of its change.
Each invocation works until nothing is due or its time is nearly up; several may run at once (claims skip
each other's rows).
"""

from __future__ import annotations

import time
from typing import Any

from imagesearch.logs import logger
from imagesearch.observability import metrics, tracer
from imagesearch.runtime import get_runtime


@tracer.capture_lambda_handler
@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Any event (the schedule's, an image event from the bus): it only says "look now"."""
    dispatcher = get_runtime().dispatcher
    remaining = context.get_remaining_time_in_millis() / 1000.0
    # No batch starts once less than a claim's lease is left: the lease outlasts a whole batch of receivers
    # timing out, so the batch started last is finished and recorded before the function is stopped.
    margin = dispatcher.lease_seconds
    attempted = dispatcher.run(deadline=time.monotonic() + max(remaining - margin, 1.0))
    return {"attempted": attempted}
