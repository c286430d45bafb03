"""The edge authorizers in the SAM template (docs/edge-auth.md): the API-key Lambda authorizer with its
result cache, API Gateway's JWT authorizer, and GET /health open to anyone, for each AuthMode.

Until template.yaml carries them, the block docs/edge-auth.md gives for it is merged into the template
first; from then on the template itself is checked. CloudFormation resolves the mode's conditions at
deploy time, so the tests resolve them here for each mode (`resolved`)."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from support.deploy import cfn_json, errors, findings, lint, parse_template, translate

from imagesearch.config import REPO_ROOT
from imagesearch.local.functions import load_function

DOC = REPO_ROOT / "docs" / "edge-auth.md"
MODES = ("api_key", "jwt", "none")
JWT_PARAMETERS = {
    "JwtIssuer": "https://id.example.test/",
    "JwtAudience": "imagesearch-api",
    "JwtJwksUrl": "https://id.example.test/.well-known/jwks.json",
}
API_GATEWAY_AUTHORIZER_WAIT_SECONDS = 10  # http-api-quotas: "Timeout for Lambda authorizer response"


def snippet() -> dict[str, Any]:
    """The yaml block that follows the marker in docs/edge-auth.md."""
    text = DOC.read_text("utf-8")
    marker = text.index("<!-- edge-auth template snippet")
    block = re.search(r"```yaml\n(.*?)\n```", text[marker:], re.S)
    assert block is not None, "docs/edge-auth.md lost its template block"
    return parse_template(block.group(1))


def with_snippet(template: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(template)
    for section in ("Parameters", "Conditions"):
        merged.setdefault(section, {}).update(block.get(section, {}))
    for name, resource in block["Resources"].items():
        if name in merged["Resources"]:
            merged["Resources"][name]["Properties"].update(resource["Properties"])
        else:
            merged["Resources"][name] = resource
    return merged


@pytest.fixture(scope="module")
def edge_template(sam_template: dict[str, Any]) -> dict[str, Any]:
    if "AuthorizerFunction" in sam_template["Resources"]:
        return sam_template
    return with_snippet(sam_template, snippet())


@pytest.fixture(scope="module")
def translated(edge_template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The CloudFormation for each AuthMode (SAM's view; conditions still unresolved)."""
    return {
        mode: translate(edge_template, {"AuthMode": mode, **(JWT_PARAMETERS if mode == "jwt" else {})})
        for mode in MODES
    }


# --- resolving the conditions as CloudFormation does at deploy time ---


