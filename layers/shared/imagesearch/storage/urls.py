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
        return self.get_many([key])[0]

    def get_many(self, keys: list[str]) -> list[str]:
        """`get` for each of `keys` (a search page's twenty): the clock read and the lock taken once."""
        now = self._clock()
        window = int(now // self.window)
        urls: list[str | None] = []
        with self._lock:
            cache = self._urls
            for key in keys:
                cached = cache.get(key)
                if cached is not None and cached[0] == window:
                    cache.move_to_end(key)
                    urls.append(cached[1])
                else:
                    urls.append(None)
        if None not in urls:
            return urls  # type: ignore[return-value]  # every one cached
        expires_in = max(1, int((window + 2) * self.window - now))
        for i, key in enumerate(keys):
            if urls[i] is None:
                urls[i] = self._sign(key, window, expires_in)
        return urls  # type: ignore[return-value]  # every one set

    def _sign(self, key: str, window: int, expires_in: int) -> str:
        url = self.storage.presigned_get(key, expires_in=expires_in)
        with self._lock:
            self._urls[key] = (window, url)
            self._urls.move_to_end(key)
            while len(self._urls) > self.max_entries:
                self._urls.popitem(last=False)
        return url
