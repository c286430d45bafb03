"""POST/GET/DELETE /webhooks and the deliveries log: the contract, tenancy, and refused URLs (SSRF)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.auth import Caller

from imagesearch.config import Settings
from imagesearch.runtime import configure

ALL_EVENTS = ["image.ready", "image.failed", "image.deleted"]


def subscribe(client: TestClient, caller: Caller, url: str, **fields: Any) -> Any:
    body = {"url": url, "events": fields.pop("events", ALL_EVENTS), **fields}
    return client.post("/webhooks", headers=caller.headers, json=body)


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


def test_a_subscription_is_created_listed_shown_and_deleted(client: TestClient, alice: Caller) -> None:
    created = subscribe(
        client, alice, "https://hooks.example.com/in", events=["image.ready", "image.ready"], description="CI"
    )

    assert created.status_code == 201, created.text
    hook = created.json()
    assert set(hook) == {"id", "url", "events", "description", "secret", "created_at"}
    assert hook["url"] == "https://hooks.example.com/in" and hook["events"] == ["image.ready"]
    assert hook["description"] == "CI" and hook["secret"].startswith("whsec_")
    listed = client.get("/webhooks", headers=alice.headers).json()["items"]
    shown = client.get(f"/webhooks/{hook['id']}", headers=alice.headers).json()
    assert [item["id"] for item in listed] == [hook["id"]]
    assert "secret" not in listed[0] and "secret" not in shown  # shown once, at creation
    assert shown == {k: v for k, v in hook.items() if k != "secret"}
    deliveries = client.get(f"/webhooks/{hook['id']}/deliveries", headers=alice.headers).json()
    assert deliveries == {"items": [], "next_cursor": None}

    assert client.delete(f"/webhooks/{hook['id']}", headers=alice.headers).status_code == 204
    assert client.get(f"/webhooks/{hook['id']}", headers=alice.headers).status_code == 404
    assert client.get("/webhooks", headers=alice.headers).json() == {"items": []}


def test_another_tenants_webhook_is_404_everywhere(client: TestClient, alice: Caller, bob: Caller) -> None:
    hook = subscribe(client, alice, "https://hooks.example.com/alice").json()

    for method, path in [
        ("GET", f"/webhooks/{hook['id']}"),
        ("DELETE", f"/webhooks/{hook['id']}"),
        ("GET", f"/webhooks/{hook['id']}/deliveries"),
    ]:
        assert_problem(client.request(method, path, headers=bob.headers), 404)
    assert client.get("/webhooks", headers=bob.headers).json() == {"items": []}
    assert client.get(f"/webhooks/{hook['id']}", headers=alice.headers).status_code == 200


def test_webhooks_need_credentials_when_auth_is_on(client: TestClient, alice: Caller) -> None:
    assert client.get("/webhooks").status_code == 401
    assert (
        client.post("/webhooks", json={"url": "https://a.example", "events": ALL_EVENTS}).status_code == 401
    )


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://example.com/hook", "events": ALL_EVENTS},
        {"url": "javascript:alert(1)", "events": ALL_EVENTS},
        {"url": "http://user:secret@example.com/hook", "events": ALL_EVENTS},
        {"url": "http://exämple.com/hook", "events": ALL_EVENTS},
        {"url": "http://example.com/\u202ekoo\u0000h", "events": ALL_EVENTS},
        {"url": "http://example.com/a b", "events": ALL_EVENTS},
        {"url": "http://[::1", "events": ALL_EVENTS},
        {"url": "http://example.com:99999/", "events": ALL_EVENTS},
        {"url": "http:///nohost", "events": ALL_EVENTS},
        {"url": "", "events": ALL_EVENTS},
        {"url": "https://example.com/" + "a" * 3000, "events": ALL_EVENTS},
        {"url": "https://example.com/", "events": []},
        {"url": "https://example.com/", "events": ["image.exploded"]},
        {"url": "https://example.com/", "events": ["image.ready"] * 10_000},
        {"url": "https://example.com/", "events": "image.ready"},
        {"url": "https://example.com/", "events": [None]},
        {"url": 42, "events": ALL_EVENTS},
        {"url": "https://example.com/", "events": ALL_EVENTS, "description": "x" * 501},
        {"url": "https://example.com/", "events": ALL_EVENTS, "secret": "mine"},
        {"events": ALL_EVENTS},
    ],
)
def test_bad_input_is_422_never_500(client: TestClient, alice: Caller, body: dict[str, Any]) -> None:
    assert_problem(client.post("/webhooks", headers=alice.headers, json=body), 422)
    assert client.get("/webhooks", headers=alice.headers).json() == {"items": []}


def test_a_malformed_cursor_or_id_is_refused(client: TestClient, alice: Caller) -> None:
    hook = subscribe(client, alice, "https://hooks.example.com/in").json()
    bad_cursor = client.get(f"/webhooks/{hook['id']}/deliveries?cursor=%C3%A9%00", headers=alice.headers)
    assert_problem(bad_cursor, 422)
    assert_problem(client.get("/webhooks/not-a-uuid", headers=alice.headers), 422)
    assert_problem(client.get(f"/webhooks/{hook['id']}/deliveries?limit=0", headers=alice.headers), 422)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://127.1/hook",
        "http://2130706433/hook",  # 127.0.0.1 as one decimal number
        "http://0.0.0.0/",
        "http://10.0.0.8/hook",
        "http://172.16.5.4/hook",
        "http://192.168.1.10/hook",
        "http://100.64.0.1/hook",  # carrier-grade NAT
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://224.0.0.1/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://localhost:8080/hook",  # a name that resolves to loopback
    ],
)
def test_private_loopback_and_link_local_urls_are_refused(
    client: TestClient, alice: Caller, hook_settings: Settings, url: str
) -> None:
    configure(hook_settings.model_copy(update={"webhook_allow_private_urls": False}))
    problem = assert_problem(subscribe(client, alice, url), 422)
    assert "public addresses only" in problem["detail"]
    assert client.get("/webhooks", headers=alice.headers).json() == {"items": []}


def test_a_public_address_is_accepted_with_the_check_on(
    client: TestClient, alice: Caller, hook_settings: Settings
) -> None:
    configure(hook_settings.model_copy(update={"webhook_allow_private_urls": False}))
    assert subscribe(client, alice, "https://93.184.216.34:8443/hook").status_code == 201


def test_a_tenant_has_at_most_twenty_webhooks(client: TestClient, alice: Caller) -> None:
    for n in range(20):
        assert subscribe(client, alice, f"https://hooks.example.com/{n}").status_code == 201
    assert_problem(subscribe(client, alice, "https://hooks.example.com/21"), 422)
