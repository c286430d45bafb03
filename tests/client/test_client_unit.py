"""The client's retries, errors and defaults, against httpx mock transports (no server, no sleeping)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from uuid import uuid4

import httpx
import pytest
from support.live import run_async

from imagesearch.client import ApiError, AsyncClient, Client, RetryPolicy, verify_webhook
from imagesearch.client.flow import Call, Sleep, retried
from imagesearch.client.retry import parse_retry_after
from imagesearch.webhooks.signing import InvalidSignature, sign

NO_WAIT = RetryPolicy(retries=3, backoff=0.0)


def image_json(**overrides: Any) -> dict[str, Any]:
    """An image record as the API sends it."""
    now = datetime.now(UTC).isoformat()
    record: dict[str, Any] = {
        "id": str(uuid4()),
        "status": "ready",
        "error": None,
        "title": "a red circle",
        "description": None,
        "tags": ["red"],
        "filename": "red.png",
        "content_type": "image/png",
        "size": 100,
        "width": 96,
        "height": 64,
        "sha256": "0" * 64,
        "created_at": now,
        "updated_at": now,
        "url": None,
        "thumbnail_url": None,
    }
    return record | overrides


def problem(status: int, detail: str) -> httpx.Response:
    body = {"type": "about:blank", "title": "Not Found", "status": status, "detail": detail}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_retries_wait_as_the_server_says_then_back_off_capped() -> None:
    call = Call("GET", "/images")
    flow = retried(call, RetryPolicy(retries=3, backoff=0.5, max_delay=10.0))
    assert next(flow) == call
    assert flow.send(httpx.Response(429, headers={"Retry-After": "7"})) == Sleep(7.0)
    assert flow.send(None) == call
    assert flow.send(httpx.Response(503, headers={"Retry-After": "3600"})) == Sleep(10.0)  # capped
    assert flow.send(None) == call
    backoff = flow.send(httpx.Response(502))  # no Retry-After: 0.5 * 2**2, jittered over its upper half
    assert isinstance(backoff, Sleep) and 1.0 <= backoff.seconds <= 2.0
    assert flow.send(None) == call
    with pytest.raises(StopIteration) as done:  # out of retries: the last answer, whatever it is
        flow.send(httpx.Response(503))
    assert done.value.value.status_code == 503


def test_connection_errors_are_retried_then_raised() -> None:
    flow = retried(Call("GET", "/health"), RetryPolicy(retries=1, backoff=0.0))
    next(flow)
    assert isinstance(flow.throw(httpx.ConnectError("refused")), Sleep)
    next(flow)
    with pytest.raises(httpx.ConnectError):
        flow.throw(httpx.ConnectError("refused"))


def test_client_sends_again_after_429_and_reads_the_image() -> None:
    record = image_json()
    answers = [httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200, json=record)]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    with Client("http://api.test", "k-123", transport=httpx.MockTransport(handler)) as client:
        image = client.get_image(record["id"])
    assert str(image.id) == record["id"] and image.tags == ["red"]
    assert len(seen) == 2 and all(r.headers["authorization"] == "Bearer k-123" for r in seen)


def test_api_errors_carry_the_problem_details() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(502, text="<html>bad gateway</html>")
        return problem(404, "no image 42")

    with Client("http://api.test", transport=httpx.MockTransport(handler), retries=NO_WAIT) as client:
        with pytest.raises(ApiError) as error:
            client.get_image("42")
        assert (error.value.status, error.value.title, error.value.detail) == (
            404,
            "Not Found",
            "no image 42",
        )
        assert error.value.type == "about:blank" and "GET http://api.test/images/42" in str(error.value)
        with pytest.raises(ApiError) as error:  # not problem+json (a proxy's page): made up from the status
            client.health()
        assert error.value.status == 502 and "bad gateway" in error.value.detail


def test_fields_a_newer_server_adds_are_kept() -> None:
    record = image_json(dominant_colour="#a03020")
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=record))
    with Client("http://api.test", transport=transport) as client:
        image = client.get_image(record["id"])
    assert image.model_extra == {"dominant_colour": "#a03020"}


def test_url_and_key_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESEARCH_URL", "http://from-env.test")
    monkeypatch.setenv("IMAGESEARCH_API_KEY", "env-key")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [image_json()], "next_cursor": None})

    with Client(transport=httpx.MockTransport(handler)) as client:
        assert len(list(client.list_images())) == 1
    assert seen[0].url.host == "from-env.test" and seen[0].headers["authorization"] == "Bearer env-key"


def test_search_sends_only_the_options_given() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        response: dict[str, Any] = {
            "results": [],
            "next_cursor": None,
            "took_ms": 1.0,
            "model": "m",
            "mode": "keyword",
        }
        return httpx.Response(200, json=response)

    after = datetime(2026, 1, 1, tzinfo=UTC)
    with Client("http://api.test", transport=httpx.MockTransport(handler)) as client:
        client.search("red", mode="keyword", filters={"tags": ["a"], "created_after": after})
    assert bodies == [
        {
            "query": "red",
            "mode": "keyword",
            "filters": {"tags": ["a"], "created_after": "2026-01-01T00:00:00Z"},
        }
    ]


def test_async_client_retries_and_raises_alike() -> None:
    record = image_json()
    calls: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            return httpx.Response(503, headers={"Retry-After": "0"})
        if request.url.path.endswith("/missing"):
            return problem(404, "no such image")
        return httpx.Response(200, json=record)

    async def scenario() -> None:
        async with AsyncClient("http://api.test", transport=httpx.MockTransport(handler)) as client:
            assert (await client.get_image(record["id"])).id == (await client.get_image(record["id"])).id
            with pytest.raises(ApiError) as error:
                await client.get_image("missing")
            assert error.value.status == 404

    run_async(scenario())
    assert len(calls) == 4  # one 503, answered again, then two reads and the 404


def test_verify_webhook_is_the_servers_verification() -> None:
    body = b'{"type":"image.ready"}'
    header = sign("whsec", body)
    assert verify_webhook("whsec", body, header) > 0
    with pytest.raises(InvalidSignature):
        verify_webhook("other", body, header)
