"""Download URLs handed to clients, reused within a time window.

Signing is not free (a search page holds twenty URLs, and each costs an HMAC chain), and a URL that stays
the same for a while lets browsers cache thumbnails. A URL is reused while its window
lasts and expires at the end of the next one, so every URL handed out stays valid for at least half of
`expiry_seconds`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from imagesearch.storage.base import ObjectStorage


class UrlCache:
    def __init__(
        self,
        storage: ObjectStorage,
        *,
        expiry_seconds: int,
        max_entries: int = 20_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.window = max(1, expiry_seconds // 2)
        self.max_entries = max_entries
        self._clock = clock
        self._urls: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str:
        """A presigned GET URL for `key`, valid for at least half the expiry."""
        now = self._clock()
        window = int(now // self.window)
        with self._lock:
            cached = self._urls.get(key)
            if cached is not None and cached[0] == window:
                self._urls.move_to_end(key)
                return cached[1]
        expires_in = max(1, int((window + 2) * self.window - now))
        url = self.storage.presigned_get(key, expires_in=expires_in)
        with self._lock:
            self._urls[key] = (window, url)
            self._urls.move_to_end(key)
            while len(self._urls) > self.max_entries:
                self._urls.popitem(last=False)
        return url
