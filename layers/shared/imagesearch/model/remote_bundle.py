"""A model bundle at MODEL_URI (s3://bucket/prefix/ or file:///dir/), fetched once per container.

The manifest is read first; it names the local directory (`model_cache_dir/<model id>-<manifest digest>`),
so a changed bundle at the same URI never mixes with an old download. Then each file is fetched only when
a tower needs it (a search function never downloads the image tower unless it searches by image), into a
temporary file that is checked against the manifest's sha256 and size and renamed into place: a file at
its final name is always complete and verified, whatever another thread or process does meanwhile.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlparse

import numpy as np

from imagesearch.errors import ModelUnavailable
from imagesearch.logs import logger
from imagesearch.model.embedder import Embedder, ImageInput
from imagesearch.model.manifest import MANIFEST_NAME, Manifest, Tower, Variant, sha256_file

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class BundleSource(Protocol):
    """Where a bundle's files come from."""

    uri: str

    def read(self, name: str) -> bytes: ...

    def download(self, name: str, dest: Path) -> None: ...


class FileSource:
    """A bundle directory on a local or mounted filesystem (file:///dir/)."""

    def __init__(self, root: Path, uri: str) -> None:
        self.root, self.uri = root, uri

    def read(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except OSError as e:
            raise ModelUnavailable(f"cannot read {name} of the model bundle at {self.uri}: {e}") from e

    def download(self, name: str, dest: Path) -> None:
        try:
            shutil.copyfile(self.root / name, dest)
        except OSError as e:
            raise ModelUnavailable(f"cannot copy {name} of the model bundle at {self.uri}: {e}") from e


class S3Source:
    """A bundle under a prefix of an S3 (or S3-compatible) bucket."""

    def __init__(self, bucket: str, prefix: str, uri: str, *, client: S3Client) -> None:
        self.bucket, self.prefix, self.uri, self._client = bucket, prefix, uri, client

    def _key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _unavailable(self, name: str, error: Exception) -> ModelUnavailable:
        from botocore.exceptions import ClientError

        detail = type(error).__name__
        if isinstance(error, ClientError):
            detail = str(error.response.get("Error", {}).get("Code", detail))
        return ModelUnavailable(f"cannot download {name} of the model bundle at {self.uri}: {detail}")

    def read(self, name: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(name))
            return bytes(response["Body"].read())
        except (BotoCoreError, ClientError) as e:
            raise self._unavailable(name, e) from e

    def download(self, name: str, dest: Path) -> None:
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        # Ranged GETs in parallel: a 90 MB tower arrives in a fraction of the time of one stream.
        config = TransferConfig(multipart_chunksize=16 * 1024 * 1024, max_concurrency=8)
        try:
            self._client.download_file(self.bucket, self._key(name), str(dest), Config=config)
        except (BotoCoreError, ClientError) as e:
            raise self._unavailable(name, e) from e


def source_for(uri: str, *, endpoint_url: str | None = None, region: str | None = None) -> BundleSource:
    """The source of an s3:// or file:// bundle URI (the prefix is a directory: a trailing / is implied)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return FileSource(Path(unquote(parsed.netloc + parsed.path)), uri)
    if parsed.scheme == "s3" and parsed.netloc:
        import boto3
        from botocore.config import Config

        prefix = parsed.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                retries={"total_max_attempts": 3, "mode": "standard"},  # three in all
                s3={"addressing_style": "path"} if endpoint_url else {},
            ),
        )
        return S3Source(parsed.netloc, prefix, uri, client=client)
    raise ModelUnavailable(f"MODEL_URI must be s3://bucket/prefix/ or file:///dir/, got {uri!r}")


def _check_name(name: str) -> str:
    """A file name from a downloaded manifest must stay inside the bundle directory."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or len(path.parts) != 1 or name in (".", "..") or "\\" in name:
        raise ModelUnavailable(f"the manifest lists an unsafe file name {name!r}")
    return name


class RemoteBundle:
    """A local copy of a remote bundle, filled file by file; each file is verified before it appears."""

    def __init__(self, source: BundleSource, cache_dir: Path) -> None:
        self.source = source
        raw = source.read(MANIFEST_NAME)
        try:
            manifest = Manifest.model_validate_json(raw)
        except ValueError as e:
            raise ModelUnavailable(f"{source.uri}{MANIFEST_NAME} is not a valid manifest: {e}") from e
        for name in manifest.files:
            _check_name(name)
        self.manifest = manifest
        self.dir = cache_dir / f"{manifest.model_id}-{hashlib.sha256(raw).hexdigest()[:16]}"
        self._lock = threading.Lock()
        self._ready: set[str] = set()
        self.dir.mkdir(parents=True, exist_ok=True)
        manifest_path = self.dir / MANIFEST_NAME
        if not manifest_path.exists() or manifest_path.read_bytes() != raw:
            self._place(MANIFEST_NAME, lambda tmp: tmp.write_bytes(raw))

    def fetch(self, names: Sequence[str]) -> Path:
        """Make sure the listed files are present and verified; the bundle directory."""
        for name in names:
            if name in self._ready:
                continue
            with self._lock:  # one download per file, however many threads ask
                if name not in self._ready:
                    self._fetch_one(name)
                    self._ready.add(name)
        return self.dir

    def fetch_tower(self, tower: Tower, variant: Variant) -> Path:
        """The tokenizer (text tower) and the tower's ONNX file for `variant`."""
        names = [self.manifest.tower(tower).files[variant]]
        if tower == "text":
            names.append(self.manifest.tokenizer.file)
        return self.fetch(names)

    def _fetch_one(self, name: str) -> None:
        entry = self.manifest.files.get(name)
        if entry is None:
            raise ModelUnavailable(f"{name} is not listed in the manifest of {self.source.uri}")
        path = self.dir / name
        if path.is_file():
            # Left by an earlier process in this container (or a shared cache): check it once.
            if path.stat().st_size == entry.size and sha256_file(path) == entry.sha256:
                return
            logger.warning(
                "cached model file differs from its manifest: fetching it again", extra={"file": name}
            )
        self._place(name, lambda tmp: self._download_checked(name, tmp))

    def _download_checked(self, name: str, tmp: Path) -> None:
        entry = self.manifest.files[name]
        self.source.download(name, tmp)
        size = tmp.stat().st_size
        if size != entry.size or sha256_file(tmp) != entry.sha256:
            raise ModelUnavailable(
                f"{name} from {self.source.uri} does not match the manifest's sha256 and size "
                f"({size} bytes, expected {entry.size})"
            )
        logger.info("model file downloaded", extra={"file": name, "bytes": size, "uri": self.source.uri})

    def _place(self, name: str, write: Callable[[Path], object]) -> None:
        """Write through a temporary file in the same directory, then rename it into place atomically."""
        tmp = self.dir / f".{name}.{uuid.uuid4().hex}.part"
        try:
            write(tmp)
            os.replace(tmp, self.dir / name)
        finally:
            tmp.unlink(missing_ok=True)


class RemoteBundleEmbedder(Embedder):
    """An Embedder over a RemoteBundle: a tower's files are fetched (and verified) before its first use."""

    def __init__(self, bundle: RemoteBundle, **options: Any) -> None:
        # Files were verified on arrival: no second sha256 pass before each session is created.
        super().__init__(bundle.dir, verify=False, **options)
        self.bundle = bundle

    def warm_up(self, *towers: Tower) -> None:
        for tower in towers or ("text", "image"):
            self.bundle.fetch_tower(tower, self.variant)
        super().warm_up(*towers)

    def embed_texts(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        self.bundle.fetch_tower("text", self.variant)
        return super().embed_texts(texts, batch_size=batch_size)

    def embed_images(self, images: Sequence[ImageInput], *, batch_size: int = 16) -> np.ndarray:
        self.bundle.fetch_tower("image", self.variant)
        return super().embed_images(images, batch_size=batch_size)


def open_remote_bundle(
    uri: str, cache_dir: Path, *, endpoint_url: str | None = None, region: str | None = None
) -> RemoteBundle:
    """Read the manifest at `uri` and prepare its local directory under `cache_dir` (no tower fetched)."""
    return RemoteBundle(source_for(uri, endpoint_url=endpoint_url, region=region), cache_dir)
