"""`imagesearch dev`: the whole local stack as a user runs it, in a subprocess on a real port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.images import make_image


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevServer:
    def __init__(self, data_dir: Path, model_bundle: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGESEARCH_")}
        env["IMAGESEARCH_MODEL_DIR"] = str(model_bundle)
        self.env = env
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> subprocess.Popen[str]:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "imagesearch.cli.main",
                "dev",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return self.process

    def wait_healthy(self, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.output()
            try:
                response = httpx.get(f"{self.url}/health", timeout=2)
                if response.status_code == 200:
                    body: dict[str, Any] = response.json()
                    return body
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"not healthy within {timeout}s:\n{self.output()}")

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)

    def output(self) -> str:
        if self.process is None or self.process.poll() is None or self.process.stdout is None:
            return ""
        return self.process.stdout.read()


@pytest.fixture
def server(tmp_path: Path, model_bundle: Path) -> Iterator[DevServer]:
    dev = DevServer(tmp_path / "data", model_bundle)
    yield dev
    if dev.process is not None and dev.process.poll() is None:
        dev.process.kill()
        dev.process.wait()


def wait_ready(url: str, image_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        image: dict[str, Any] = httpx.get(f"{url}/images/{image_id}").json()
        if image["status"] != "pending":
            return image
        time.sleep(0.2)
    raise AssertionError(f"{image_id} still pending after {timeout}s")


def postgres_running(data_dir: Path) -> bool:
    return (data_dir / "pg" / "postmaster.pid").exists()


def test_local_stack_serves_ingests_and_keeps_data_across_a_restart(server: DevServer) -> None:
    server.start()
    health = server.wait_healthy()
    assert health["status"] == "ok" and health["database"] == "ok" and health["model"]

    # A direct upload (multipart) and a presigned one both become ready through the in-process events.
    uploaded = httpx.post(f"{server.url}/images", files={"file": ("red.png", make_image(color="red"))}).json()
    announced = httpx.post(
        f"{server.url}/uploads",
        json={
            "filename": "blue.jpg",
            "content_type": "image/jpeg",
            "size": len(blue := make_image(fmt="JPEG", color="blue")),
        },
    ).json()
    put = httpx.put(announced["upload_url"], content=blue, headers=announced["headers"])
    assert put.status_code == 200, put.text
    assert wait_ready(server.url, uploaded["id"])["status"] == "ready"
    ready = wait_ready(server.url, announced["id"])
    assert ready["status"] == "ready" and ready["content_type"] == "image/jpeg"
    thumbnail = httpx.get(ready["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/webp"

    # A second stack on the same data directory refuses to start, with a message that says why.
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "imagesearch.cli.main",
            "dev",
            "--port",
            str(free_port()),
            "--data-dir",
            str(server.data_dir),
        ],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode != 0
    assert "in use by another `imagesearch dev`" in second.stderr

    # Ctrl-C stops PostgreSQL cleanly.
    assert server.stop() in (0, 130)
    assert not postgres_running(server.data_dir)

    # The data survives a restart.
    server.start()
    server.wait_healthy()
    listed = httpx.get(f"{server.url}/images").json()["items"]
    assert {item["id"] for item in listed} == {uploaded["id"], announced["id"]}
    assert all(item["status"] == "ready" for item in listed)
    server.stop()


def test_signed_file_urls_refuse_tampering(server: DevServer) -> None:
    server.start()
    server.wait_healthy()
    announced = httpx.post(
        f"{server.url}/uploads", json={"filename": "x.png", "content_type": "image/png", "size": 10}
    ).json()
    url = announced["upload_url"]
    wrong_key = url.replace("/files/originals/", "/files/originals/x")
    assert httpx.put(wrong_key, content=b"0123456789", headers=announced["headers"]).status_code == 401
    assert httpx.put(url, content=b"0123456789", headers={"Content-Type": "text/html"}).status_code == 422
    assert httpx.put(url, content=b"01234567890123", headers=announced["headers"]).status_code == 413
    assert httpx.get(url.replace("/files/", "/files/../")).status_code in (401, 404)
    server.stop()
