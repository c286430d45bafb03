"""Faults: the database or storage goes away mid-ingestion and mid-search. The API answers 503 problems
(no hangs, no 500s), recovers by itself, and every accepted upload still ends ready or failed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.live import live_stack
from support.tmpfs import read_only, tmpfs
from support.traffic import Traffic, assert_outage_survived, settle

from imagesearch.local.stack import LocalStack


@pytest.fixture
def stack(tmp_path: Path, model_bundle: Path) -> Iterator[LocalStack]:
    with live_stack(tmp_path / "stack", model_dir=model_bundle, db_connect_timeout=2) as running:
        yield running


@pytest.fixture
def stack_on_tmpfs(tmp_path: Path, model_bundle: Path) -> Iterator[LocalStack]:
    """A live stack whose objects directory is a tmpfs of its own (to remount read-only)."""
    data_dir = tmp_path / "stack"
    with (
        tmpfs(data_dir / "objects"),
        live_stack(data_dir, model_dir=model_bundle, db_connect_timeout=2) as running,
    ):
        yield running


def test_database_restart_during_ingestion_and_search(stack: LocalStack) -> None:
    with Traffic(stack.base_url) as traffic:
        time.sleep(2)
        stack.postgres.stop()
        time.sleep(3)
        stack.postgres.start()
        time.sleep(4)  # long enough for both kinds of request to succeed again

    print(f"\ndatabase outage: {dict(traffic.statuses)}, slowest {traffic.slowest:.1f} s")
    assert traffic.problems_ok  # every error was a problem+json document
    assert (
        traffic.statuses[("upload", 503)] > 0 and traffic.statuses[("search", 503)] > 0
    )  # the outage was seen
    assert not any(status == 500 for _, status in traffic.statuses)
    assert traffic.slowest < 15  # answered, not hung (the pool's connect timeout is 2 s)
    # It recovered by itself: the last requests of each kind succeeded.
    with httpx.Client(base_url=stack.base_url) as client:
        assert client.post("/search", json={"query": "red"}).status_code == 200
        assert client.get("/health").status_code == 200
    final = settle(stack.base_url, traffic.accepted)
    print(f"accepted uploads afterwards: {dict(final)}")
    assert final["pending"] == 0 and final["ready"] + final["failed"] == len(traffic.accepted)
    assert final["ready"] == len(traffic.accepted)  # nothing lost, nothing failed for a passing outage


def test_storage_read_only_during_ingestion(stack_on_tmpfs: LocalStack) -> None:
    """The objects directory turns read-only for 2 s (a real remount, which stops root too): uploads in
    that window get 503s; an image whose thumbnail write meets it is retried by the queue."""
    stack = stack_on_tmpfs
    assert stack.layout is not None
    with Traffic(stack.base_url) as traffic:
        time.sleep(1.5)
        with read_only(stack.layout.objects):
            time.sleep(2)
        time.sleep(2)

    print(f"\nstorage read-only: {traffic.summary()}, slowest {traffic.slowest:.1f} s")
    assert_outage_survived(traffic, stack.base_url, retry_after="1")
