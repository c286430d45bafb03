"""The local stack's data directory: its layout, its lock, and access to it from other commands."""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from imagesearch.config import Settings, load_settings
from imagesearch.db import migrate
from imagesearch.errors import ImageSearchError
from imagesearch.local.postgres import EmbeddedPostgres

DATABASE = "imagesearch"


class DataDirInUse(ImageSearchError):
    """Another local stack holds the data directory."""


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def pg(self) -> Path:
        return self.root / "pg"

    @property
    def objects(self) -> Path:
        return self.root / "objects"

    @property
    def dead_letters(self) -> Path:
        return self.root / "dead-letters"

    @property
    def replay(self) -> Path:
        """Messages put back for the running (or next) stack to deliver again."""
        return self.root / "replay"

    def lock(self) -> IO[str]:
        """Hold the directory (a non-blocking flock); DataDirInUse names the holder's pid."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "dev.lock"
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise DataDirInUse(
                f"{self.root} is in use by another `imagesearch dev` (pid {holder}); "
                "stop it first, or pass another --data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle

    def secret(self) -> str:
        """The URL-signing secret, made once and kept, so signed URLs survive a restart."""
        path = self.root / "secret"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        return path.read_text().strip()

    def settings(self, database_url: str, **overrides: Any) -> Settings:
        """Settings pointing at this directory's database and objects."""
        values: dict[str, Any] = {
            "database_url": database_url,
            "storage_url": f"file://{self.objects}",
            "signing_secret": self.secret(),
        }
        values.update(overrides)
        return load_settings(**values)


@contextmanager
def open_data_dir(root: Path, **overrides: Any) -> Iterator[Settings]:
    """Settings for a local stack's data, from another command: attaches to the running stack's database,
    or, when no stack runs, holds the directory and runs PostgreSQL for the duration."""
    data_dir = DataDir(root.resolve())
    if not (data_dir.pg / "PG_VERSION").exists():
        raise ImageSearchError(f"{data_dir.root} holds no local stack yet: run `imagesearch dev` first")
    try:
        lock: IO[str] | None = data_dir.lock()
    except DataDirInUse:
        lock = None  # a stack runs: use its server, leave it running
    postgres = EmbeddedPostgres(data_dir.pg)
    try:
        postgres.start()
        url = postgres.ensure_database(DATABASE)
        migrate.upgrade(url)
        yield data_dir.settings(url, **overrides)
    finally:
        postgres.stop()  # a no-op when attached to the stack's server
        if lock is not None:
            lock.close()
