"""The local stack's lifecycle: lock the data directory, start Postgres, migrate, wire storage events."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from fastapi import FastAPI

from imagesearch.config import AuthMode, Settings
from imagesearch.db import migrate
from imagesearch.errors import ObjectNotFound
from imagesearch.images import repository
from imagesearch.local.cloudevents import CloudEventPoster
from imagesearch.local.datadir import DATABASE, DataDir
from imagesearch.local.events import LocalEventQueue
from imagesearch.local.functions import load_function
from imagesearch.local.ocr import followed_by_ocr
from imagesearch.local.postgres import LOCAL_SERVER_SETTINGS, EmbeddedPostgres
from imagesearch.local.server import local_app
from imagesearch.local.webhooks import DispatcherThread
from imagesearch.logs import logger
from imagesearch.runtime import Runtime, configure, reset
from imagesearch.storage.factory import storage_from_url
from imagesearch.storage.filesystem import FileSystemStorage


@dataclass
class LocalStack:
    """Everything `imagesearch dev` runs, usable as a context manager (the tests start it in-process)."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    auth: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    pg_settings: dict[str, str] = field(default_factory=lambda: dict(LOCAL_SERVER_SETTINGS))
    # How object-created events reach the embed function: called in process with the SQS event AWS sends,
    # or POSTed as CloudEvents to the stack's own POST /events, the path of Knative and Cloud Run.
    event_delivery: Literal["in-process", "cloudevents"] = "in-process"

    settings: Settings | None = None
    runtime: Runtime | None = None
    storage: FileSystemStorage | None = None
    events: LocalEventQueue | None = None
    webhooks: DispatcherThread | None = None
    app: FastAPI | None = None
    _postgres: EmbeddedPostgres | None = None
    layout: DataDir | None = None
    _lock_handle: IO[str] | None = None
    _poster: CloudEventPoster | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def postgres(self) -> EmbeddedPostgres:
        """The stack's database server (fault-injection tests stop and start it)."""
        assert self._postgres is not None, "the stack is not started"
        return self._postgres

    def start(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.layout = DataDir(self.data_dir)
        self._lock_handle = self.layout.lock()
        try:
            self._start(self.layout)
        except BaseException:
            self.stop()
            raise

    def _start(self, layout: DataDir) -> None:
        self._postgres = EmbeddedPostgres(layout.pg, server_settings=self.pg_settings)
        self._postgres.start()
        # We hold the lock, so a server already running here is a leftover of a crashed stack: ours now.
        self._postgres.attached = False
        database_url = self._postgres.ensure_database(DATABASE)
        migrate.upgrade(database_url)

        values: dict[str, Any] = {"public_base_url": self.base_url, "db_pool_max": 8}
        if self.auth:
            values["auth_mode"] = AuthMode.API_KEY
        values.update(self.overrides)
        self.settings = layout.settings(database_url, **values)
        storage = storage_from_url(
            self.settings.storage_url or "",
            public_base_url=self.settings.public_base_url,
            signing_secret=self.settings.signing_secret,
        )
        assert isinstance(storage, FileSystemStorage)
        self.storage = storage
        # The stack's storage carries the event listener: the runtime uses this very adapter.
        # Committed image events wake the webhook dispatcher (the publisher is that thread's doorbell).
        self.webhooks = DispatcherThread(lambda: self._current_runtime().dispatcher)
        self.runtime = configure(self.settings, storage=storage, publisher=self.webhooks.publisher)
        self.webhooks.start()

        embed = load_function("embed")
        handler = embed.handler
        if self.event_delivery == "cloudevents":
            self._poster = CloudEventPoster(f"{self.base_url}/events", fallback=embed.handler)
            handler = self._poster
        if self.runtime.ocr_step is not None:  # the OCR function reads the same events: imagesearch.local.ocr
            handler = followed_by_ocr(handler, load_function("ocr").handler)
        self.events = LocalEventQueue(handler, dlq_dir=layout.dead_letters, replay_dir=layout.replay)
        storage.add_listener(self.events.notify)
        self.events.start()
        self._redrive_pending(self.runtime, self.events)
        self.app = local_app(storage)

        if self.settings.auth_mode is AuthMode.NONE:
            logger.warning(
                "auth is off: every request acts as the default tenant (start with --auth to require keys)"
            )
        logger.info("local stack ready", extra={"url": self.base_url, "data_dir": str(self.data_dir)})

    def _redrive_pending(self, runtime: Runtime, events: LocalEventQueue) -> None:
        """Events queued in memory die with the process: send again those of records still pending."""
        with runtime.database.connection() as conn:
            pending = repository.pending(conn)
        count = 0
        for _image_id, key in pending:
            try:
                events.notify(runtime.storage.head(key))
                count += 1
            except ObjectNotFound:
                continue  # a direct upload whose bytes never came: reconcile decides
        if count:
            logger.info("re-sent events of pending images", extra={"count": count})

    def _current_runtime(self) -> Runtime:
        assert self.runtime is not None, "the stack is not started"
        return self.runtime

    def stop(self) -> None:
        if self.events is not None:
            self.events.stop()
            self.events = None
        if self.webhooks is not None:
            self.webhooks.stop()
            self.webhooks = None
        if self._poster is not None:
            self._poster.close()
            self._poster = None
        reset()
        self.runtime = None
        if self._postgres is not None:
            self._postgres.stop()
            self._postgres = None
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
