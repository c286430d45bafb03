"""The restore drill: a pg_dump of a running stack, restored into a fresh PostgreSQL, finds every image.

It follows the documented procedure (docs/reliability.md, "Backup and restore"): the wheel's pg_dump and
pg_restore, a listing of the object store, then the CLI's checks and repairs (reconcile, reindex).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from support.images import make_image
from support.live import live_stack

from imagesearch.local.datadir import DATABASE, DataDir
from imagesearch.local.postgres import EmbeddedPostgres, pg_bin
from imagesearch.storage.filesystem import META_DIR

PICTURES = [  # (colour, shape, title): the titles share no word, so a title finds its own image only
    ("red", "circle", "Sunset over Lisbon"),
    ("blue", "square", "Harbour crane"),
    ("green", "triangle", "Grandmother's teapot"),
    ("yellow", "circle", "Mountain hut"),
]


@dataclass
class Backup:
    """A stack's data directory after its backup: the dumps, the object listing, what was uploaded."""

    data_dir: Path
    full_dump: Path
    slim_dump: Path  # without the rows of `embeddings`: vectors are rebuilt from the originals
    listing: set[str]  # the object keys when the dumps were taken
    images: dict[str, bytes]  # id -> uploaded bytes, of the images the dumps hold
    titles: dict[str, str]  # id -> title
    late_key: str  # the original of an image uploaded after the dumps: the store has it, the dumps do not
    late_data: bytes  # its bytes

    @property
    def late_id(self) -> str:
        return self.late_key.rsplit("/", 1)[1]


