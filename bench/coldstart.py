"""Cold starts of the built functions: from a fresh process to the first answer, phase by phase, and peak RSS.

    make sam-build && .venv/bin/python bench/coldstart.py [--runs 3] [--threads 1] [--sizing]

Each run is a new python3.12 process (.venv-lambda: the runtime's Python with boto3) whose sys.path is
the function's built code and its layers from .aws-sam/build, with the template's environment, as in a
Lambda container. Against the embedded PostgreSQL (migrated, in a temporary directory) and a moto server
for S3, on loopback. Models: the demo bundle (else a tiny export) and ViT-B-32 int8 with random weights
(exported once into bench/.cache/; needs the export extra), from MODEL_DIR, and ViT-B-32 once more from
MODEL_URI (downloaded from moto and verified). The search function answers a text query through the HTTP
API event; the embed function processes one SQS message (a 1600x1200 JPEG). Medians of --runs runs.

--snapstart measures the search function with IMAGESEARCH_WARM_MODEL_AT_INIT (as the template deploys it
under SnapStart) against the same function without it, per model: the init phase (what the snapshot
holds) and what a container restored from it still does before its first answer (settings, the database
connection, the first request). Restoring itself cannot be measured here.

--sizing adds the worst cases behind the template's memory sizes and timeouts (ViT-B-32 only): a batch of
10 photos of 12 Mpx, one image at the 64 Mpx limit, an upload of a 4 MB photo, a search by image after a
text search (both towers loaded).
"""

from __future__ import annotations

import argparse
import base64
import copy
import io
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from imagesearch.config import DEFAULT_TENANT_ID, DEMO_MODEL_DIR, REPO_ROOT

BUILD_DIR = REPO_ROOT / ".aws-sam" / "build"
LAMBDA_PYTHON = REPO_ROOT / ".venv-lambda" / "bin" / "python3.12"
CACHE = Path(__file__).resolve().parent / ".cache"
CHILD = Path(__file__).resolve().parent / "_coldstart_child.py"
EVENTS = REPO_ROOT / "events"
BUCKET = "imagesearch-coldstart"
PHASES = ("start", "imports", "settings", "database", "model", "first_run", "first_request")
EMBED_BATCH = 4  # template.yaml's EmbedBatchSize default
TINY_MODEL_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 32, "patch_size": None},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 2},
}


@dataclass
class Scenario:
    name: str
    function: str
    model: str
    tower: str
    events: list[dict[str, Any]]
    env: dict[str, str] = field(default_factory=dict)


