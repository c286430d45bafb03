"""The local stack's webhook dispatcher: a thread that sends due deliveries, woken after each committed
image event and otherwise once a second (retries come due on their own). On AWS the webhooks function
does this (functions/webhooks/app.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from imagesearch.logs import logger
from imagesearch.webhooks.dispatch import Dispatcher
from imagesearch.webhooks.publisher import CallbackPublisher

POLL_SECONDS = 1.0


class DispatcherThread:
    """Runs `dispatcher()` (the current runtime's dispatcher) until stopped."""

    def __init__(self, dispatcher: Callable[[], Dispatcher], *, poll_seconds: float = POLL_SECONDS) -> None:
        self._dispatcher = dispatcher
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-webhook-dispatcher", daemon=True)
        # Hand this to the runtime (`configure(..., publisher=...)`): each committed event wakes the thread.
        self.publisher = CallbackPublisher(self._wake.set)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self._dispatcher().run()
            except Exception as e:  # the database is down, say: try again at the next tick
                logger.warning("webhook dispatch failed", extra={"error": f"{type(e).__name__}: {e}"})
            self._wake.wait(self.poll_seconds)
