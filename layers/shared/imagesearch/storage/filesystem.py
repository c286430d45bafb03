"""Filesystem object storage: the embedded default. Atomic writes; metadata in a sidecar tree.

A missing object is ObjectNotFound; every other OSError (disk full, read-only, I/O error) is
StorageUnavailable, a 503 the caller may retry (permission denied: StorageMisconfigured), logged as an error
with its path and errno; the caller's detail names neither.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imagesearch.errors import InvalidRequest, ObjectNotFound, StorageMisconfigured, StorageUnavailable
from imagesearch.storage.base import ObjectInfo, PresignedRequest, check_key
from imagesearch.storage.signing import UrlSigner

META_DIR = ".meta"

# No object can be at such a path (a parent is a file, the key names a directory, a segment is too long).
_NOT_FOUND = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG})
# S3 would store these keys; a filesystem cannot (a key inside another object's "directory", and so on).
_KEY_CLASH = frozenset({errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG})
# The deployment's fault (the objects directory belongs to someone else), not a passing condition.
_MISCONFIGURED = frozenset({errno.EACCES, errno.EPERM})

ObjectCreatedListener = Callable[[ObjectInfo], None]


class FileSystemStorage:
    """Objects are files under `root`; every put tells the listeners, as a bucket notification would."""

    def __init__(self, root: Path, *, signer: UrlSigner) -> None:
        self.root = root.resolve()
        self.signer = signer
        self._listeners: list[ObjectCreatedListener] = []
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _unavailable("open", e) from e

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
            "size": info.size,
            "metadata": dict(info.metadata),
            "last_modified": info.last_modified.isoformat() if info.last_modified else None,
        }
        try:
            _write_object(path, data, meta_path, json.dumps(meta).encode("utf-8"))
        except OSError as e:
            if e.errno in _KEY_CLASH:
                raise InvalidRequest("the object key cannot be stored on this filesystem") from None
            raise _unavailable("put", e) from e
        for listener in self._listeners:
            listener(info)
        return info

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as e:
            if e.errno in _NOT_FOUND:
                raise ObjectNotFound(f"no object {key!r}") from None
            raise _unavailable("get", e) from e

    def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = path.stat()
            meta = self._read_meta(key) if stat.S_ISREG(st.st_mode) else None
        except OSError as e:
            if e.errno in _NOT_FOUND:
                raise ObjectNotFound(f"no object {key!r}") from None
            raise _unavailable("head", e) from e
        if meta is None:
            raise ObjectNotFound(f"no object {key!r}")
        if meta.get("size", st.st_size) != st.st_size:
            meta = {}  # written for bytes that never took the object's place (see _write_object)
        return ObjectInfo(
            key=key,
            size=st.st_size,
            content_type=meta.get("content_type"),
            etag=meta.get("etag"),
            metadata=meta.get("metadata") or {},
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def _read_meta(self, key: str) -> dict[str, Any]:
        try:
            meta = json.loads(self._meta_path(key).read_bytes())
        except OSError as e:
            if e.errno in _NOT_FOUND:
                return {}  # objects put by other tools have none
            raise
        except ValueError:
            return {}
        return meta if isinstance(meta, dict) else {}

    def exists(self, key: str) -> bool:
        try:
            return stat.S_ISREG(self._path(key).stat().st_mode)
        except OSError as e:
            if e.errno in _NOT_FOUND:
                return False
            raise _unavailable("head", e) from e

    def delete(self, key: str) -> None:
        for path in (self._path(key), self._meta_path(key)):
            try:
                path.unlink(missing_ok=True)
            except OSError as e:
                if e.errno not in _NOT_FOUND:  # no object there: deleting it is done, as on S3
                    raise _unavailable("delete", e) from e

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        def fail(e: OSError) -> None:
            # os.walk would skip a directory it cannot read: a listing with holes looks like lost objects.
            if e.errno not in _NOT_FOUND:
                raise _unavailable("list", e) from e

        for dirpath, dirnames, filenames in os.walk(self.root, onerror=fail):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue  # temp files of writes in progress
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    try:
                        yield self.head(key)
                    except ObjectNotFound:
                        continue  # deleted while we listed

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


def _unavailable(operation: str, e: OSError) -> StorageUnavailable:
    """The project's error for an OSError that is not "no such object", logged with what the caller
    is not told (the path)."""
    code = errno.errorcode.get(e.errno or 0, "unknown")
    reason = e.strerror or code
    from imagesearch.logs import logger  # here: Powertools imports botocore, which presigning avoids

    misconfigured = e.errno in _MISCONFIGURED
    logger.error(
        "filesystem storage failed" + (": a configuration problem" if misconfigured else ""),
        extra={"operation": operation, "errno": code, "reason": reason, "path": e.filename},
    )
    error = StorageMisconfigured if misconfigured else StorageUnavailable
    return error(f"object storage failed ({operation}): {reason.lower()}")


def _write_object(path: Path, data: bytes, meta_path: Path, meta: bytes) -> None:
    """The bytes to a temporary file, then the metadata, then the bytes under their name.

    A full disk or a read-only filesystem fails in one of the first two steps, before anything is visible
    (a reader that sees the object always finds its metadata). Only a failed rename leaves metadata with
    no object, or beside an older one: it is removed here if it can be, and head() ignores metadata whose
    size is not the object's."""
    tmp = _write_temp(path, data)
    try:
        _atomic_write(meta_path, meta)
        try:
            os.replace(tmp, path)
        except OSError:
            with suppress(OSError):
                meta_path.unlink(missing_ok=True)
            raise
    except BaseException:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def _write_temp(path: Path, data: bytes) -> Path:
    """`data` in a new hidden file beside `path` (list() skips it); removed again if writing fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        with suppress(OSError):  # a filesystem gone read-only refuses this too; the first error matters
            tmp.unlink(missing_ok=True)
        raise
    return tmp