def sample(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((EVENTS / name).read_text("utf-8"))
    return result


def photo(width: int, height: int, *, quality: int = 85) -> bytes:
    """A JPEG with gradients and noise, compressing about as a photograph does."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(width * height)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width * 255, y / height * 255, (x + y) / (width + height) * 255], axis=-1)
    noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(noisy).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def flat_png(width: int, height: int) -> bytes:
    """A large picture in a small file (a few shapes on a plain background): the most pixels per byte."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (200, 200, 200))
    ImageDraw.Draw(img).ellipse(
        (width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(200, 30, 30)
    )
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def sqs_event(*keys: str) -> dict[str, Any]:
    """The embed function's input: one SQS message per object, each an S3 notification."""
    record = sample("sqs-s3-put.json")["Records"][0]
    notification = json.loads(record["body"])
    records = []
    for key in keys:
        body = copy.deepcopy(notification)
        body["Records"][0]["s3"]["bucket"]["name"] = BUCKET
        body["Records"][0]["s3"]["object"].update(key=quote_plus(key, safe="/"), eTag=uuid.uuid4().hex)
        records.append({**record, "messageId": str(uuid.uuid4()), "body": json.dumps(body)})
    return {"Records": records}


def multipart_event(name: str, path: str, data: bytes) -> dict[str, Any]:
    """An HTTP API event posting `data` as the multipart field `file`."""
    event = sample(name)
    boundary = "----coldstart"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    event.update(rawPath=path, body=base64.b64encode(body).decode(), isBase64Encoded=True)
    event["routeKey"] = event["requestContext"]["routeKey"] = f"POST {path}"
    event["requestContext"]["http"].update(method="POST", path=path)
    event["headers"].update({"content-type": f"multipart/form-data; boundary={boundary}"})
    event["headers"]["content-length"] = str(len(body))
    return event


class Objects:
    """Photos put under originals/ of the moto bucket, a fresh key for every event."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self._cache: dict[tuple[int, int], bytes] = {}

    def put(self, width: int, height: int) -> str:
        data = self._cache.setdefault((width, height), photo(width, height))
        key = f"originals/{DEFAULT_TENANT_ID}/{uuid.uuid4()}.jpg"
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="image/jpeg")
        return key


def ensure_bundles() -> dict[str, Path]:
    """The demo bundle (or a tiny export) and ViT-B-32 int8 with random weights, exported once."""
    bundles = {}
    if (DEMO_MODEL_DIR / "manifest.json").exists():
        bundles["demo"] = DEMO_MODEL_DIR
    else:
        bundles["tiny"] = export_once("tiny-test-resnet", CACHE / "tiny", model_config=TINY_MODEL_CONFIG)
    bundles["ViT-B-32 int8"] = export_once("ViT-B-32", CACHE / "vit-b-32-none-int8", int8=True)
    return bundles


def export_once(arch: str, out: Path, **options: Any) -> Path:
    if not (out / "manifest.json").exists():
        from imagesearch.export.bundle import export_pretrained

        print(f"exporting {arch} (random weights) into {out} ...", file=sys.stderr)
        export_pretrained(arch, "none", out, **options)
    return out


@contextmanager
def services(tmp: Path) -> Iterator[dict[str, Any]]:
    """The embedded PostgreSQL (migrated) and a moto S3 server, both on this machine."""
    import boto3
    from moto.server import ThreadedMotoServer

    from imagesearch.db import migrate
    from imagesearch.local.postgres import EmbeddedPostgres

    postgres = EmbeddedPostgres(tmp / "pg")
    postgres.start()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()

    def database(name: str) -> str:
        """A migrated database of its own: each model's images and registration stay apart."""
        url = postgres.ensure_database(name)
        migrate.upgrade(url)
        return url

    try:
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        s3.create_bucket(Bucket=BUCKET)
        yield {"database": database, "endpoint": endpoint, "s3": s3}
    finally:
        moto.stop()
        postgres.stop()


def run_cold(scenario: Scenario, base_env: dict[str, str], tmp: Path) -> dict[str, Any]:
    """One fresh container: the phases, the outcomes of its events, peak RSS."""
    from imagesearch.local.invoke import function_environment
    from imagesearch.local.sam_template import function_spec, load_template

    spec = function_spec(load_template(BUILD_DIR / "template.yaml"), BUILD_DIR.resolve(), scenario.function)
    env = function_environment(spec, {"Parameters": {**base_env, **scenario.env}}, {})
    report_path = tmp / f"report-{uuid.uuid4().hex}.json"
    spec_path = tmp / "spec.json"
    spec_path.write_text(
        json.dumps(
            {
                "code_dir": str(spec.code_dir),
                "layer_dirs": [str(p) for p in spec.layer_dirs],
                "function": spec.logical_id,
                "tower": scenario.tower,
                "events": scenario.events,
                "report_path": str(report_path),
            }
        )
    )
    spawned = time.time()
    subprocess.run(
        [str(LAMBDA_PYTHON), "-I", "-B", str(CHILD), str(spec_path)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )
    report: dict[str, Any] = json.loads(report_path.read_text())
    first = report["outcomes"][0]
    check(scenario, first["result"])
    report["phases"]["start"] = (report["started"] - spawned) * 1000
    report["total_ms"] = (first["at"] - spawned) * 1000
    return report


def check(scenario: Scenario, result: dict[str, Any]) -> None:
    """A benchmark of failing requests measures nothing: stop at the first wrong answer."""
    if scenario.function == "EmbedFunction":
        ok = result == {"batchItemFailures": []}
    else:
        ok = result.get("statusCode") in (200, 201)
    if not ok:
        raise SystemExit(f"{scenario.name}: unexpected result {json.dumps(result)[:500]}")


def scenarios(bundles: dict[str, Path], objects: Objects, database: Any) -> list[Scenario]:
    """Per model, in a database of its own: embed first, so that the search finds an image (and signs its
    URLs, as a search of a populated deployment does)."""
    found = []
    for index, (model, bundle) in enumerate(bundles.items()):
        env = {
            "MODEL_DIR": str(bundle),
            "IMAGESEARCH_DATABASE_URL": database(f"coldstart_{index}"),
            # phase by phase: the model loads in its own phase, not in the init (see --snapstart)
            "IMAGESEARCH_WARM_MODEL_AT_INIT": "false",
        }
        found.append(Scenario("embed", "EmbedFunction", model, "image", [], env))
        found.append(
            Scenario("search", "SearchFunction", model, "text", [sample("http-post-search.json")], env)
        )
    vit = bundles["ViT-B-32 int8"]
    for path in vit.iterdir():
        objects.s3.upload_file(str(path), BUCKET, f"models/vit/{path.name}")
    remote = {**found[-1].env, "MODEL_URI": f"s3://{BUCKET}/models/vit/"}
    del remote["MODEL_DIR"]
    found.append(
        Scenario(
            "search",
            "SearchFunction",
            "ViT-B-32 int8 via MODEL_URI",
            "text",
            [sample("http-post-search.json")],
            remote,
        )
    )
    return found


def sizing(bundle: Path, objects: Objects, database_url: str) -> list[Scenario]:
    env = {"MODEL_DIR": str(bundle), "IMAGESEARCH_DATABASE_URL": database_url}
    return [
        Scenario(
            "embed: 1 photo, then a batch of 10 x 12 Mpx",
            "EmbedFunction",
            "ViT-B-32 int8",
            "image",
            [sqs_event(objects.put(1600, 1200)), sqs_event(*[objects.put(4000, 3000) for _ in range(10)])],
            env,
        ),
        Scenario(
            "embed: one 64 Mpx image",
            "EmbedFunction",
            "ViT-B-32 int8",
            "image",
            [sqs_event(objects.put(8000, 8000))],
            env,
        ),  # fmt: skip
        Scenario(
            f"embed: a batch of {EMBED_BATCH} x 64 Mpx (the template's batch size, the pixel limit)",
            "EmbedFunction",
            "ViT-B-32 int8",
            "image",
            [sqs_event(*[objects.put(8000, 8000) for _ in range(EMBED_BATCH)])],
            env,
        ),
        Scenario(
            "upload: POST /images, 64 Mpx PNG of 0.2 MB",
            "UploadFunction",
            "ViT-B-32 int8",
            "",
            [multipart_event("http-post-images.json", "/images", flat_png(8000, 8000))],
            env,
        ),
        Scenario(
            "upload: POST /images, 4 MB photo",
            "UploadFunction",
            "ViT-B-32 int8",
            "",  # no model session: the upload function reads only the manifest (for /health)
            [multipart_event("http-post-images.json", "/images", photo(3000, 2000, quality=92))],
            env,
        ),
        Scenario(
            "search: text, then by image (64 Mpx PNG of 0.2 MB)",
            "SearchFunction",
            "ViT-B-32 int8",
            "text",
            [
                sample("http-post-search.json"),
                multipart_event("http-post-search.json", "/search/image", flat_png(8000, 8000)),
            ],
            env,
        ),
        Scenario(
            "search: text, then by image (3 MB photo)",
            "SearchFunction",
            "ViT-B-32 int8",
            "text",
            [
                sample("http-post-search.json"),
                multipart_event("http-post-search.json", "/search/image", photo(2400, 1800, quality=92)),
            ],
            env,
        ),
    ]


def snapstart(
    bundles: dict[str, Path], database: Any, base_env: dict[str, str], tmp: Path, runs: int
) -> None:
    """Init (imports, and with warm-up the text tower's load and first run) against what remains before
    the first answer, for the search function warmed at init or not."""
    print(
        "| model | warm-up at init | init ms | after init, to first answer ms | of which the model ms "
        "| peak RSS MB |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for index, (model, bundle) in enumerate(bundles.items()):
        env = {"MODEL_DIR": str(bundle), "IMAGESEARCH_DATABASE_URL": database(f"snapstart_{index}")}
        for warm in ("false", "true"):
            scenario = Scenario(
                "search",
                "SearchFunction",
                model,
                "text",
                [sample("http-post-search.json")],
                {**env, "IMAGESEARCH_WARM_MODEL_AT_INIT": warm},
            )
            reports = [run_cold(scenario, base_env, tmp) for _ in range(runs)]
            init = median([r["phases"]["start"] + r["phases"]["imports"] for r in reports])
            rest = median([r["total_ms"] - r["phases"]["start"] - r["phases"]["imports"] for r in reports])
            model_ms = median([r["phases"]["model"] + r["phases"]["first_run"] for r in reports])
            rss = max(r["rss_mb"] for r in reports)
            print(f"| {model} | {warm} | {init:.0f} | {rest:.0f} | {model_ms:.0f} | {rss:.0f} |", flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="cold starts per scenario (median reported)")
    parser.add_argument(
        "--threads", type=int, default=1, help="onnxruntime threads (1: Lambda at <= 1769 MB)"
    )
    parser.add_argument(
        "--sizing", action="store_true", help="also the worst cases behind memory and timeouts"
    )
    parser.add_argument(
        "--snapstart", action="store_true", help="only the search function, warmed at init or not"
    )
    args = parser.parse_args()
    if not (BUILD_DIR / "template.yaml").exists() or not LAMBDA_PYTHON.exists():
        print(
            "run `make sam-build` first (it installs .venv-lambda and builds .aws-sam/build)", file=sys.stderr
        )
        return 2
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    bundles = ensure_bundles()
    with tempfile.TemporaryDirectory(prefix="coldstart-") as tmp_name, services(Path(tmp_name)) as svc:
        tmp = Path(tmp_name)
        objects = Objects(svc["s3"])
        base_env = {
            "IMAGESEARCH_STORAGE_URL": f"s3://{BUCKET}",
            "IMAGESEARCH_STORAGE_ENDPOINT_URL": svc["endpoint"],
            "IMAGESEARCH_AUTH_MODE": "none",
            "IMAGESEARCH_ORT_THREADS": str(args.threads),
            "IMAGESEARCH_LOG_LEVEL": "WARNING",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
        }
        if args.snapstart:
            snapstart(bundles, svc["database"], base_env, tmp, args.runs)
            return 0
        print(
            f"| function | model | {' | '.join(PHASES)} | to first answer | without the model | peak RSS MB |"
        )
        print(f"|---|---|{'---:|' * len(PHASES)}---:|---:|---:|")
        for scenario in scenarios(bundles, objects, svc["database"]):
            runs = []
            for _ in range(args.runs):
                # a fresh model cache per run: MODEL_URI downloads again, as in a new container
                cache = {"IMAGESEARCH_MODEL_CACHE_DIR": str(tmp / f"models-{uuid.uuid4().hex}")}
                if scenario.function == "EmbedFunction":  # a new object for every run
                    scenario.events = [sqs_event(objects.put(1600, 1200))]
                runs.append(run_cold(scenario, {**base_env, **cache}, tmp))
            phases = " | ".join(f"{median([r['phases'][p] for r in runs]):.0f}" for p in PHASES)
            total = median([r["total_ms"] for r in runs])
            # what the user waits for besides the model: everything but loading it and its first run
            rest = median([r["total_ms"] - r["phases"]["model"] - r["phases"]["first_run"] for r in runs])
            rss = max(r["rss_mb"] for r in runs)
            print(
                f"| {scenario.name} | {scenario.model} | {phases} | {total:.0f} | {rest:.0f} | {rss:.0f} |",
                flush=True,
            )
        if args.sizing:
            print("\n| worst case | each event, ms (RSS after it, MB) | peak RSS MB |")
            print("|---|---|---:|")
            for scenario in sizing(bundles["ViT-B-32 int8"], objects, svc["database"]("coldstart_sizing")):
                report = run_cold(scenario, base_env, tmp)
                for outcome in report["outcomes"]:
                    check(scenario, outcome["result"])
                steps = ", ".join(f"{o['ms']:.0f} ({o['rss_mb']:.0f})" for o in report["outcomes"])
                print(f"| {scenario.name} | {steps} | {report['rss_mb']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
