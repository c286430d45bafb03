"""Client traffic for fault tests: uploads and searches from two threads over real HTTP, every answer
counted; then waiting until every accepted upload has left `pending`."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import httpx

from support.images import make_image

COLORS = ["red", "green", "blue", "yellow", "white", "black", "grey"]
SHAPES = ["circle", "square", "triangle"]


class Traffic:
    """Uploads and searches from two threads until stopped; records every status and slow answer."""

    def __init__(self, base: str, *, pause: float = 0.05) -> None:
        self.base = base
        self.pause = pause
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.retry_after: Counter[str] = Counter()  # the Retry-After header of every 503
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

    def summary(self) -> str:
        """The answers by kind and status, as the fault table in docs/reliability.md lists them."""
        parts = []
        for kind in ("search", "upload"):
            counts = sorted((s, n) for (k, s), n in self.statuses.items() if k == kind)
            parts.append(f"{kind} " + ", ".join(f"{s} x {n}" for s, n in counts))
        return "; ".join(parts)

    def _record(self, kind: str, response: httpx.Response, started: float) -> None:
        self.slowest = max(self.slowest, time.monotonic() - started)
        self.statuses[(kind, response.status_code)] += 1
        if response.status_code >= 400 and response.headers.get("content-type") != "application/problem+json":
            self.problems_ok = False
        if response.status_code == 503:
            self.retry_after[response.headers.get("retry-after", "none")] += 1
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
                time.sleep(self.pause)

    def _searches(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                self._record("search", client.post("/search", json={"query": "a red circle"}), started)
                time.sleep(self.pause)


def settle(base_url: str, ids: list[str], timeout: float = 120) -> Counter[str]:
    """Wait until no accepted image is pending; the count of each final status."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, timeout=30) as client:
        while True:
            statuses = Counter(client.get(f"/images/{i}").json()["status"] for i in ids)
            if statuses["pending"] == 0 or time.monotonic() > deadline:
                return statuses
            time.sleep(0.5)


def assert_outage_survived(traffic: Traffic, base_url: str, *, retry_after: str) -> Counter[str]:
    """What a storage fault under traffic must leave: it was seen (upload 503s), every error was a problem
    document and no answer a 500, every 503 said `Retry-After: retry_after`, and every upload accepted
    before, during or after it ends `ready`. The final statuses, for the fault table."""
    assert traffic.problems_ok and traffic.statuses[("upload", 503)] > 0
    assert not any(status == 500 for _, status in traffic.statuses)
    assert set(traffic.retry_after) == {retry_after}  # every 503 says when to come back
    final = settle(base_url, traffic.accepted)
    print(f"accepted uploads afterwards: {len(traffic.accepted)} -> {dict(final)}")
    assert final["ready"] == len(traffic.accepted)  # stored before the fault or retried after it
    return final
