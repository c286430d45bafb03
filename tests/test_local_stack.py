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

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
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
    # A PostgreSQL the stack failed to stop would outlive the test run: stop it (fast shutdown).
    if (pid := postmaster_pid(dev.data_dir)) is not None and process_alive(pid):
        os.kill(pid, signal.SIGINT)


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


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid PostgreSQL wrote in the data directory (first line of postmaster.pid), if any."""
    try:
        return int((data_dir / "pg" / "postmaster.pid").read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    except PermissionError:
        return True
    return state != "Z"


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
    assert server.stop() == 0
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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_postgres_and_frees_the_data_dir(server: DevServer, sig: signal.Signals) -> None:
    """`kill` (SIGTERM: process managers, containers, CI) and Ctrl-C (SIGINT) both shut down cleanly:
    exit code 0 (a stop someone asked for, completed), PostgreSQL stopped, the data directory free."""
    server.start()
    server.wait_healthy()
    pid = postmaster_pid(server.data_dir)
    assert pid is not None and process_alive(pid)

    assert server.stop(sig) == 0, server.output()
    # pg_ctl stop -w has waited for the server; allow the last instant between its pid file and its exit.
    deadline = time.monotonic() + 5
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_alive(pid), f"PostgreSQL (pid {pid}) outlived the stack after {sig.name}"
    assert not postgres_running(server.data_dir)

    # The lock is released and the server gone: a new stack starts on the same directory.
    server.start()
    server.wait_healthy()
    assert server.stop() == 0
