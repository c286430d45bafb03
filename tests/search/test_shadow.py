"""Shadow mode: the candidate runs beside the live search; agreement is measured, recorded and reported."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.gallery import AddImages

from imagesearch.cli.main import main
from imagesearch.config import Settings
from imagesearch.db import Database
from imagesearch.runtime import configure
from imagesearch.search.shadow import overlap_at_k, rank_biased_overlap


def test_overlap_and_rbo() -> None:
    assert overlap_at_k([1, 2, 3], [3, 2, 1], 3) == 1.0
    assert overlap_at_k([1, 2, 3], [4, 5, 6], 3) == 0.0
    assert overlap_at_k([1, 2, 3, 4], [1, 2, 9, 8], 4) == 0.5
    assert rank_biased_overlap(list(range(10)), list(range(10))) == pytest.approx(1.0)
    assert rank_biased_overlap([1, 2, 3], [4, 5, 6]) == 0.0
    swapped_top = rank_biased_overlap([2, 1, *range(3, 10)], list(range(1, 10)))
    swapped_bottom = rank_biased_overlap([*range(1, 8), 9, 8], list(range(1, 10)))
    assert swapped_top < swapped_bottom < 1.0  # the top of the ranking weighs more
    assert overlap_at_k([], [], 5) == rank_biased_overlap([], []) == 1.0


def with_shadow(settings: Settings, strategy: dict[str, Any], **extra: Any) -> None:
    configure(
        settings.model_copy(
            update={"shadow_strategy": json.dumps(strategy), "shadow_sample_rate": 1.0, **extra}
        )
    )


def comparisons(db: Database) -> list[tuple[Any, ...]]:
    with db.connection() as conn:
        return conn.execute(
            "SELECT candidate_strategy, outcome, overlap, rbo, k, live_ms > 0, candidate_ms IS NOT NULL "
            "FROM shadow_comparisons ORDER BY id"
        ).fetchall()


@pytest.fixture
def gallery(add_images: AddImages) -> None:
    add_images(
        *(
            {"name": f"{color}-{shape}", "color": color, "shape": shape, "title": f"{color} {shape}"}
            for color in ("red", "green", "blue", "yellow")
            for shape in ("circle", "square", "triangle")
        )
    )


def test_an_identical_candidate_agrees_fully(
    client: TestClient, gallery: None, settings: Settings, db: Database
) -> None:
    with_shadow(settings, {"name": "same"})
    for query in ("red circle", "blue", "square"):
        assert client.post("/search", json={"query": query, "limit": 5}).status_code == 200

    rows = comparisons(db)
    assert [row[:2] for row in rows] == [("same", "ok")] * 3
    assert all(row[2] == 1.0 and row[3] == pytest.approx(1.0) and row[4] == 5 for row in rows)
    assert all(row[5] and row[6] for row in rows)


def test_a_different_candidate_is_detected(
    client: TestClient, gallery: None, settings: Settings, db: Database
) -> None:
    # Keyword evidence ignored: the fused ranking of a keyword-heavy query changes.
    with_shadow(settings, {"name": "vector-only", "weight_keyword": 0.0})
    assert client.post("/search", json={"query": "green triangle", "limit": 3}).status_code == 200
    ((name, outcome, overlap, rbo, *_),) = comparisons(db)
    assert (name, outcome) == ("vector-only", "ok")
    assert rbo < 1.0 and overlap <= 1.0


def test_paging_and_unsampled_requests_are_not_compared(
    client: TestClient, gallery: None, settings: Settings, db: Database
) -> None:
    with_shadow(settings, {"name": "same"}, shadow_sample_rate=0.0)
    client.post("/search", json={"query": "red"})
    assert comparisons(db) == []
    with_shadow(settings, {"name": "same"})
    page = client.post("/search", json={"query": "red", "limit": 2}).json()
    client.post("/search", json={"query": "red", "limit": 2, "cursor": page["next_cursor"]})
    assert len(comparisons(db)) == 1


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/search"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_slow_or_broken_candidate_never_fails_the_user(
    client: TestClient, gallery: None, settings: Settings, db: Database, silent_endpoint: str
) -> None:
    with_shadow(settings, {"name": "hangs", "endpoint": silent_endpoint}, shadow_timeout_ms=200)
    response = client.post("/search", json={"query": "yellow"})
    assert response.status_code == 200 and response.json()["results"]
    with_shadow(settings, {"name": "unknown-model", "model_id": "no-such-model"})
    assert client.post("/search", json={"query": "yellow"}).status_code == 200

    assert [row[:3] for row in comparisons(db)] == [
        ("hangs", "timeout", None),
        ("unknown-model", "error", None),
    ]


def test_shadow_report_prints_agreement_by_strategy(
    client: TestClient, gallery: None, settings: Settings, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    with_shadow(settings, {"name": "same"})
    client.post("/search", json={"query": "red circle"})
    with_shadow(settings, {"name": "vector-only", "weight_keyword": 0.0})
    client.post("/search", json={"query": "green triangle", "limit": 3})

    capsys.readouterr()  # the metrics (EMF lines) printed so far
    assert main(["shadow", "report"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["candidate", "n", "ok"]
    lines = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert set(lines) == {"same", "vector-only"}
    assert lines["same"][1:6] == ["1", "1", "0", "0", "1.000"]
