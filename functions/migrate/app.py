"""Migrate function: applies the Alembic migrations as a CloudFormation custom resource, before the
functions' code is updated (they depend on it), so a deploy never runs code ahead of its schema.

Create and Update upgrade the database to the newest migration shipped with this function; Delete does
nothing (the schema and its data outlive the stack). The answer goes to CloudFormation's presigned
ResponseURL whatever happens: a handler that died without answering would hold the stack for an hour.
A failed migration answers FAILED with the reason, and CloudFormation rolls the deploy back.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

from imagesearch.config import load_settings
from imagesearch.db import migrate
from imagesearch.db.credentials import connection_source
from imagesearch.logs import logger

# `sam build` copies the repository's migrations/ next to this file (functions/migrate/Makefile).
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
PHYSICAL_ID = "imagesearch-schema"


def upgrade() -> str:
    """Apply every migration to the primary, reached as the other functions reach it (a plain URL, a
    secret, or an IAM token through the proxy); the revision the database is at afterwards."""
    source = connection_source(load_settings(), role="primary")
    assert source is not None
    url = source.url()
    migrate.upgrade(
        url,
        migrations_dir=MIGRATIONS_DIR if MIGRATIONS_DIR.is_dir() else None,
        connect_args=source.connect_kwargs(),
    )
    with psycopg.connect(url, **source.connect_kwargs()) as conn:
        row = conn.execute("SELECT max(version_num) FROM alembic_version").fetchone()
    return str(row[0]) if row and row[0] else "none"


def respond(event: dict[str, Any], status: str, reason: str, data: dict[str, str]) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:3000],
            "PhysicalResourceId": event.get("PhysicalResourceId") or PHYSICAL_ID,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
    ).encode()
    request = urllib.request.Request(
        event["ResponseURL"], data=body, method="PUT", headers={"content-type": ""}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - CloudFormation's own URL
        response.read()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    kind = event.get("RequestType")
    logger.info("schema migration requested", extra={"request_type": kind})
    status, reason, data = "SUCCESS", "", {}
    try:
        if kind in ("Create", "Update"):
            revision = upgrade()
            data = {"Revision": revision}
            reason = f"the schema is at {revision}"
            logger.info("schema migrated", extra={"revision": revision})
        else:
            reason = "nothing to do: the schema outlives the stack"
    except Exception as e:  # every failure is answered, or CloudFormation waits an hour
        status = "FAILED"
        # The type and message only: a connection error may quote the URL, never the password (libpq
        # does not print it), but a traceback could hold anything.
        reason = f"migration failed: {type(e).__name__}: {e}"
        logger.exception("schema migration failed")
    respond(event, status, reason, data)
    return {"Status": status, "Reason": reason}
