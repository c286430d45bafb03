"""A stand-in for CloudFormation's side of a custom resource: events, and the answers PUT to ResponseURL."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from imagesearch.db.migrate import SCHEMA_REVISION


class CloudFormation:
    """Where the custom resource's answers land: a presigned ResponseURL that takes a PUT."""

    def __init__(self) -> None:
        self.answers: list[dict[str, Any]] = []
        answers = self.answers

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["content-length"]))
                answers.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def event(self, request_type: str, **extra: Any) -> dict[str, Any]:
        return {
            "RequestType": request_type,
            "ResponseURL": f"http://127.0.0.1:{self.server.server_port}/response?X-Amz-Signature=abc",
            "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/imagesearch/1",
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": "SchemaMigration",
            "ResourceType": "Custom::SchemaMigration",
            "ResourceProperties": {"Revision": SCHEMA_REVISION},
            **extra,
        }
