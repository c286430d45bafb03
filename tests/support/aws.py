"""moto setup shared by the tests: the bucket notifying the ingest queue, as template.yaml wires it."""

from __future__ import annotations

from typing import Any


def bucket_with_queue(s3: Any, sqs: Any, bucket: str) -> str:
    """Create `bucket` and a queue it notifies for originals/ (only originals raise events, so thumbnails
    never loop back); returns the queue URL, emptied of the s3:TestEvent the configuration sends."""
    s3.create_bucket(Bucket=bucket)
    queue_url: str = sqs.create_queue(QueueName="ingest", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": attributes["QueueArn"],
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "originals/"}]}},
                }
            ]
        },
    )
    sqs.purge_queue(QueueUrl=queue_url)
    return queue_url


def sqs_record(message: dict[str, Any]) -> dict[str, Any]:
    """An SQS message (as receive_message returns it, with its attributes) as the event source mapping
    hands it to a function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message["Attributes"],
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ingest",
        "awsRegion": "us-east-1",
    }
