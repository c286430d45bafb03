"""A connection storm: many Lambda-like clients at once, each with its own one-connection pool.

Each client is a `Runtime` of its own (as a Lambda container is): it uploads one image, embeds it as the
embed function would on its object-created event, searches for it and reads it back, all through the
application's own services. A monitor samples the server's client backends meanwhile. Used by
tests/reliability/test_proxy.py and bench/proxy_storm.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from imagesearch.auth.tenant import get_or_create_tenant
from imagesearch.config import load_settings
from imagesearch.images.object_keys import original_key
from imagesearch.ingest.events import ObjectEvent
from imagesearch.runtime import Runtime
from imagesearch.search.plan import plan_search
from support.images import make_image


@dataclass
class StormResult:
    clients: int
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    uploaded: int = 0
    ready: int = 0
    found: int = 0  # clients whose search returned their own image
    peak_server_connections: int = 0
    latencies: dict[str, list[float]] = field(default_factory=dict)

    def record(self, step: str, seconds: float) -> None:
        self.latencies.setdefault(step, []).append(seconds)


def server_backends(direct_url: str) -> int:
    """Client backends connected to the database of `direct_url` now (this probe's own excluded)."""
    with psycopg.connect(direct_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


class _Monitor(threading.Thread):
    """Samples the client backends of one database every `interval` seconds over a direct connection."""

    def __init__(self, direct_url: str, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.direct_url, self.interval = direct_url, interval
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.direct_url, autocommit=True) as conn:
            while not self._stop_event.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                    "AND datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()
                self.peak = max(self.peak, int(row[0]) if row else 0)
                self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def run_storm(
    url: str,
    *,
    clients: int,
    direct_url: str,
    model: Any,
    storage_dir: Path,
    settings: dict[str, Any] | None = None,
    on_done: Callable[[], object] = lambda: None,
) -> StormResult:
    """`clients` threads, each a runtime with a one-connection pool on `url`, released together."""
    result = StormResult(clients=clients)
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        runtime = Runtime(
            load_settings(
                database_url=url,
                db_pool_min=0,
                db_pool_max=1,
                storage_url=f"file://{storage_dir}",
                signing_secret="storm",
                public_base_url="http://storm",
                **(settings or {}),
            ),
            configured_model=model,
        )
        step = "connect"
        try:
            barrier.wait(timeout=120)
            started = time.perf_counter()

            def timed(name: str, since: float) -> None:
                with lock:
                    result.record(name, time.perf_counter() - since)

            with runtime.database.connection() as conn:
                tenant = get_or_create_tenant(conn, f"storm-{index}")
            timed("connect", started)
            step, since = "upload", time.perf_counter()
            data = make_image(color="red", shape="square", size=(64 + index, 48))
            record, _ = runtime.images.upload(
                tenant,
                data,
                filename=f"storm-{index}.png",
                title=f"storm {index}",
                description=None,
                tags=None,
            )
            timed(step, since)
            with lock:
                result.uploaded += 1
            # What the embed function does with the object-created event of the upload.
            step, since = "embed", time.perf_counter()
            key = original_key(tenant.id, record.id)
            info = runtime.storage.head(key)
            runtime.ingestor.ingest(
                [ObjectEvent("local", key, info.size, info.etag, None, "ObjectCreated:Put")]
            )
            timed(step, since)
            step, since = "search", time.perf_counter()
            found = runtime.search.search(
                tenant, plan_search(query="a red square", image_id=None, mode="hybrid", limit=5)
            )
            timed(step, since)
            step, since = "get", time.perf_counter()
            again = runtime.images.get(tenant, record.id)
            timed(step, since)
            timed("client", started)
            with lock:
                result.ready += again.status == "ready"
                result.found += any(hit.id == record.id for hit in found.results)
        except Exception as e:  # every failure is counted, none may pass unseen
            with lock:
                result.errors.append(f"client {index}, {step}: {type(e).__name__}: {e}")
        finally:
            runtime.close()
            on_done()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    monitor = _Monitor(direct_url)
    monitor.start()
    barrier.wait(timeout=120)
    started = time.perf_counter()
    for thread in threads:
        thread.join(timeout=600)
    result.seconds = time.perf_counter() - started
    result.peak_server_connections = monitor.stop()
    return result
