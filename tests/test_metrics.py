"""Metrics and traces: the handlers, invoked with real event shapes, print the right CloudWatch EMF; the
local stack prints none and keeps none; tracing is off here and wired to the handlers and spans."""

from __future__ import annotations

import base64
import json
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools import Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment
from fastapi.testclient import TestClient
from support.events import s3_event, sample, sqs_event
from support.images import make_image

from imagesearch import observability
from imagesearch.config import DEFAULT_TENANT_ID, Settings
from imagesearch.db import Database
from imagesearch.db import model_records as records
from imagesearch.local.context import LocalLambdaContext
from imagesearch.local.functions import load_function
from imagesearch.local.server import local_app
from imagesearch.model.manifest import load_manifest, write_manifest
from imagesearch.observability import (
    IMAGES_FAILED,
    METRICS,
    QUERY_CACHE_HITS,
    SEARCH_LATENCY,
    InvocationMetrics,
    Tracing,
)
from imagesearch.runtime import get_runtime

NAMESPACE = "imagesearch"
Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]


@pytest.fixture
def publishing(monkeypatch: pytest.MonkeyPatch) -> None:
    """As template.yaml sets the functions up: metrics published under a namespace (read at import, as
    Powertools reads it, so the process's `metrics` is given it too)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    monkeypatch.setattr(observability.metrics, "namespace", NAMESPACE)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)


@pytest.fixture
def invoke(settings: Settings, db: Database) -> Invoke:
    """Call a function's handler as Lambda would."""

    def call(function: str, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = load_function(function).handler(
            event, LocalLambdaContext(function_name=f"imagesearch-{function}")
        )
        return result

    return call


def emf(output: str) -> list[dict[str, Any]]:
    """The EMF lines of captured stdout, each as {"dimensions": {name: value}, "sets": [names, ...],
    "metrics": {name: (unit, values)}}."""
    found = []
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        blob = json.loads(line)
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == NAMESPACE
        sets = [sorted(names) for names in directive["Dimensions"]]
        found.append(
            {
                "dimensions": {name: blob[name] for names in sets for name in names},
                "sets": sets,
                "metrics": {m["Name"]: (m["Unit"], blob[m["Name"]]) for m in directive["Metrics"]},
            }
        )
    return found


def http_event(method: str, path: str, *, body: bytes = b"", content_type: str = "", query: str = "") -> dict:
    """An HTTP API (payload 2.0) event, from the sample's shape."""
    event = sample("http-post-search.json")
    event["routeKey"] = f"{method} {path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = query
    event["headers"] = {"accept": "application/json", "content-type": content_type or "application/json"}
    event["headers"]["content-length"] = str(len(body))
    event["body"] = base64.b64encode(body).decode()
    event["isBase64Encoded"] = True
    return event


def multipart(data: bytes, **fields: str) -> tuple[bytes, str]:
    """A multipart/form-data body with a `file` part and text fields, and its content type."""
    boundary = "----metrics" + uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(invoke: Invoke, data: bytes) -> dict[str, Any]:
    body, content_type = multipart(data, title="a red circle")
    response = invoke("upload", http_event("POST", "/images", body=body, content_type=content_type))
    assert response["statusCode"] in (200, 201), response
    image: dict[str, Any] = json.loads(response["body"])
    return image


def notification(image_id: str) -> dict[str, Any]:
    """The S3 notification of an uploaded original, as the bucket sends it."""
    key = f"originals/{DEFAULT_TENANT_ID}/{image_id}"
    info = get_runtime().storage.head(key)
    return s3_event(key, size=info.size, etag=info.etag)


def search(invoke: Invoke, **request: Any) -> dict[str, Any]:
    response = invoke("search", http_event("POST", "/search", body=json.dumps(request).encode()))
    assert response["statusCode"] == 200, response
    return response


# --- the functions, publishing ---------------------------------------------------------------------------
def test_an_upload_counts_as_accepted_by_route_and_a_repeat_does_not(
    publishing: None, invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_image(color="blue", shape="square")
    upload(invoke, data)
    assert emf(capsys.readouterr().out) == [
        {
            "dimensions": {"via": "multipart", "service": "imagesearch"},
            "sets": [["service"], ["service", "via"]],
            "metrics": {"UploadsAccepted": ("Count", [1.0])},
        }
    ]

    upload(invoke, data)  # the same bytes: 200, the image it already was
    assert emf(capsys.readouterr().out) == []

    announced = json.dumps({"filename": "big.jpg", "content_type": "image/jpeg", "size": 2_400_000}).encode()
    response = invoke("upload", http_event("POST", "/uploads", body=announced))
    assert response["statusCode"] == 201, response
    assert emf(capsys.readouterr().out) == [
        {
            "dimensions": {"via": "presigned", "service": "imagesearch"},
            "sets": [["service"], ["service", "via"]],
            "metrics": {"UploadsAccepted": ("Count", [1.0])},
        }
    ]


def test_an_embed_batch_counts_images_embedded_and_failed(
    publishing: None, invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    good = upload(invoke, make_image(color="red", shape="circle"))
    bad_id = uuid.uuid4()
    bad_key = f"originals/{DEFAULT_TENANT_ID}/{bad_id}"
    with get_runtime().database.connection() as conn:  # a pending record, as POST /uploads leaves it
        conn.execute(
            "INSERT INTO images (id, tenant_id, storage_key, filename) VALUES (%s, %s, %s, 'x.jpg')",
            (bad_id, DEFAULT_TENANT_ID, bad_key),
        )
    info = get_runtime().storage.put(bad_key, b"hello, I am not a picture\n", content_type="image/jpeg")
    capsys.readouterr()

    result = invoke("embed", sqs_event(notification(good["id"]), s3_event(bad_key, etag=info.etag)))

    assert result == {"batchItemFailures": []}
    assert emf(capsys.readouterr().out) == [
        {
            "dimensions": {"service": "imagesearch"},
            "sets": [["service"]],
            "metrics": {"ImagesEmbedded": ("Count", [1.0]), "ImagesFailed": ("Count", [1.0])},
        }
    ]


@pytest.fixture(scope="session")
def second_model(tmp_path_factory: pytest.TempPathFactory, model_bundle: Path) -> Path:
    """The demo bundle as another model (its own id and normalisation): something to back-fill."""
    target = tmp_path_factory.mktemp("model-b") / "bundle"
    shutil.copytree(model_bundle, target)
    manifest = load_manifest(target)
    write_manifest(manifest.model_copy(update={"model_id": "metrics-b", "mean": (0.5, 0.5, 0.5)}), target)
    return target


def test_a_backfill_message_counts_its_images(
    publishing: None, invoke: Invoke, second_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = upload(invoke, make_image(color="red", shape="square"))
    invoke("embed", sqs_event(notification(image["id"])))
    with get_runtime().database.connection() as conn:  # as `imagesearch reindex --queue-url` leaves it
        records.register_model(
            conn, model_id="metrics-b", dim=get_runtime().configured_model.dim, bundle_uri=str(second_model)
        )
    capsys.readouterr()
    message = {"imagesearch": "reindex", "version": 1, "model_id": "metrics-b", "image_ids": [image["id"]]}

    assert invoke("embed", sqs_event(message)) == {"batchItemFailures": []}
    assert [line["metrics"] for line in emf(capsys.readouterr().out)] == [
        {"ImagesBackfilled": ("Count", [1.0])}
    ]


def test_searches_give_latency_by_mode_and_a_repeated_query_is_a_cache_hit(
    publishing: None, invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    picture = make_image(color="red", shape="circle")
    image = upload(invoke, picture)
    invoke("embed", sqs_event(notification(image["id"])))
    capsys.readouterr()

    def published(response: dict[str, Any]) -> dict[str, dict[str, tuple[str, list[float]]]]:
        """One invocation's EMF lines as {mode: metrics besides SearchLatency}, which is checked: the
        response's took_ms, published for the service and for the mode."""
        found = {}
        took_ms = json.loads(response["body"])["took_ms"]
        for line in emf(capsys.readouterr().out):
            assert line["sets"] == [["service"], ["mode", "service"]]
            mode = line["dimensions"]["mode"]
            unit, (latency,) = line["metrics"].pop("SearchLatency")
            assert unit == "Milliseconds" and latency > 0 and round(latency, 2) == took_ms
            found[mode] = line["metrics"]
        return found

    first = search(invoke, query="a red circle")
    assert published(first) == {"hybrid": {"QueryCacheMisses": ("Count", [1.0])}}
    again = search(invoke, query="  A red   circle ")  # the same words: the cached vector
    assert published(again) == {"hybrid": {"QueryCacheHits": ("Count", [1.0])}}
    keywords = search(invoke, query="circle", mode="keyword")
    assert published(keywords) == {"keyword": {}}
    vector = search(invoke, query="a blue square", mode="vector")
    assert published(vector) == {"vector": {"QueryCacheMisses": ("Count", [1.0])}}

    similar = invoke("search", http_event("GET", f"/images/{image['id']}/similar", query="limit=5"))
    assert similar["statusCode"] == 200, similar
    assert published(similar) == {"similar": {}}

    body, content_type = multipart(picture, limit="5")
    by_image = invoke("search", http_event("POST", "/search/image", body=body, content_type=content_type))
    assert by_image["statusCode"] == 200, by_image
    assert published(by_image) == {"image": {}}


def test_a_request_that_measures_nothing_prints_nothing(
    publishing: None, invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    assert invoke("upload", sample("http-get-health.json"))["statusCode"] == 200
    assert emf(capsys.readouterr().out) == []


def test_what_a_failing_invocation_measured_is_still_published(
    publishing: None, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = InvocationMetrics()

    @metrics.log_metrics
    def handler(event: Any, context: Any) -> None:
        metrics.add(IMAGES_FAILED)
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        handler({}, LocalLambdaContext())
    assert emf(capsys.readouterr().out)[0]["metrics"] == {"ImagesFailed": ("Count", [1.0])}


def test_an_invocation_with_several_modes_prints_a_line_for_each(
    publishing: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Never in Lambda (one request per invocation), but said: the counters ride on the first line."""
    metrics = InvocationMetrics()

    @metrics.log_metrics
    def handler(event: Any, context: Any) -> None:
        metrics.add(SEARCH_LATENCY, 3.0, "hybrid")
        metrics.add(QUERY_CACHE_HITS)
        metrics.add(SEARCH_LATENCY, 2.0, "keyword")
        metrics.add(SEARCH_LATENCY, 4.0, "hybrid")
        metrics.add(QUERY_CACHE_HITS)

    handler({}, None)
    assert [(line["dimensions"], line["metrics"]) for line in emf(capsys.readouterr().out)] == [
        (
            {"service": "imagesearch", "mode": "hybrid"},
            {"SearchLatency": ("Milliseconds", [3.0, 4.0]), "QueryCacheHits": ("Count", [2.0])},
        ),
        ({"service": "imagesearch", "mode": "keyword"}, {"SearchLatency": ("Milliseconds", [2.0])}),
    ]


# --- the local stack and tests: nothing printed, nothing kept ----------------------------------------------
def test_without_a_namespace_the_embed_handler_prints_no_metrics(
    monkeypatch: pytest.MonkeyPatch, invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    """The local stack (`imagesearch dev`) runs the embed handler without POWERTOOLS_METRICS_NAMESPACE."""
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    monkeypatch.setattr(observability.metrics, "namespace", None)
    image = upload(invoke, make_image(color="green", shape="circle"))
    assert invoke("embed", sqs_event(notification(image["id"]))) == {"batchItemFailures": []}
    assert '"_aws"' not in capsys.readouterr().out


@pytest.mark.parametrize("switch", ["POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV"])
def test_powertools_switches_turn_publishing_off(
    switch: str, publishing: None, monkeypatch: pytest.MonkeyPatch, invoke: Invoke, capsys: Any
) -> None:
    monkeypatch.setenv(switch, "true")
    upload(invoke, make_image(color="yellow", shape="square"))
    assert '"_aws"' not in capsys.readouterr().out


def test_the_local_stacks_http_routes_print_nothing_even_with_a_namespace(
    publishing: None, settings: Settings, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    """`imagesearch dev` serves the routes without the handlers: no invocation, so nothing is kept."""
    with TestClient(local_app(), raise_server_exceptions=False) as client:
        for _ in range(3):
            response = client.post("/search", json={"query": "a red circle"})
            assert response.status_code == 200, response.text
    assert '"_aws"' not in capsys.readouterr().out
    assert get_runtime().models.cache.hits == 2  # the recording calls ran, and returned at once


def test_only_the_invocations_own_context_records_into_it(
    publishing: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A thread of its own (the local stack's HTTP server beside the embed worker, a shadow run) has no
    invocation: what it records is dropped, not published with someone else's invocation."""
    metrics = InvocationMetrics()

    @metrics.log_metrics
    def handler(event: Any, context: Any) -> None:
        metrics.add(IMAGES_FAILED)
        elsewhere = threading.Thread(target=metrics.add, args=(IMAGES_FAILED, 5.0))
        elsewhere.start()
        elsewhere.join()

    handler({}, None)
    metrics.add(IMAGES_FAILED, 7.0)  # after it, outside any invocation
    assert [line["metrics"] for line in emf(capsys.readouterr().out)] == [{"ImagesFailed": ("Count", [1.0])}]


def test_a_metric_is_recorded_with_exactly_its_own_dimension(publishing: None) -> None:
    metrics = InvocationMetrics()

    @metrics.log_metrics
    def handler(event: Any, context: Any) -> None:
        metrics.add(SEARCH_LATENCY, 1.0)

    with pytest.raises(ValueError, match="SearchLatency takes mode dimension"):
        handler({}, None)


def test_metric_names_are_unique_units_are_cloudwatchs_and_dimensions_few() -> None:
    assert len({m.name for m in METRICS}) == len(METRICS)
    assert {m.unit for m in METRICS} <= {unit.value for unit in MetricUnit}
    assert {m.dimension for m in METRICS} == {None, "mode", "via"}


# --- tracing ----------------------------------------------------------------------------------------------
def test_tracing_is_off_outside_lambda_and_leaves_handlers_alone() -> None:
    assert observability.tracer.tracer is None

    def handler(event: Any, context: Any) -> str:
        return "ok"

    assert observability.tracer.capture_lambda_handler(handler) is handler
    with observability.tracer.span("database") as span:
        assert span is None


class FakeSegment(BaseSegment):
    def __init__(self, name: str) -> None:
        self.name = name
        self.annotations: dict[str, Any] = {}
        self.metadata: dict[str, Any] = {}

    def close(self, end_time: int | None = None) -> None: ...

    def add_subsegment(self, subsegment: Any) -> None: ...

    def remove_subsegment(self, subsegment: Any) -> None: ...

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations[key] = value

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        self.metadata[key] = value

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None: ...


class FakeXRay(BaseProvider):
    """Records the subsegments Powertools' Tracer opens."""

    def __init__(self) -> None:
        self.segments: list[FakeSegment] = []

    @contextmanager
    def in_subsegment(self, name: Any = None, **kwargs: Any) -> Iterator[FakeSegment]:
        segment = FakeSegment(str(name))
        self.segments.append(segment)
        yield segment

    def in_subsegment_async(self, name: Any = None, **kwargs: Any) -> Any:
        raise NotImplementedError

    def put_annotation(self, key: str, value: Any) -> None: ...

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...

    def patch(self, modules: Any) -> None: ...

    def patch_all(self) -> None: ...


@pytest.fixture
def xray(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeXRay]:
    """Tracing on, into a fake X-Ray (Tracer's configuration is shared by its instances: reset after)."""
    provider = FakeXRay()
    tracer = Tracer(service="imagesearch", disabled=False, auto_patch=False, provider=provider)
    monkeypatch.setattr(observability.tracer, "tracer", tracer)
    yield provider
    Tracer._reset_config()


def test_with_tracing_on_an_invocation_has_its_segment_and_the_database_and_model_spans(
    xray: FakeXRay, invoke: Invoke
) -> None:
    handler = observability.tracer.capture_lambda_handler(load_function("search").handler)
    event = http_event("POST", "/search", body=json.dumps({"query": "a red circle"}).encode())

    response = handler(event, LocalLambdaContext(function_name="imagesearch-search"))

    assert response["statusCode"] == 200, response
    assert [segment.name for segment in xray.segments] == ["## handler", "model", "database"]
    assert xray.segments[0].annotations["Service"] == "imagesearch"
    assert xray.segments[0].metadata == {}  # the response (a page of results) is not attached


@pytest.mark.parametrize(
    ("sdk", "lambda_task_root"),
    [(False, "/var/task"), (True, None)],
    ids=["in Lambda without the SDK (the layer today)", "the SDK outside Lambda (.venv)"],
)
def test_tracing_stays_off_where_the_sdk_or_lambda_is_missing(
    sdk: bool, lambda_task_root: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if lambda_task_root is None:
        monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    else:
        monkeypatch.setenv("LAMBDA_TASK_ROOT", lambda_task_root)  # Lambda, as far as Tracer can tell
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    monkeypatch.setattr(observability, "find_spec", lambda name: object() if sdk else None)
    assert Tracing.for_this_process().tracer is None
