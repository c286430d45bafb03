"""The API described once: openapi.json is the apps' own schema, and the client's models agree with it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from imagesearch.cli.main import main
from imagesearch.cli.openapi import OPENAPI_PATH, REGENERATE, public_openapi, render
from imagesearch.client.bodies import REQUEST_SCHEMAS
from imagesearch.client.models import RESPONSE_SCHEMAS

Kind = tuple[Any, ...]


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI_PATH.read_text("utf-8"))
    return document


def test_committed_document_is_the_apps_schema() -> None:
    current = render(public_openapi())
    committed = OPENAPI_PATH.read_text("utf-8") if OPENAPI_PATH.exists() else ""
    assert committed == current, f"{OPENAPI_PATH.name} differs from the apps' schema: run `{REGENERATE}`"


def test_check_command_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openapi", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["openapi"]) == 0  # prints the document
    assert json.loads(capsys.readouterr().out) == json.loads(OPENAPI_PATH.read_text("utf-8"))


def test_document_is_the_public_api_only(committed: dict[str, Any]) -> None:
    paths = set(committed["paths"])
    assert {"/images", "/search", "/uploads", "/health"} <= paths
    assert not any(
        p.startswith(("/files", "/events")) for p in paths
    )  # local stack, embed function: internal


# --- the client's models against the document ---

NAMES = {model.__name__: name for model, name in {**RESPONSE_SCHEMAS, **REQUEST_SCHEMAS}.items()}


def kinds(schema: dict[str, Any], names: dict[str, str]) -> frozenset[Kind]:
    """The values a JSON schema admits, coarsely: JSON types (strings with their format), array items,
    object values, and references by component name (`names` maps the client's class names to them)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return frozenset({("ref", names.get(name, name))})
    for union in ("anyOf", "oneOf", "allOf"):
        if union in schema:
            return frozenset().union(*(kinds(part, names) for part in schema[union]))
    types = schema.get("type", "string" if "enum" in schema or "const" in schema else None)
    if types is None:
        return frozenset({("any",)})
    result: set[Kind] = set()
    for kind in types if isinstance(types, list) else [types]:
        if kind == "string":
            result.add(("string", schema.get("format")))
        elif kind == "array":
            result.add(("array", kinds(schema.get("items", {}), names)))
        elif kind == "object":
            values = schema.get("additionalProperties")
            result.add(("object", kinds(values, names) if isinstance(values, dict) else None))
        else:
            result.add((kind,))
    return frozenset(result)


def covers(wide: Kind, narrow: Kind) -> bool:
    """Whether a value of kind `narrow` is one of kind `wide`."""
    if wide == ("any",) or wide == narrow:
        return True
    if wide[0] == "string":
        return narrow[0] == "string" and wide[1] is None
    if wide == ("number",):
        return narrow == ("integer",)
    if wide[0] == "array":
        return narrow[0] == "array" and accepts(wide[1], narrow[1])
    if wide[0] == "object":
        return (
            wide[1] is None
            and narrow[0] in ("object", "ref")
            or (narrow[0] == "object" and narrow[1] is not None and accepts(wide[1], narrow[1]))
        )
    return False


def accepts(wide: frozenset[Kind], narrow: frozenset[Kind]) -> bool:
    return all(any(covers(w, n) for w in wide) for n in narrow)


def client_schema(model: Any) -> dict[str, Any]:
    schema: dict[str, Any] = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
    return schema


@pytest.mark.parametrize(
    ("model", "component", "direction"),
    [(m, c, "response") for m, c in RESPONSE_SCHEMAS.items()]
    + [(m, c, "request") for m, c in REQUEST_SCHEMAS.items()],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_client_model_matches_the_document(
    committed: dict[str, Any], model: Any, component: str, direction: str
) -> None:
    """Responses: every field the server sends is one the model reads, of a type it accepts, required only
    where the server always sends it. Requests: every key the client sends is one the server takes, of a
    type it accepts, and every key the server requires is required of the caller."""
    server = committed["components"]["schemas"].get(component)
    assert server is not None, (
        f"openapi.json has no component {component} (for the client's {model.__name__})"
    )
    client = client_schema(model)
    server_fields, client_fields = server.get("properties", {}), client.get("properties", {})
    assert set(client_fields) == set(server_fields), (
        f"{model.__name__} and {component} name different fields: client only "
        f"{sorted(set(client_fields) - set(server_fields))}, server only "
        f"{sorted(set(server_fields) - set(client_fields))}"
    )
    server_required, client_required = set(server.get("required", [])), set(client.get("required", []))
    if direction == "response":
        assert client_required <= server_required, f"{model.__name__} requires what the server may leave out"
    else:
        assert server_required <= client_required, f"{model.__name__} may leave out what the server requires"
    for field, server_field in server_fields.items():
        server_kinds = kinds(server_field, {})
        client_kinds = kinds(client_fields[field], NAMES)
        wide, narrow = (
            (client_kinds, server_kinds) if direction == "response" else (server_kinds, client_kinds)
        )
        assert accepts(wide, narrow), (
            f"{model.__name__}.{field}: client {client_kinds}, server {server_kinds}"
        )


def test_kinds_tell_incompatible_types_apart() -> None:
    """The comparison is not vacuous: a UUID field does not accept any string, an int no float."""
    uuid, text = kinds({"type": "string", "format": "uuid"}, {}), kinds({"type": "string"}, {})
    integer, number = kinds({"type": "integer"}, {}), kinds({"type": "number"}, {})
    assert accepts(text, uuid) and not accepts(uuid, text)
    assert accepts(number, integer) and not accepts(integer, number)
    nullable = kinds({"anyOf": [{"type": "string"}, {"type": "null"}]}, {})
    assert accepts(nullable, text) and not accepts(text, nullable)
    assert not accepts(
        kinds({"type": "array", "items": {"type": "integer"}}, {}), kinds({"type": "array"}, {})
    )
