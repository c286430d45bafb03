"""Filesystem object storage: the embedded default. Atomic writes; metadata in a sidecar tree."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from imagesearch.errors import ObjectNotFound
from imagesearch.storage.base import ObjectInfo, PresignedRequest, check_key
from imagesearch.storage.signing import UrlSigner

META_DIR = ".meta"

ObjectCreatedListener = Callable[[ObjectInfo], None]


class FileSystemStorage:
    """Objects are files under `root`; every put tells the listeners, as a bucket notification would."""

    def __init__(self, root: Path, *, signer: UrlSigner) -> None:
        self.root = root.resolve()
        self.signer = signer
        self._listeners: list[ObjectCreatedListener] = []
        self.root.mkdir(parents=True, exist_ok=True)

    def add_listener(self, listener: ObjectCreatedListener) -> None:
        """Call `listener` after every successful put (the local stand-in for S3 event notifications)."""
        self._listeners.append(listener)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _meta_path(self, key: str) -> Path:
        return self.root / META_DIR / (check_key(key) + ".json")

    def put(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo:
        path, meta_path = self._path(key), self._meta_path(key)
        info = ObjectInfo(
            key=key,
            size=len(data),
            content_type=content_type,
            etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            metadata=dict(metadata or {}),
            last_modified=datetime.now(UTC),
        )
        meta = {
            "content_type": info.content_type,
            "etag": info.etag,
            "metadata": dict(info.metadata),
            "last_modified": info.last_modified.isoformat() if info.last_modified else None,
        }
        # Metadata first, then the object: a reader that sees the object always finds its metadata.
        _atomic_write(meta_path, json.dumps(meta).encode("utf-8"))
        _atomic_write(path, data)
        for listener in self._listeners:
            listener(info)
        return info

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"no object {key!r}") from None

    def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(f"no object {key!r}") from None
        if not path.is_file():
            raise ObjectNotFound(f"no object {key!r}")
        try:
            meta = json.loads(self._meta_path(key).read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            meta = {}
        return ObjectInfo(
            key=key,
            size=stat.st_size,
            content_type=meta.get("content_type"),
            etag=meta.get("etag"),
            metadata=meta.get("metadata") or {},
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
        )

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        for path in (self._path(key), self._meta_path(key)):
            path.unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue  # temp files of writes in progress
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield self.head(key)

    def key_from_event(self, bucket: str, key: str) -> str | None:
        # One local "bucket": the events come from this very adapter.
        return key

    def presigned_get(self, key: str, *, expires_in: int) -> str:
        return self.signer.sign("GET", check_key(key), expires_at=int(time.time()) + expires_in)

    def presigned_put(
        self,
        key: str,
        *,
        content_type: str,
        size: int,
        expires_in: int,
    ) -> PresignedRequest:
        expires_at = int(time.time()) + expires_in
        url = self.signer.sign(
            "PUT", check_key(key), expires_at=expires_at, content_type=content_type, size=size
        )
        return PresignedRequest(
            url=url,
            method="PUT",
            headers={"Content-Type": content_type},
            expires_at=datetime.fromtimestamp(expires_at, UTC),
        )


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
