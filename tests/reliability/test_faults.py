"""Faults: the database or storage goes away mid-ingestion and mid-search. The API answers 503 problems
(no hangs, no 500s), recovers by itself, and every accepted upload still ends ready or failed."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.images import make_image
from support.live import live_stack

from imagesearch.errors import StorageUnavailable
from imagesearch.local.stack import LocalStack

COLORS = ["red", "green", "blue", "yellow", "white", "black", "grey"]
SHAPES = ["circle", "square", "triangle"]


class Traffic:
    """Uploads and searches from two threads until stopped; records every status and slow answer."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.accepted: list[str] = []
        self.problems_ok = True
        self.slowest = 0.0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._uploads), threading.Thread(target=self._searches)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _record(self, kind: str, response: httpx.Response, started: float) -> None:
        self.slowest = max(self.slowest, time.monotonic() - started)
        self.statuses[(kind, response.status_code)] += 1
        if response.status_code >= 400 and response.headers.get("content-type") != "application/problem+json":
            self.problems_ok = False
        if kind == "upload" and response.status_code == 201:
            self.accepted.append(response.json()["id"])

    def _uploads(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                data = make_image(color=COLORS[n % 7], shape=SHAPES[n % 3], size=(64 + n, 64))
                started = time.monotonic()
                self._record("upload", client.post("/images", files={"file": (f"{n}.png", data)}), started)
                time.sleep(0.05)

    def _searches(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                self._record("search", client.post("/search", json={"query": "a red circle"}), started)
                time.sleep(0.05)


def settle(stack: LocalStack, ids: list[str], timeout: float = 120) -> Counter[str]:
    """Wait until no accepted image is pending; the count of each final status."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        while True:
            statuses = Counter(client.get(f"/images/{i}").json()["status"] for i in ids)
            if statuses["pending"] == 0 or time.monotonic() > deadline:
                return statuses
            time.sleep(0.5)


@pytest.fixture
def stack(tmp_path: Path, model_bundle: Path) -> Any:
    with live_stack(tmp_path / "stack", model_dir=model_bundle, db_connect_timeout=2) as running:
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
    final = settle(stack, traffic.accepted)
    print(f"accepted uploads afterwards: {dict(final)}")
    assert final["pending"] == 0 and final["ready"] + final["failed"] == len(traffic.accepted)
    assert final["ready"] == len(traffic.accepted)  # nothing lost, nothing failed for a passing outage


def test_storage_outage_during_ingestion(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = stack.storage
    assert storage is not None
    real_get, real_put = storage.get, storage.put
    down = threading.Event()

    def get(key: str) -> bytes:
        if down.is_set():
            raise StorageUnavailable("injected: storage answered 503")
        return real_get(key)

    def put(key: str, data: bytes, **kwargs: Any) -> Any:
        if down.is_set():
            raise StorageUnavailable("injected: storage answered 503")
        return real_put(key, data, **kwargs)

    monkeypatch.setattr(storage, "get", get)
    monkeypatch.setattr(storage, "put", put)
    with Traffic(stack.base_url) as traffic:
        time.sleep(1.5)
        down.set()
        time.sleep(2)
        down.clear()
        time.sleep(2)

    print(f"\nstorage outage: {dict(traffic.statuses)}, slowest {traffic.slowest:.1f} s")
    assert traffic.problems_ok and traffic.statuses[("upload", 503)] > 0
    assert not any(status == 500 for _, status in traffic.statuses)
    final = settle(stack, traffic.accepted)
    print(f"accepted uploads afterwards: {dict(final)}")
    assert final["ready"] == len(traffic.accepted)  # stored before the outage or retried after it