def pg(program: str, *args: str | Path) -> str:
    """Run one of the wheel's PostgreSQL programs; its output."""
    done = subprocess.run(
        [str(pg_bin(program)), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"{program} failed:\n{done.stderr}"
    return done.stdout


def imagesearch(*args: str | Path) -> str:
    """Run an `imagesearch` maintenance command on a stack's data directory; its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGESEARCH_")}
    done = subprocess.run(
        [sys.executable, "-m", "imagesearch.cli.main", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"imagesearch {args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def object_listing(objects: Path) -> set[str]:
    """Every key of a filesystem store, as `find objects -path objects/.meta -prune -o -type f` lists it."""
    return {
        path.relative_to(objects).as_posix()
        for path in objects.rglob("*")
        if path.is_file() and path.relative_to(objects).parts[0] != META_DIR
    }


def record_keys(database_url: str) -> set[str]:
    return set(pg("psql", "-At", "-c", "SELECT storage_key FROM images", database_url).split())


def upload(client: httpx.Client, data: bytes, title: str) -> str:
    response = client.post("/images", files={"file": ("picture.png", data)}, data={"title": title})
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


def wait_ready(client: httpx.Client, ids: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (statuses := {client.get(f"/images/{i}").json()["status"] for i in ids}) != {"ready"}:
        assert time.monotonic() < deadline and statuses <= {"pending", "ready"}, statuses
        time.sleep(0.2)


def assert_searchable(base_url: str, backup: Backup, *, thumbnails: bool = True) -> list[dict[str, str]]:
    """Every image of the backup is listed as ready, its files are served, its title and its picture
    find it; the listed items."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        listed: list[dict[str, str]] = client.get("/images", params={"limit": 100}).json()["items"]
        items = {item["id"]: item for item in listed}
        assert set(backup.images) <= set(items)
        for image_id, data in backup.images.items():
            item = items[image_id]
            assert item["status"] == "ready" and item["title"] == backup.titles[image_id]
            assert httpx.get(item["url"]).content == data
            if thumbnails:
                thumbnail = httpx.get(item["thumbnail_url"])
                assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/webp"
            by_title = client.post("/search", json={"query": backup.titles[image_id], "mode": "keyword"})
            assert by_title.json()["results"][0]["id"] == image_id
            by_example = client.post("/search/image", files={"file": ("query.png", data)})
            assert by_example.json()["results"][0]["id"] == image_id  # the vectors are there
    return listed


@pytest.fixture(scope="module")
def backup(tmp_path_factory: pytest.TempPathFactory, model_bundle: Path) -> Backup:
    """Four images, dumped while the stack runs; then a fifth upload, which the dumps do not hold."""
    data_dir = tmp_path_factory.mktemp("restore") / "stack"
    with (
        live_stack(data_dir, model_dir=model_bundle) as stack,
        httpx.Client(base_url=stack.base_url) as client,
    ):
        images, titles = {}, {}
        for color, shape, title in PICTURES:
            data = make_image(color=color, shape=shape)
            image_id = upload(client, data, title)
            images[image_id], titles[image_id] = data, title
        wait_ready(client, list(images))

        url = stack.postgres.url(DATABASE)
        full_dump, slim_dump = data_dir.parent / "full.dump", data_dir.parent / "slim.dump"
        pg("pg_dump", "--format=custom", "--file", full_dump, url)
        pg("pg_dump", "--format=custom", "--exclude-table-data=embeddings", "--file", slim_dump, url)
        listing = object_listing(DataDir(data_dir).objects)

        late_data = make_image(color="white", shape="square")
        late_id = upload(client, late_data, "Uploaded after the backup")
        wait_ready(client, [late_id])
    late_key = next(key for key in object_listing(DataDir(data_dir).objects) if key.endswith(late_id))
    return Backup(data_dir, full_dump, slim_dump, listing, images, titles, late_key, late_data)


def assert_adopted(base_url: str, backup: Backup) -> None:
    """The image uploaded after the dump is back under its id, ready, found first by its picture; its
    title was in the lost record only."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        late = client.get(f"/images/{backup.late_id}").json()
        assert (late["status"], late["title"], late["filename"]) == ("ready", None, None)
        assert httpx.get(late["url"]).content == backup.late_data
        by_example = client.post("/search/image", files={"file": ("query.png", backup.late_data)})
        assert by_example.json()["results"][0]["id"] == backup.late_id


def test_the_database_lost_a_dump_restored_into_a_new_server_finds_every_image(
    backup: Backup, model_bundle: Path
) -> None:
    """DATA_DIR/pg is gone, the objects are not: the full dump goes into a new server's empty database."""
    layout = DataDir(backup.data_dir)
    shutil.rmtree(layout.pg)
    fresh = EmbeddedPostgres(layout.pg)
    fresh.start()
    try:
        url = fresh.ensure_database(DATABASE)
        pg("pg_restore", "--no-owner", "--exit-on-error", "--dbname", url, backup.full_dump)
    finally:
        fresh.stop()

    with live_stack(backup.data_dir, model_dir=model_bundle) as stack:
        assert_searchable(stack.base_url, backup)
        # The listing taken with the dump names exactly the originals of the restored records ...
        originals = {key for key in backup.listing if key.startswith("originals/")}
        assert record_keys(stack.postgres.url(DATABASE)) == originals
        # ... and the store now holds one more, uploaded after the dump. It has no tombstone (no deletion
        # took its record): reconcile adopts it under its id, and deletes nothing.
        report = imagesearch("reconcile", "--dry-run", "--data-dir", backup.data_dir)
        assert "originals whose record was lost would be adopted: 1" in report
        assert "objects of deleted images would be removed: 0" in report
        assert "pending images would be processed: 0" in report
        objects = object_listing(DataDir(backup.data_dir).objects)
        report = imagesearch("reconcile", "--data-dir", backup.data_dir)
        assert "processed: {'ready': 1}" in report, report
        assert "originals whose record was lost adopted: 1" in report
        assert "objects of deleted images removed: 0" in report
        assert "orphan thumbnails removed: 0" in report
        assert object_listing(DataDir(backup.data_dir).objects) == objects
        assert_adopted(stack.base_url, backup)
        assert record_keys(stack.postgres.url(DATABASE)) == originals | {backup.late_key}


def test_a_new_machine_a_dump_without_vectors_and_a_store_without_thumbnails_are_rebuilt(
    backup: Backup, model_bundle: Path, tmp_path: Path
) -> None:
    """Everything lost but the backup: the originals copied back (the thumbnails were not kept), the dump
    without vectors restored over a fresh `imagesearch dev`, then reindex and reconcile rebuild the rest."""
    layout = DataDir(tmp_path / "stack")
    shutil.copytree(DataDir(backup.data_dir).objects, layout.objects)
    shutil.rmtree(layout.objects / "thumbnails")
    shutil.rmtree(layout.objects / META_DIR / "thumbnails")

    # `imagesearch dev` on the new directory makes a server and an empty, migrated database ...
    with live_stack(layout.root, model_dir=model_bundle) as stack:
        pg(
            "pg_restore",
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--no-owner",
            "--exit-on-error",
            "--dbname",
            stack.postgres.url(DATABASE),
            backup.slim_dump,
        )
    # ... and is restarted after the restore, which replaced the tables and types its connections knew.
    with live_stack(layout.root, model_dir=model_bundle) as stack:
        url = stack.postgres.url(DATABASE)
        with httpx.Client(base_url=stack.base_url) as client:
            no_vectors = client.post(
                "/search/image", files={"file": ("q.png", next(iter(backup.images.values())))}
            )
            assert no_vectors.json()["results"] == []

        # The vectors: every ready image lacking one of the model is embedded from its original.
        reindexed = imagesearch("reindex", "--data-dir", layout.root, "--model-dir", model_bundle)
        assert f"embedded {len(backup.images)} images" in reindexed
        assert_searchable(stack.base_url, backup, thumbnails=False)

        # An original the restored records do not know was uploaded after the dump. Nothing is done to it
        # by hand: reconcile adopts it (below).
        orphans = object_listing(layout.objects) - record_keys(url)
        assert orphans == {backup.late_key}
        objects = object_listing(layout.objects)

        # The thumbnails: every ready image processed again from its original.
        pg("psql", "-c", "UPDATE images SET status = 'pending', sequencer = NULL WHERE status = 'ready'", url)
        reconciled = imagesearch("reconcile", "--pending-timeout", "0", "--data-dir", layout.root)
        # The images of the dump and the adopted one (counted with them) are processed and ready.
        assert f"processed: {{'ready': {len(backup.images) + 1}}}" in reconciled, reconciled
        assert "originals whose record was lost adopted: 1" in reconciled
        assert "objects put by other tools found: 0" in reconciled
        assert "objects of deleted images removed: 0" in reconciled
        # Nothing deleted; every thumbnail made again.
        thumbnails = {f"thumbnails/{key.removeprefix('originals/')}.webp" for key in record_keys(url)}
        assert object_listing(layout.objects) == objects | thumbnails

        listed = assert_searchable(stack.base_url, backup)
        assert {item["id"] for item in listed} == {*backup.images, backup.late_id}
        assert_adopted(stack.base_url, backup)