def condition(cfn: dict[str, Any], name: str, values: dict[str, Any]) -> bool:
    def evaluate(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return values.get(arg, cfn["Parameters"].get(arg, {}).get("Default"))
            if key == "Condition":
                return condition(cfn, arg, values)
            if key == "Fn::Equals":
                return str(evaluate(arg[0])) == str(evaluate(arg[1]))
            if key == "Fn::Not":
                return not evaluate(arg[0])
            if key == "Fn::And":
                return all(evaluate(a) for a in arg)
            if key == "Fn::Or":
                return any(evaluate(a) for a in arg)
        return node

    return bool(evaluate(cfn["Conditions"][name]))


NO_VALUE = object()


def resolved(cfn: dict[str, Any], node: Any, values: dict[str, Any]) -> Any:
    """`node` with every Fn::If decided and AWS::NoValue dropped."""
    if isinstance(node, dict):
        if list(node) == ["Fn::If"]:
            name, yes, no = node["Fn::If"]
            return resolved(cfn, yes if condition(cfn, name, values) else no, values)
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        items = {k: resolved(cfn, v, values) for k, v in node.items()}
        return {k: v for k, v in items.items() if v is not NO_VALUE}
    if isinstance(node, list):
        return [v for v in (resolved(cfn, item, values) for item in node) if v is not NO_VALUE]
    return node


def deployed(cfn: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The resources CloudFormation would create for these parameter values, conditions resolved."""
    return {
        name: resolved(cfn, resource, values)
        for name, resource in cfn["Resources"].items()
        if "Condition" not in resource or condition(cfn, resource["Condition"], values)
    }


def route_security(resources: dict[str, Any]) -> dict[tuple[str, str], Any]:
    body = resources["HttpApi"]["Properties"]["Body"]
    return {
        (method.upper(), path): operation.get("security")
        for path, operations in body["paths"].items()
        for method, operation in operations.items()
    }


# --- lint ---


def test_the_template_with_the_edge_authorizers_lints_clean(
    edge_template: dict[str, Any], translated: dict[str, dict[str, Any]]
) -> None:
    assert errors(lint(cfn_json(edge_template))) == []
    for mode, cfn in translated.items():
        assert errors(lint(cfn_json(cfn))) == [], mode


def test_the_edge_authorizers_add_no_lint_finding_of_a_new_kind(
    sam_template: dict[str, Any], edge_template: dict[str, Any], translated: dict[str, dict[str, Any]]
) -> None:
    """cfn-lint with the serverless rules, warnings included: the authorizer's resources raise only the
    kinds of finding the rest of the template raises (and docs/deploy.md justifies)."""

    def rules(*texts: str) -> set[str]:
        return {f.split(" ", 1)[0] for text in texts for f in findings(lint(text, serverless=True))}

    before = rules(cfn_json(sam_template), cfn_json(translate(sam_template)))
    after = rules(cfn_json(edge_template), cfn_json(translated["api_key"]))
    assert after <= before, after - before


# --- the routes ---


def test_every_route_but_health_has_the_modes_authorizer(translated: dict[str, dict[str, Any]]) -> None:
    served = set()
    for name in ("upload", "search"):
        for path, operations in load_function(name).app.openapi()["paths"].items():
            path = path.replace("{image_id}", "{id}").replace("{webhook_id}", "{id}")
            served |= {(method.upper(), path) for method in operations}
    expected: dict[str, Any] = {
        "api_key": [{"ApiKeyAuthorizer": []}],
        "jwt": [{"JwtAuthorizer": []}],
        "none": None,
    }
    for mode, cfn in translated.items():
        security = route_security(deployed(cfn, {"AuthMode": mode}))
        assert set(security) == served, mode  # the body names no route the apps do not serve
        assert security.pop(("GET", "/health")) is None, mode
        wrong = {route: value for route, value in security.items() if value != expected[mode]}
        assert not wrong, (mode, wrong)


def test_api_key_mode_caches_verdicts_per_authorization_header(translated: dict[str, dict[str, Any]]) -> None:
    cfn = translated["api_key"]
    assert cfn["Parameters"]["ApiKeyAuthCacheSeconds"] | {"Description": ""} == {
        "Type": "Number",
        "Default": 30,
        "MinValue": 0,
        "MaxValue": 3600,  # API Gateway's maximum
        "Description": "",
    }
    schemes = deployed(cfn, {"AuthMode": "api_key"})["HttpApi"]["Properties"]["Body"]["components"]
    authorizer = schemes["securitySchemes"]["ApiKeyAuthorizer"]["x-amazon-apigateway-authorizer"]
    assert authorizer == {
        "type": "request",
        "authorizerUri": {
            "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
            "${AuthorizerFunction.Arn}/invocations"
        },
        "authorizerPayloadFormatVersion": "2.0",
        "enableSimpleResponses": True,
        "identitySource": ["$request.header.Authorization"],
        "authorizerResultTtlInSeconds": {"Ref": "ApiKeyAuthCacheSeconds"},
    }
    assert list(schemes["securitySchemes"]) == ["ApiKeyAuthorizer"]
    # Without the cache there is no identity source: requests with X-API-Key reach the authorizer.
    uncached = deployed(cfn, {"AuthMode": "api_key", "ApiKeyAuthCacheSeconds": 0})
    body = uncached["HttpApi"]["Properties"]["Body"]
    assert (
        "identitySource"
        not in body["components"]["securitySchemes"]["ApiKeyAuthorizer"]["x-amazon-apigateway-authorizer"]
    )


def test_jwt_mode_uses_api_gateways_jwt_authorizer_with_the_deployments_issuer(
    translated: dict[str, dict[str, Any]],
) -> None:
    resources = deployed(translated["jwt"], {"AuthMode": "jwt"})
    schemes = resources["HttpApi"]["Properties"]["Body"]["components"]["securitySchemes"]
    assert schemes == {
        "JwtAuthorizer": {
            "type": "oauth2",
            "x-amazon-apigateway-authorizer": {
                "type": "jwt",
                "identitySource": "$request.header.Authorization",
                "jwtConfiguration": {"issuer": {"Ref": "JwtIssuer"}, "audience": [{"Ref": "JwtAudience"}]},
            },
        }
    }
    # the functions check the claims against the same issuer
    env = resources["UploadFunction"]["Properties"]["Environment"]["Variables"]
    assert env["IMAGESEARCH_JWT_ISSUER"] == {"Ref": "JwtIssuer"}
    assert not any(name.startswith("Authorizer") for name in resources)


def test_the_authorizer_exists_in_api_key_mode_only(translated: dict[str, dict[str, Any]]) -> None:
    for mode, cfn in translated.items():
        names = {n for n in deployed(cfn, {"AuthMode": mode}) if n.startswith("Authorizer")}
        if mode == "api_key":
            assert {
                "AuthorizerFunction",
                "AuthorizerRole",
                "AuthorizerPermission",
                "AuthorizerLogGroup",
            } <= names
        else:
            assert names == set(), mode


# --- the authorizer function ---


def test_the_authorizer_answers_well_inside_api_gateways_wait(translated: dict[str, dict[str, Any]]) -> None:
    resources = deployed(translated["api_key"], {"AuthMode": "api_key"})
    function = resources["AuthorizerFunction"]["Properties"]
    assert function["Handler"] == "app.handler" and function["Runtime"] == "python3.12"
    assert function["Timeout"] < API_GATEWAY_AUTHORIZER_WAIT_SECONDS
    env = function["Environment"]["Variables"]
    connect, statement = (
        float(env["IMAGESEARCH_DB_CONNECT_TIMEOUT"]),
        int(env["IMAGESEARCH_DB_STATEMENT_TIMEOUT_MS"]),
    )
    # a database that does not answer is given up in time to defer the verdict, not to time out
    assert connect + statement / 1000 < function["Timeout"]
    assert env["IMAGESEARCH_AUTH_MODE"] == {"Ref": "AuthMode"}
    assert not any(name.startswith("IMAGESEARCH_JWT_") for name in env)
    assert function["ReservedConcurrentExecutions"] == {"Ref": "AuthorizerReservedConcurrency"}
    assert callable(load_function("authorizer").handler)


def test_only_the_apis_authorizers_may_invoke_it(translated: dict[str, dict[str, Any]]) -> None:
    permission = deployed(translated["api_key"], {"AuthMode": "api_key"})["AuthorizerPermission"]
    assert permission["Properties"] == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]},
        "Principal": "apigateway.amazonaws.com",
        "SourceArn": {
            "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
            "${HttpApi}/authorizers/*"
        },
    }


def test_the_authorizers_role_reaches_its_logs_and_the_database_only(
    translated: dict[str, dict[str, Any]],
) -> None:
    cfn = translated["api_key"]
    for values, database in (
        ({"AuthMode": "api_key"}, set()),
        (
            {
                "AuthMode": "api_key",
                "DatabaseSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
                "DatabaseInstanceId": "db",
            },
            {"rds-db:connect"},
        ),
        (
            {
                "AuthMode": "api_key",
                "DatabaseSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
            },
            {"secretsmanager:GetSecretValue"},
        ),
    ):
        role = deployed(cfn, values)["AuthorizerRole"]["Properties"]
        assert "ManagedPolicyArns" not in role
        actions: dict[str, Any] = {}
        for policy in role["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                for action in (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                ):
                    actions[action] = statement["Resource"]
        assert actions.pop("logs:CreateLogStream") == {"Fn::GetAtt": ["AuthorizerLogGroup", "Arn"]}
        assert actions.pop("logs:PutLogEvents") == {"Fn::GetAtt": ["AuthorizerLogGroup", "Arn"]}
        # Resource "*" only where the service has no resource-level permissions
        wildcard = {a for a, r in actions.items() if r == "*"}
        assert all(a.startswith(("ec2:", "xray:")) for a in wildcard), wildcard
        assert set(actions) - wildcard == database, values
        assert not any(a.startswith("s3:") for a in actions)
    text = json.dumps(cfn["Resources"]["AuthorizerRole"])
    assert "logs:*" not in text and "AWSLambda" not in text
