"""Sending message bodies to an SQS queue, ten per call (the back-fill's messages to the ingestion queue).

The client is boto3's, created on first use: credentials and endpoint come from the usual AWS variables
(`AWS_ENDPOINT_URL_SQS` for a stand-in such as moto), the region from the queue URL when it names one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from imagesearch.errors import ImageSearchError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

SQS_BATCH = 10  # entries per SendMessageBatch, SQS's maximum
_ATTEMPTS = 4
_REGION_HOST = re.compile(r"sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?|([a-z0-9-]+)\.queue\.amazonaws\.com")


def region_of(queue_url: str) -> str | None:
    """The region an AWS queue URL names (https://sqs.eu-west-1.amazonaws.com/123/name), else None."""
    match = _REGION_HOST.fullmatch(urlparse(queue_url).hostname or "")
    return (match.group(1) or match.group(3)) if match else None


class SqsSender:
    """Sends bodies to one queue; entries SQS fails for a passing reason are sent again."""

    def __init__(self, queue_url: str, *, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            import boto3

            self._client = boto3.client("sqs", region_name=region_of(self.queue_url))
        return self._client

    def _error(self, what: str) -> ImageSearchError:
        return ImageSearchError(
            f"cannot send to {self.queue_url}: {what} (the caller needs sqs:SendMessage on the queue; "
            "messages sent so far are kept, and running the command again is safe)"
        )

    def send(self, bodies: Sequence[str]) -> None:
        """Send up to ten bodies with one SendMessageBatch (more calls only for entries that failed)."""
        from botocore.exceptions import BotoCoreError, ClientError

        if len(bodies) > SQS_BATCH:
            raise ValueError(f"at most {SQS_BATCH} messages per call, got {len(bodies)}")
        pending = {str(i): body for i, body in enumerate(bodies)}
        for attempt in range(_ATTEMPTS):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": entry_id, "MessageBody": body} for entry_id, body in pending.items()
            ]
            try:
                response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except ClientError as e:  # after boto3's own retries: access, a wrong URL, a missing queue
                error = e.response.get("Error", {})
                raise self._error(f"{error.get('Code', 'error')}: {error.get('Message', '')}") from e
            except BotoCoreError as e:  # the endpoint unreachable even after boto3's retries
                raise self._error(type(e).__name__) from e
            failed = response.get("Failed", [])
            refused = [f for f in failed if f.get("SenderFault")]
            if refused:
                raise self._error(f"{refused[0].get('Code')}: {refused[0].get('Message', '')}")
            pending = {f["Id"]: pending[f["Id"]] for f in failed}
            if not pending:
                return
            time.sleep(0.2 * 2**attempt)
        raise self._error(f"{len(pending)} of {len(bodies)} messages failed {_ATTEMPTS} times")
