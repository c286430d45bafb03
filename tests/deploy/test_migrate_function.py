"""The migrate function: CloudFormation's custom resource that migrates the schema before a deploy's code."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from support.cloudformation import CloudFormation

from imagesearch.db import migrate
from imagesearch.db.migrate import SCHEMA_REVISION
from imagesearch.local.context import LocalLambdaContext
from imagesearch.local.functions import load_function
from imagesearch.local.postgres import EmbeddedPostgres


@pytest.fixture
def cloudformation() -> Iterator[CloudFormation]:
    cfn = CloudFormation()
    yield cfn
    cfn.server.shutdown()


@pytest.fixture
def older_database(postgres: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"deploy_{uuid.uuid4().hex[:8]}"
    url = postgres.ensure_database(name)
    migrate.upgrade(url, "0003")
    monkeypatch.setenv("IMAGESEARCH_DATABASE_URL", url)
    yield url
    postgres.drop_database(name)


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = load_function("migrate").handler(event, LocalLambdaContext())
    return result


def test_create_and_update_migrate_and_answer_success(
    cloudformation: CloudFormation, older_database: str
) -> None:
    assert invoke(cloudformation.event("Create"))["Status"] == "SUCCESS"
    assert migrate.current(older_database) == SCHEMA_REVISION
    (answer,) = cloudformation.answers
    assert answer["Status"] == "SUCCESS"
    assert answer["Data"] == {"Revision": SCHEMA_REVISION}
    assert answer["LogicalResourceId"] == "SchemaMigration"
    # An update (a new revision in the template's properties) runs again; nothing left to do is fine.
    update = cloudformation.event("Update", PhysicalResourceId=answer["PhysicalResourceId"])
    assert invoke(update)["Status"] == "SUCCESS"
    assert cloudformation.answers[-1]["PhysicalResourceId"] == answer["PhysicalResourceId"]


def test_delete_leaves_the_schema_alone(cloudformation: CloudFormation, older_database: str) -> None:
    assert (
        invoke(cloudformation.event("Delete", PhysicalResourceId="imagesearch-schema"))["Status"] == "SUCCESS"
    )
    assert migrate.current(older_database) == "0003"
    assert cloudformation.answers[-1]["Status"] == "SUCCESS"


def test_a_failed_migration_answers_failed_without_the_password(
    cloudformation: CloudFormation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CloudFormation rolls the deploy back on FAILED; without an answer it would wait an hour."""
    monkeypatch.setenv(
        "IMAGESEARCH_DATABASE_URL", "postgresql://app:hunter2@127.0.0.1:1/images?connect_timeout=2"
    )
    assert invoke(cloudformation.event("Create"))["Status"] == "FAILED"
    (answer,) = cloudformation.answers
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("migration failed: ")
    assert "hunter2" not in answer["Reason"]
