"""Outbound events: image ready, failed and deleted, to webhooks (signed) and, on AWS, EventBridge."""
