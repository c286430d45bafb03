"""Real storage faults, no monkeypatching: a full and a read-only objects directory (a tmpfs), moto's S3
server stopped and started again, and S3 answering SlowDown or AccessDenied (a proxy in front of moto).
Each answer is a 503 problem with Retry-After, never a 500 or a hang; every accepted upload ends ready once
the fault is over. `pytest -s` prints the counts that docs/reliability.md's fault table quotes."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from support.images import make_image
from support.live import live_stack
from support.s3_stack import S3Stack, s3_stack
from support.tmpfs import FILLER, disk_full, read_only, tmpfs
from support.traffic import Traffic, assert_outage_survived, settle

from imagesearch.db import Database
from imagesearch.errors import StorageUnavailable
from imagesearch.http.problems import status_for
from imagesearch.local.stack import LocalStack
from imagesearch.storage.filesystem import FileSystemStorage
from imagesearch.storage.signing import UrlSigner

PAGE = 4096  # tmpfs hands out space a page at a time


def files_under(root: Path) -> set[str]:
    """Every file under `root`, hidden ones included (temporary files, metadata), but the filler."""
    found = set()
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            relative = Path(dirpath, name).relative_to(root).as_posix()
            if relative != FILLER:
                found.add(relative)
    return found


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# --- filesystem --------------------------------------------------------------------------------------------


def test_filesystem_store_on_a_full_then_read_only_disk(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with tmpfs(tmp_path / "objects", size="1m") as root:
        storage = FileSystemStorage(root, signer=UrlSigner(secret=b"s", base_url="http://t"))
        kept = make_image(color="red", size=(40, 40))
        storage.put("originals/t/kept.png", kept, content_type="image/png")
        before = files_under(root)

        # GIVEN a full disk, WHEN an object is put, THEN a 503 error naming no path, and nothing is left.
        with caplog.at_level(logging.ERROR), disk_full(root) as filler:
            with pytest.raises(StorageUnavailable) as full:
                storage.put("originals/t/new.png", b"x" * 100, content_type="image/png")
            assert status_for(full.value) == 503 and str(root) not in full.value.detail
            assert "no space left on device" in full.value.detail
            assert files_under(root) == before
            # Reading and listing still work on a full disk.
            assert storage.get("originals/t/kept.png") == kept
            assert storage.head("originals/t/kept.png").content_type == "image/png"
            assert [i.key for i in storage.list("originals/")] == ["originals/t/kept.png"]

            # The bytes fit, their metadata does not: the write fails between the two, and still leaves
            # no object, no metadata, no temporary file.
            os.truncate(filler, filler.stat().st_size - 2 * PAGE)
            probe = root / "probe"
            probe.write_bytes(b"p" * 2 * PAGE)  # two pages are free: the object's bytes fit
            probe.unlink()
            with pytest.raises(StorageUnavailable):
                storage.put("originals/t/between.png", b"b" * 2 * PAGE, content_type="image/png")
            assert files_under(root) == before
            assert not storage.exists("originals/t/between.png")
        assert any(
            r.levelno == logging.ERROR and getattr(r, "errno", None) == "ENOSPC" for r in caplog.records
        )
        storage.put("originals/t/new.png", b"x" * 100, content_type="image/png")  # space came back

        # GIVEN a read-only disk: writes and deletes are 503s; reads still work; then it recovers.
        with read_only(root):
            for write in (
                lambda: storage.put("originals/t/ro.png", b"r", content_type="image/png"),
                lambda: storage.delete("originals/t/kept.png"),
            ):
                with pytest.raises(StorageUnavailable) as ro:
                    write()
                assert "read-only file system" in ro.value.detail and str(root) not in ro.value.detail
            assert storage.get("originals/t/kept.png") == kept
            assert {i.key for i in storage.list("originals/")} == {
                "originals/t/kept.png",
                "originals/t/new.png",
            }
        storage.put("originals/t/ro.png", b"r", content_type="image/png")
        storage.delete("originals/t/kept.png")
        assert not storage.exists("originals/t/kept.png")


@pytest.fixture
def stack_on_tmpfs(tmp_path: Path, model_bundle: Path) -> Iterator[LocalStack]:
    """A live local stack whose objects directory is a tmpfs of its own."""
    data_dir = tmp_path / "stack"
    with (
        tmpfs(data_dir / "objects", size="16m"),
        live_stack(data_dir, model_dir=model_bundle, db_connect_timeout=2) as running,
    ):
        yield running


def test_full_objects_directory_under_traffic(stack_on_tmpfs: LocalStack) -> None:
    stack = stack_on_tmpfs
    assert stack.layout is not None
    with Traffic(stack.base_url) as traffic:
        time.sleep(1.5)
        with disk_full(stack.layout.objects):
            time.sleep(2)
        time.sleep(2)

    print(f"\ndisk full for 2 s: {traffic.summary()}, slowest {traffic.slowest:.1f} s")
    assert_outage_survived(traffic, stack.base_url, retry_after="1")


# --- S3 ----------------------------------------------------------------------------------------------------


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def s3_direct(aws_env: None, database_url: str, model_bundle: Path, db: Database) -> Iterator[S3Stack]:
    with s3_stack(database_url=database_url, model_dir=model_bundle) as running:
        yield running


@pytest.fixture
def s3_proxied(aws_env: None, database_url: str, model_bundle: Path, db: Database) -> Iterator[S3Stack]:
    with s3_stack(database_url=database_url, model_dir=model_bundle, proxy=True) as running:
        yield running


def upload(base_url: str, n: int) -> httpx.Response:
    data = make_image(color="blue", shape="square", size=(200 + n, 50))
    return httpx.post(f"{base_url}/images", files={"file": (f"{n}.png", data)}, timeout=30)


def test_s3_server_stopped_and_restarted_under_upload_and_ingest_traffic(s3_direct: S3Stack) -> None:
    stack = s3_direct
    # moto keeps its state across a restart of its server (its backends are module globals), as S3 would.
    stack.s3.put_object(Bucket="imagesearch-faults", Key="probe", Body=b"still here")
    stack.s3_server.stop()
    stack.s3_server.start()
    assert stack.s3.get_object(Bucket="imagesearch-faults", Key="probe")["Body"].read() == b"still here"

    with Traffic(stack.base_url) as traffic:
        time.sleep(1.5)
        stack.ingest.paused.set()  # uploads accepted now wait in the queue, to be ingested in the outage
        time.sleep(0.5)
        stack.s3_server.stop()
        stack.ingest.paused.clear()
        time.sleep(2.5)
        stack.s3_server.start()
        time.sleep(2.5)

    print(
        f"\nS3 server down for 2.5 s: {traffic.summary()}, slowest {traffic.slowest:.1f} s; "
        f"ingestion: {stack.ingest.deliveries} deliveries, {stack.ingest.failures} failed and redelivered"
    )
    assert traffic.slowest < 5  # connection refused: boto3's retries take milliseconds, then a 503
    assert stack.ingest.failures > 0  # the ingestion met the outage, and its messages came back
    assert_outage_survived(traffic, stack.base_url, retry_after="1")


@pytest.mark.parametrize(
    ("code", "status", "attempts", "retry_after", "level", "log_says"),
    [
        # Throttling: boto3 tries 3 times in all, with backoff; then a 503 that asks for a longer pause.
        ("SlowDown", 503, 3, "5", logging.WARNING, "throttling"),
        # The deployment's credentials or policy: not retried; a 503 for the caller, an error in the log.
        ("AccessDenied", 403, 1, "30", logging.ERROR, "a configuration problem"),
    ],
    ids=["SlowDown", "AccessDenied"],
)
def test_s3_error_answers(
    s3_proxied: S3Stack,
    caplog: pytest.LogCaptureFixture,
    code: str,
    status: int,
    attempts: int,
    retry_after: str,
    level: int,
    log_says: str,
) -> None:
    stack = s3_proxied
    proxy = stack.proxy
    assert proxy is not None

    # WHEN S3 answers every request with the error, THEN an upload gets a 503 after boto3's attempts.
    proxy.fail(code)
    with caplog.at_level(logging.WARNING):
        response = upload(stack.base_url, 1)
    assert response.status_code == 503 and response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == retry_after
    assert proxy.count("PUT", status) == attempts
    logged = [r for r in caplog.records if getattr(r, "code", None) == code]
    assert logged and logged[0].levelno == level and log_says in logged[0].getMessage()

    # WHEN only reads fail (the upload is accepted, its ingestion is not), THEN the message comes back
    # until the fault is over, and the image ends ready.
    proxy.fail(code, methods={"GET", "HEAD"})
    accepted = upload(stack.base_url, 2)
    assert accepted.status_code == 201
    wait_for(lambda: stack.ingest.failures >= 2)  # delivered, failed, delivered again, failed again
    assert proxy.count("HEAD", status) >= 2 * attempts
    proxy.clear()
    assert settle(stack.base_url, [accepted.json()["id"]]) == {"ready": 1}
    puts, heads = proxy.count("PUT", status), proxy.count("HEAD", status)
    print(
        f"\nS3 answers {code}: an upload -> 503, Retry-After {retry_after}, {puts} PUT attempt(s); "
        f"an accepted upload's ingestion: HEAD answered {code} x {heads} over {stack.ingest.failures} "
        "failed deliveries, then ready"
    )

    # Under traffic: the fault for 3.5 s (longer than boto3's backoff of at most 1 + 2 s, so an upload that
    # starts in it meets the fault on every attempt), then none.
    with Traffic(stack.base_url) as traffic:
        time.sleep(1)
        proxy.fail(code)
        time.sleep(3.5)
        proxy.clear()
        time.sleep(2)
    print(f"\nS3 answers {code} for 3.5 s: {traffic.summary()}, slowest {traffic.slowest:.1f} s")
    assert_outage_survived(traffic, stack.base_url, retry_after=retry_after)
