"""template.yaml: lints clean before and after the SAM transform, and is wired as DESIGN.md section 7 and
docs/deploy.md say: the proxy, the VPC, the roles, the alarms, the search alias."""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from support.deploy import TEMPLATE, cfn_json, errors, findings, lint, rule_holds, translate

from imagesearch.config import REPO_ROOT, Settings
from imagesearch.images.object_keys import ORIGINALS, THUMBNAILS
from imagesearch.local.functions import load_function
from imagesearch.local.sam_template import Resolver, function_spec, load_template

FUNCTIONS = ("UploadFunction", "SearchFunction", "EmbedFunction", "WebhooksFunction")
ROLES = {
    "UploadFunction": "UploadRole",
    "SearchFunction": "SearchRole",
    "EmbedFunction": "EmbedRole",
    "WebhooksFunction": "WebhooksRole",
}
# The functions that read images or run the model (the webhooks function does neither).
IMAGE_FUNCTIONS = ("UploadFunction", "SearchFunction", "EmbedFunction")
EXPECTED_ROUTES = {
    ("GET", "/health"): "UploadFunction",
    ("POST", "/images"): "UploadFunction",
    ("POST", "/uploads"): "UploadFunction",
    ("GET", "/images"): "UploadFunction",
    ("GET", "/duplicates"): "UploadFunction",
    ("GET", "/images/{id}"): "UploadFunction",
    ("PATCH", "/images/{id}"): "UploadFunction",
    ("DELETE", "/images/{id}"): "UploadFunction",
    ("POST", "/webhooks"): "UploadFunction",
    ("GET", "/webhooks"): "UploadFunction",
    ("GET", "/webhooks/{id}"): "UploadFunction",
    ("DELETE", "/webhooks/{id}"): "UploadFunction",
    ("GET", "/webhooks/{id}/deliveries"): "UploadFunction",
    ("POST", "/search"): "SearchFunction",
    ("POST", "/search/image"): "SearchFunction",
    ("GET", "/images/{id}/similar"): "SearchFunction",
    ("POST", "/recommend"): "SearchFunction",
    ("POST", "/recommend/images"): "SearchFunction",
}
# What the managed AWSLambdaVPCAccessExecutionRole grants besides logs:* on every log group: the network
# interfaces Lambda creates in the VPC for the function. With X-Ray's two actions, the only grants on "*".
NETWORK_INTERFACE_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# Findings of cfn-lint with the serverless rules that docs/deploy.md ("Lint") justifies, each with the
# template it appears in. Nothing else may be reported, and each of these must still be (no stale entries).
JUSTIFIED_LINT_FINDINGS = {
    "WS1004": {"sam", "cfn"},  # the functions' log groups are named, not derived from the function
    "ES6000": {"sam", "cfn"},  # the dead-letter queue has no dead-letter queue
    "ES7000": {"sam", "cfn"},  # the alarm e-mail subscription
    "ES1001": {"sam", "cfn"},  # SQS event source mappings have no on-failure destination (OCR's is explicit)
    "W2001": {"cfn"},  # SAM inlines SearchDeploymentType into the deployment group
    "ES4000": {"sam", "cfn"},  # the webhooks function's triggers have no dead-letter queue
    "ES1007": {"sam", "cfn"},  # nor an on-failure destination: the next minute's schedule redoes them
}
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:imagesearch/db-AbCdEf"
PROXY_ARN = "arn:aws:rds:us-east-1:123456789012:db-proxy:prx-0123456789abcdef0"
# docs/deploy.md "Connections": the defaults fit a database whose max_connections is at least this.
BUDGET_MAX_CONNECTIONS = 200


def resources_of(cfn: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in cfn["Resources"].items() if r["Type"] == kind}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def chosen(value: Any) -> Any:
    """An Fn::If's true branch (the statement or policy a condition adds), recursively."""
    while isinstance(value, dict) and "Fn::If" in value:
        value = value["Fn::If"][1]
    return value


def conditional_policies(role: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A role's conditional inline policies by their condition."""
    return {p["Fn::If"][0]: p["Fn::If"][1] for p in role["Properties"]["Policies"] if "Fn::If" in p}


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of a role's inline policies, conditional ones included (Fn::If's true branch)."""
    found = []
    for policy in role["Properties"].get("Policies", []):
        for statement in as_list(chosen(policy)["PolicyDocument"]["Statement"]):
            found.append(chosen(statement))
    return found


def environment(cfn: dict[str, Any], function: str) -> dict[str, Any]:
    variables: dict[str, Any] = cfn["Resources"][function]["Properties"]["Environment"]["Variables"]
    return variables


def parameter_default(cfn: dict[str, Any], name: str) -> Any:
    return cfn["Parameters"][name]["Default"]


# --- lint ---


def test_the_sam_template_lints_clean() -> None:
    assert errors(lint(TEMPLATE.read_text("utf-8"))) == []


def test_the_translated_cloudformation_lints_clean(cfn: dict[str, Any]) -> None:
    assert errors(lint(cfn_json(cfn))) == []


def test_the_serverless_rules_report_only_what_the_docs_justify(cfn: dict[str, Any]) -> None:
    """cfn-lint with cfn-lint-serverless, warnings included, on the SAM template and its translation:
    every finding is one of the justified rules (a table in docs/deploy.md), and each justified rule still
    fires (an entry whose cause was fixed goes from the table too)."""
    reported: dict[str, set[str]] = {}
    for name, text in (("sam", TEMPLATE.read_text("utf-8")), ("cfn", cfn_json(cfn))):
        for finding in findings(lint(text, serverless=True)):
            rule = finding.split(" ", 1)[0]
            assert rule in JUSTIFIED_LINT_FINDINGS, finding
            reported.setdefault(rule, set()).add(name)
    assert reported == JUSTIFIED_LINT_FINDINGS
    docs = (REPO_ROOT / "docs" / "deploy.md").read_text("utf-8")
    for rule in JUSTIFIED_LINT_FINDINGS:
        assert f"| `{rule}` |" in docs, rule


def test_the_lint_of_the_translation_catches_the_bucket_to_function_cycle(
    sam_template: dict[str, Any],
) -> None:
    """GIVEN the wiring the design avoids: the bucket notifying the embed function directly,
    WHEN it is translated and linted, THEN cfn-lint reports the circular dependency (so the clean lint above
    means something: the cycle only appears after the transform)."""
    direct = copy.deepcopy(sam_template)
    del direct["Resources"]["ImagesBucket"]["Properties"]["NotificationConfiguration"]
    direct["Resources"]["EmbedFunction"]["Properties"]["Events"] = {
        "Upload": {
            "Type": "S3",
            "Properties": {"Bucket": {"Ref": "ImagesBucket"}, "Events": "s3:ObjectCreated:*"},
        }
    }
    found = errors(lint(cfn_json(translate(direct))))
    assert any(e.startswith("E3004") and "ImagesBucket" in e for e in found), found


def test_the_canary_names_the_api_alarm_to_avoid_a_cycle(sam_template: dict[str, Any]) -> None:
    """GIVEN the canary's API alarm given by Ref, WHEN translated and linted, THEN the API -> alias ->
    deployment group -> alarm -> API cycle is reported (why the template names the alarm instead)."""
    by_ref = copy.deepcopy(sam_template)
    preference = by_ref["Resources"]["SearchFunction"]["Properties"]["DeploymentPreference"]
    preference["Alarms"] = [{"Ref": "SearchErrorsAlarm"}, {"Ref": "ApiServerErrorsAlarm"}]
    found = errors(lint(cfn_json(translate(by_ref))))
    assert any(e.startswith("E3004") and "ApiServerErrorsAlarm" in e for e in found), found


# --- HTTP API ---


def routes(cfn: dict[str, Any]) -> dict[tuple[str, str], str]:
    """Each route's integration target: a function's ARN, or an alias (named `<Function>Alias<name>`)."""
    body = cfn["Resources"]["HttpApi"]["Properties"]["Body"]
    found = {}
    for path, operations in body["paths"].items():
        for method, operation in operations.items():
            uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            target = re.search(r"/functions/\$\{(\w+?)(\.Arn)?\}/invocations", uri)
            assert target is not None, uri
            found[(method.upper(), path)] = target.group(1)
    return found


def test_routes_go_to_their_functions_and_search_routes_to_its_alias(cfn: dict[str, Any]) -> None:
    alias = "SearchFunctionAliaslive"
    assert cfn["Resources"][alias]["Type"] == "AWS::Lambda::Alias"
    assert cfn["Resources"][alias]["Properties"]["FunctionName"] == {"Ref": "SearchFunction"}
    expected = {route: alias if f == "SearchFunction" else f for route, f in EXPECTED_ROUTES.items()}
    assert routes(cfn) == expected
    # API Gateway may invoke each function (the search alias) once per route, and the key authorizer
    # (AuthMode=api_key, docs/edge-auth.md) on its own; nothing else may
    permissions = resources_of(cfn, "AWS::Lambda::Permission")
    authorizer = permissions.pop("AuthorizerPermission")
    for events in ("WebhooksFunctionSchedulePermission", "WebhooksOnImageEventsPermission"):  # EventBridge's
        assert permissions.pop(events)["Properties"]["Principal"] == "events.amazonaws.com"
    assert authorizer["Condition"] == "IsApiKey"
    assert authorizer["Properties"]["FunctionName"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    assert len(permissions) == len(EXPECTED_ROUTES)
    assert all(p["Properties"]["Principal"] == "apigateway.amazonaws.com" for p in permissions.values())
    targets = [p["Properties"]["FunctionName"] for p in permissions.values()]
    assert targets.count({"Ref": alias}) == list(EXPECTED_ROUTES.values()).count("SearchFunction")


def test_every_route_of_the_apps_is_deployed_and_no_other() -> None:
    """The template's routes and the FastAPI apps' routes agree (health is served by the upload function)."""
    served = set()
    for name in ("upload", "search"):
        for path, operations in load_function(name).app.openapi()["paths"].items():
            path = path.replace("{image_id}", "{id}").replace("{webhook_id}", "{id}")
            served |= {(method.upper(), path) for method in operations}
    assert served == set(EXPECTED_ROUTES)


def test_http_api_has_cors_from_a_parameter_and_stage_throttling(
    sam_template: dict[str, Any], cfn: dict[str, Any]
) -> None:
    # SAM writes CORS into the API's OpenAPI body at transform time, with the parameter's value
    deployed = translate(sam_template, {"AllowedOrigin": "https://app.example"})
    cors = deployed["Resources"]["HttpApi"]["Properties"]["Body"]["x-amazon-apigateway-cors"]
    assert cors["allowOrigins"] == ["https://app.example"]
    assert {"GET", "POST", "PATCH", "DELETE"} <= set(cors["allowMethods"])
    assert {"authorization", "content-type", "x-api-key"} <= set(cors["allowHeaders"])
    stage = cfn["Resources"]["HttpApiApiGatewayDefaultStage"]["Properties"]["DefaultRouteSettings"]
    assert stage == {
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
    }


@pytest.mark.parametrize(
    "origin, ok",
    [
        ("https://images.example.com", True),
        ("http://localhost:8000", True),
        ("*", True),  # accepted, but only when given: there is no default
        ("https://a.example/path", False),
        ("https://a.example,https://b.example", False),
        ("", False),
    ],
)
def test_allowed_origin_is_asked_for_and_a_wildcard_only_given_on_purpose(
    cfn: dict[str, Any], origin: str, ok: bool
) -> None:
    parameter = cfn["Parameters"]["AllowedOrigin"]
    assert "Default" not in parameter
    assert (re.fullmatch(parameter["AllowedPattern"], origin) is not None) is ok


def test_api_access_logs_are_json_lines_in_their_own_log_group(cfn: dict[str, Any]) -> None:
    settings = cfn["Resources"]["HttpApiApiGatewayDefaultStage"]["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    line = json.loads(re.sub(r"\$context\.[A-Za-z.]+", "x", settings["Format"]))
    variables = dict(re.findall(r'"(\w+)":"\$context\.([A-Za-z.]+)"', settings["Format"]))
    assert line.keys() == variables.keys()
    assert {"requestId", "status", "routeKey", "integrationError"} <= set(line)
    assert variables["integrationError"] == "integrationErrorMessage"
    assert {"responseLatency", "integrationLatency"} <= set(line)
    group = cfn["Resources"]["ApiAccessLogGroup"]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert group["LogGroupName"] == {"Fn::Sub": "/aws/apigateway/${AWS::StackName}-access"}


# --- bucket, queue, embed function ---


def test_bucket_has_a_fixed_name_and_notifies_the_queue_for_originals_only(cfn: dict[str, Any]) -> None:
    bucket = cfn["Resources"]["ImagesBucket"]
    name = bucket["Properties"]["BucketName"]["Fn::Sub"]
    assert "${AWS::StackName}" in name and "${AWS::AccountId}" in name
    (notification,) = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Event"] == "s3:ObjectCreated:*"
    assert notification["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": ORIGINALS}]
    assert "LambdaConfigurations" not in bucket["Properties"]["NotificationConfiguration"]
    # S3 checks the queue policy when the notification is created.
    assert bucket["DependsOn"] == "IngestQueuePolicy"


def test_queue_policy_admits_the_bucket_by_its_known_arn(cfn: dict[str, Any]) -> None:
    policy = cfn["Resources"]["IngestQueuePolicy"]["Properties"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    bucket_name = cfn["Resources"]["ImagesBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    source = statement["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    assert source == f"arn:${{AWS::Partition}}:s3:::{bucket_name}"  # the name, not a Ref: no cycle
    text = json.dumps(policy)
    assert '"Ref": "ImagesBucket"' not in text and "${ImagesBucket" not in text


def test_bucket_allows_browser_puts_from_the_allowed_origins_and_blocks_public_access(
    cfn: dict[str, Any],
) -> None:
    properties = cfn["Resources"]["ImagesBucket"]["Properties"]
    (rule,) = properties["CorsConfiguration"]["CorsRules"]
    assert "PUT" in rule["AllowedMethods"] and rule["AllowedOrigins"] == [{"Ref": "AllowedOrigin"}]
    assert all(properties["PublicAccessBlockConfiguration"].values())


def test_embed_function_consumes_the_queue_with_partial_batch_failures(cfn: dict[str, Any]) -> None:
    mappings = resources_of(cfn, "AWS::Lambda::EventSourceMapping").values()
    # the other: OcrEventSource, with Ocr=true (tests/deploy/test_ocr_template.py)
    (mapping,) = [m for m in mappings if m["Properties"]["FunctionName"] == {"Ref": "EmbedFunction"}]
    properties = mapping["Properties"]
    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BatchSize"] == {"Ref": "EmbedBatchSize"}
    assert properties["MaximumBatchingWindowInSeconds"] == {"Ref": "EmbedBatchWindowSeconds"}
    assert properties["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "EmbedMaxConcurrency"}


def test_failed_messages_go_to_the_dead_letter_queue(cfn: dict[str, Any]) -> None:
    redrive = cfn["Resources"]["IngestQueue"]["Properties"]["RedrivePolicy"]
    assert redrive == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "MaxReceiveCount"},
    }
    dlq = cfn["Resources"]["DeadLetterQueue"]["Properties"]
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600  # the longest: time to look and replay


def test_the_dead_letter_queue_admits_the_ingest_queue_only_and_both_queues_are_kept(
    cfn: dict[str, Any],
) -> None:
    allow = cfn["Resources"]["DeadLetterQueue"]["Properties"]["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    (source,) = allow["sourceQueueArns"]
    ingest_name = cfn["Resources"]["IngestQueue"]["Properties"]["QueueName"]["Fn::Sub"]
    # by the ingest queue's fixed name: a GetAtt would make the two queues depend on each other
    assert source == {
        "Fn::Sub": f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{ingest_name}"
    }
    for queue in ("IngestQueue", "DeadLetterQueue"):
        resource = cfn["Resources"][queue]
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain"), queue


def test_queue_visibility_is_at_least_six_times_the_embed_timeout(cfn: dict[str, Any]) -> None:
    """AWS's advice for an SQS event source, with the longest batching window the parameter allows."""
    timeout = cfn["Resources"]["EmbedFunction"]["Properties"]["Timeout"]
    window = cfn["Parameters"]["EmbedBatchWindowSeconds"]["MaxValue"]
    visibility = cfn["Resources"]["IngestQueue"]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * timeout + window


# --- functions: layers, environment, settings ---


# Each function's layers: the shared package and only the dependency layers it imports from
# (layers/deps/split.py; tests/deploy/test_function_layers.py runs each function with only these).
FUNCTION_LAYERS = {
    "UploadFunction": ["SharedLayer", "CoreDepsLayer", "HttpDepsLayer", "HeifDepsLayer"],
    "SearchFunction": ["SharedLayer", "CoreDepsLayer", "ModelDepsLayer", "HttpDepsLayer"],
    "EmbedFunction": ["SharedLayer", "CoreDepsLayer", "ModelDepsLayer", "HeifDepsLayer", "PlacesDepsLayer"],
    "WebhooksFunction": ["SharedLayer", "CoreDepsLayer"],
}
DEPENDENCY_LAYERS = {
    "CoreDepsLayer": "core",
    "ModelDepsLayer": "model",
    "HttpDepsLayer": "http",
    "HeifDepsLayer": "heif",
    "PlacesDepsLayer": "places",  # the gazetteer (reverse_geocode): embed's alone, search is near the limit
}
LAMBDA_MAX_LAYERS = 5


def test_every_function_runs_python312_with_only_its_layers(cfn: dict[str, Any]) -> None:
    layers = resources_of(cfn, "AWS::Lambda::LayerVersion")  # SAM adds a hash to each logical id
    base = {
        name: next(b for b in [*DEPENDENCY_LAYERS, "SharedLayer"] if name.startswith(b)) for name in layers
    }
    assert sorted(base.values()) == sorted([*DEPENDENCY_LAYERS, "SharedLayer"])
    for function, expected in FUNCTION_LAYERS.items():
        properties = cfn["Resources"][function]["Properties"]
        assert properties["Runtime"] == "python3.12"
        assert properties["Handler"] == "app.handler"
        got = properties["Layers"]
        if function == "SearchFunction":  # the HEIC decoder only with SearchByHeicPicture=true
            *got, heif = got
            condition, chosen, otherwise = heif["Fn::If"]
            assert (condition, base[chosen["Ref"]], otherwise) == (
                "SearchDecodesHeic",
                "HeifDepsLayer",
                {"Ref": "AWS::NoValue"},
            )
        assert [base[layer["Ref"]] for layer in got] == expected
        some_layer = next(iter(layers.values()))
        assert properties["Architectures"] == some_layer["Properties"]["CompatibleArchitectures"]
    for name, function in resources_of(cfn, "AWS::Lambda::Function").items():
        assert len(function["Properties"].get("Layers", [])) <= LAMBDA_MAX_LAYERS, name  # Lambda's limit


def test_layers_are_built_from_the_shared_package_and_the_pinned_requirements(
    sam_template: dict[str, Any],
) -> None:
    shared = sam_template["Resources"]["SharedLayer"]
    assert shared["Properties"]["ContentUri"] == "layers/shared/"
    targets = [(shared, "build-SharedLayer")]
    for name, split_name in DEPENDENCY_LAYERS.items():
        layer = sam_template["Resources"][name]
        assert layer["Properties"]["ContentUri"] == "layers/deps/"
        targets.append((layer, f"build-{name}"))
        makefile = (TEMPLATE.parent / "layers" / "deps" / "Makefile").read_text("utf-8")
        assert f"$(call layer,{split_name})" in makefile.split(f"\nbuild-{name}:")[1].split("\n\n")[0]
    for layer, target in targets:
        assert layer["Metadata"]["BuildMethod"] == "makefile"
        makefile = (TEMPLATE.parent / layer["Properties"]["ContentUri"] / "Makefile").read_text("utf-8")
        assert f"\n{target}:" in makefile and "compileall" in makefile


def test_every_environment_variable_is_a_setting_the_code_reads(cfn: dict[str, Any]) -> None:
    """A misspelt variable would be silently ignored (extra="ignore"): each one must name a Settings field
    (or be one of Powertools' or OpenBLAS's own)."""
    known = {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_LOG_LEVEL",
        "POWERTOOLS_METRICS_NAMESPACE",
        "OPENBLAS_NUM_THREADS",
    }
    for name, field in Settings.model_fields.items():
        known.add(f"IMAGESEARCH_{name.upper()}")
        alias = field.validation_alias
        known |= set(getattr(alias, "choices", []) or ([alias] if isinstance(alias, str) else []))
    for function in FUNCTIONS:
        names = set(environment(cfn, function))
        assert names <= known, names - known


def test_environment_carries_the_parameters(cfn: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        env = environment(cfn, function)
        assert env["IMAGESEARCH_STORAGE_URL"] == {"Fn::Sub": "s3://${ImagesBucket}"}
        assert env["IMAGESEARCH_AUTH_MODE"] == {"Ref": "AuthMode"}
        assert env["IMAGESEARCH_MAX_UPLOAD_BYTES"] == {"Ref": "MaxUploadBytes"}
        assert env["IMAGESEARCH_MAX_IMAGE_PIXELS"] == {"Ref": "MaxImagePixels"}
        assert env["IMAGESEARCH_PRESIGN_EXPIRY_SECONDS"] == {"Ref": "PresignExpirySeconds"}
        assert env["MODEL_URI"]["Fn::If"][0] == "HasModelUri"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "imagesearch"
    search, upload = environment(cfn, "SearchFunction"), environment(cfn, "UploadFunction")
    for replica in ("IMAGESEARCH_DATABASE_REPLICA_URL", "IMAGESEARCH_DATABASE_REPLICA_SECRET_ARN"):
        assert replica in search and replica not in upload  # the search function's own variables
    assert search["IMAGESEARCH_DATABASE_REPLICA_SECRET_ARN"]["Fn::If"][1] == {"Ref": "ReplicaSecretArn"}


def test_presigned_urls_are_capped_where_the_settings_cap_them(cfn: dict[str, Any]) -> None:
    (limit,) = [m.le for m in Settings.model_fields["presign_expiry_seconds"].metadata if hasattr(m, "le")]
    assert cfn["Parameters"]["PresignExpirySeconds"]["MaxValue"] == limit == 3600


def test_each_functions_statement_timeout_ends_before_the_function_does(cfn: dict[str, Any]) -> None:
    """A query still running after Lambda stopped the function would hold its connection for nothing."""
    for function in FUNCTIONS:
        timeout_ms = 1000 * cfn["Resources"][function]["Properties"]["Timeout"]
        statement_ms = int(environment(cfn, function)["IMAGESEARCH_DB_STATEMENT_TIMEOUT_MS"])
        # room for the connection, the rest of the request and the response
        assert 0 < statement_ms <= timeout_ms - 2000, function


def test_functions_are_traced(cfn: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        assert cfn["Resources"][function]["Properties"]["TracingConfig"] == {"Mode": "Active"}
        tracing = [s for s in statements(cfn["Resources"][ROLES[function]]) if s.get("Sid") == "Tracing"]
        assert [(set(as_list(s["Action"])), s["Resource"]) for s in tracing] == [(XRAY_ACTIONS, "*")]


# --- the database: three modes, the proxy ---


DATABASE_MODE_PARAMETERS = ("DatabaseInstanceId", "DatabaseClusterId", "DatabaseSecretArn", "DatabaseUrl")
EXAMPLE_VALUES = {
    "DatabaseInstanceId": "imagesearch-db",
    "DatabaseClusterId": "imagesearch-aurora",
    "DatabaseSecretArn": SECRET_ARN,
    "DatabaseUrl": "postgresql://dev:dev@db.example:5432/imagesearch",
}
# (instance, cluster, secret, url) set -> the mode the functions get
DATABASE_MODES: dict[tuple[bool, ...], str] = {
    (True, False, True, False): "proxy",
    (False, True, True, False): "proxy",
    (False, False, True, False): "secret",
    (False, False, False, True): "url",
}


@pytest.mark.parametrize("given", list(itertools.product([False, True], repeat=4)))
def test_exactly_one_database_mode_is_admitted_and_the_functions_get_it(
    cfn: dict[str, Any], given: tuple[bool, ...]
) -> None:
    """Every combination of the four database parameters: the rule admits the three modes and nothing
    else, and in each admitted one the functions get what that mode needs (as `sam local` resolves it)."""
    values = {
        name: EXAMPLE_VALUES[name] if on else ""
        for name, on in zip(DATABASE_MODE_PARAMETERS, given, strict=True)
    }
    mode = DATABASE_MODES.get(given)
    assert rule_holds(cfn["Rules"]["OneDatabaseMode"], values) is (mode is not None)
    if mode is None:
        return
    env = function_spec(load_template(TEMPLATE), REPO_ROOT, "embed", parameter_overrides=values).environment
    if mode == "proxy":
        # the proxy's endpoint is only known in AWS: a local resolution leaves it empty
        assert env["IMAGESEARCH_DATABASE_URL"] == "postgresql://imagesearch@:5432/imagesearch?sslmode=require"
        assert env["IMAGESEARCH_DATABASE_IAM_AUTH"] == "true"
        assert "IMAGESEARCH_DATABASE_SECRET_ARN" not in env
    elif mode == "secret":
        assert env["IMAGESEARCH_DATABASE_SECRET_ARN"] == SECRET_ARN
        assert "IMAGESEARCH_DATABASE_URL" not in env and "IMAGESEARCH_DATABASE_IAM_AUTH" not in env
    else:
        assert env["IMAGESEARCH_DATABASE_URL"] == EXAMPLE_VALUES["DatabaseUrl"]
        assert "IMAGESEARCH_DATABASE_SECRET_ARN" not in env and "IMAGESEARCH_DATABASE_IAM_AUTH" not in env


def test_functions_reach_the_proxy_as_the_database_user_with_tls(cfn: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        env = environment(cfn, function)
        condition, through_proxy, otherwise = env["IMAGESEARCH_DATABASE_URL"]["Fn::If"]
        assert condition == "UsesProxy"
        assert through_proxy == {
            "Fn::Sub": "postgresql://${DatabaseUser}@${DatabaseProxy.Endpoint}:5432/${DatabaseName}?sslmode=require"
        }
        assert otherwise == {
            "Fn::If": ["ReadsDatabaseSecret", {"Ref": "AWS::NoValue"}, {"Ref": "DatabaseUrl"}]
        }
        assert env["IMAGESEARCH_DATABASE_IAM_AUTH"] == {
            "Fn::If": ["UsesProxy", "true", {"Ref": "AWS::NoValue"}]
        }
        assert env["IMAGESEARCH_DATABASE_SECRET_ARN"]["Fn::If"][:2] == [
            "ReadsDatabaseSecret",
            {"Ref": "DatabaseSecretArn"},
        ]


def test_each_role_may_connect_as_the_database_user_through_this_proxy_only(cfn: dict[str, Any]) -> None:
    for role in ROLES.values():
        policy = conditional_policies(cfn["Resources"][role])["UsesProxy"]
        (statement,) = policy["PolicyDocument"]["Statement"]
        assert statement["Action"] == "rds-db:connect"
        pattern, variables = statement["Resource"]["Fn::Sub"]
        assert pattern == (
            "arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}:dbuser:${ProxyId}/${DatabaseUser}"
        )
        index, (separator, arn) = (
            variables["ProxyId"]["Fn::Select"][0],
            variables["ProxyId"]["Fn::Select"][1]["Fn::Split"],
        )
        assert arn == {"Fn::GetAtt": ["DatabaseProxy", "DBProxyArn"]}
        assert PROXY_ARN.split(separator)[index] == "prx-0123456789abcdef0"  # the proxy's resource id


def test_the_proxy_requires_tls_and_iam_and_logs_in_with_the_secret(cfn: dict[str, Any]) -> None:
    proxy = cfn["Resources"]["DatabaseProxy"]
    assert proxy["Condition"] == "UsesProxy"
    properties = proxy["Properties"]
    assert properties["EngineFamily"] == "POSTGRESQL"
    assert properties["RequireTLS"] is True
    assert properties["Auth"] == [
        {"AuthScheme": "SECRETS", "SecretArn": {"Ref": "DatabaseSecretArn"}, "IAMAuth": "REQUIRED"}
    ]
    assert properties["IdleClientTimeout"] == {"Ref": "ProxyIdleClientTimeout"}
    assert properties["VpcSubnetIds"] == {"Ref": "SubnetIds"}
    assert properties["VpcSecurityGroupIds"] == [{"Fn::GetAtt": ["ProxySecurityGroup", "GroupId"]}]
    assert properties["RoleArn"] == {"Fn::GetAtt": ["DatabaseProxyRole", "Arn"]}
    # its role may read that one secret (and decrypt it through Secrets Manager, with a customer key)
    role = cfn["Resources"]["DatabaseProxyRole"]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "rds.amazonaws.com"
    }
    secret, kms = statements(role)
    assert (secret["Action"], secret["Resource"]) == (
        "secretsmanager:GetSecretValue",
        {"Ref": "DatabaseSecretArn"},
    )
    assert (kms["Action"], kms["Resource"]) == ("kms:Decrypt", {"Ref": "SecretsKmsKeyArn"})
    assert "secretsmanager." in json.dumps(kms["Condition"]["StringEquals"]["kms:ViaService"])


def test_the_proxy_targets_the_instance_or_the_cluster_with_a_bounded_pool(cfn: dict[str, Any]) -> None:
    group = cfn["Resources"]["DatabaseProxyTargetGroup"]["Properties"]
    assert group["DBProxyName"] == {"Ref": "DatabaseProxy"} and group["TargetGroupName"] == "default"
    assert group["DBInstanceIdentifiers"]["Fn::If"][:2] == [
        "HasDatabaseInstance",
        [{"Ref": "DatabaseInstanceId"}],
    ]
    assert group["DBClusterIdentifiers"]["Fn::If"][:2] == [
        "HasDatabaseCluster",
        [{"Ref": "DatabaseClusterId"}],
    ]
    assert group["ConnectionPoolConfigurationInfo"] == {
        "MaxConnectionsPercent": {"Ref": "ProxyMaxConnectionsPercent"},
        "MaxIdleConnectionsPercent": {"Ref": "ProxyMaxIdleConnectionsPercent"},
        "ConnectionBorrowTimeout": {"Ref": "ProxyConnectionBorrowTimeout"},
    }
    assert parameter_default(cfn, "ProxyMaxIdleConnectionsPercent") <= parameter_default(
        cfn, "ProxyMaxConnectionsPercent"
    )
    # a request waiting for a connection gives up before any function is stopped
    shortest = min(cfn["Resources"][f]["Properties"]["Timeout"] for f in FUNCTIONS)
    assert parameter_default(cfn, "ProxyConnectionBorrowTimeout") < shortest


def test_reserved_concurrency_is_a_parameter_and_the_defaults_fit_the_connection_budget(
    cfn: dict[str, Any],
) -> None:
    """docs/deploy.md "Connections": each upload, search, embed, authorizer and webhooks container holds
    one connection to the proxy; at the defaults all of them at once fit in the proxy's share of a
    database with max_connections 200."""
    for function, parameter, condition in (
        ("UploadFunction", "UploadReservedConcurrency", "ReservesUploadConcurrency"),
        ("SearchFunction", "SearchReservedConcurrency", "ReservesSearchConcurrency"),
        ("AuthorizerFunction", "AuthorizerReservedConcurrency", "ReservesAuthorizerConcurrency"),
    ):
        reserved = cfn["Resources"][function]["Properties"]["ReservedConcurrentExecutions"]
        assert reserved == {"Fn::If": [condition, {"Ref": parameter}, {"Ref": "AWS::NoValue"}]}
        # -1 leaves the function unreserved (0 would stop it)
        assert cfn["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, -1]}]}
        assert cfn["Parameters"][parameter]["MinValue"] == -1
    containers = sum(
        parameter_default(cfn, p)
        for p in (
            "UploadReservedConcurrency",
            "SearchReservedConcurrency",
            "EmbedMaxConcurrency",
            "AuthorizerReservedConcurrency",
        )
    )
    # the webhooks dispatcher: a fixed reservation of one (claims skip each other's rows; one is enough)
    webhooks = cfn["Resources"]["WebhooksFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert webhooks == 1
    containers += webhooks
    assert containers <= BUDGET_MAX_CONNECTIONS * parameter_default(cfn, "ProxyMaxConnectionsPercent") / 100
    # one connection per search container: POST /search reads on it (from a worker thread), not on an
    # event-loop connection of its own (db/aio.py), which would be a second one
    search = environment(cfn, "SearchFunction")
    assert (search["IMAGESEARCH_DB_POOL_MAX"], search["IMAGESEARCH_DB_ASYNC_READS"]) == ("1", "false")


def test_a_replica_comes_from_a_url_or_a_secret_not_both(cfn: dict[str, Any]) -> None:
    rule = cfn["Rules"]["OneReplicaSource"]
    for url, secret in itertools.product(["", "postgresql://r/db"], ["", SECRET_ARN]):
        values = {"ReplicaUrl": url, "ReplicaSecretArn": secret}
        assert rule_holds(rule, values) is not (url and secret)
    policy = conditional_policies(cfn["Resources"]["SearchRole"])["HasReplicaSecret"]
    (read, _kms) = [chosen(s) for s in policy["PolicyDocument"]["Statement"]]
    assert (read["Action"], read["Resource"]) == (
        "secretsmanager:GetSecretValue",
        {"Ref": "ReplicaSecretArn"},
    )


# --- network ---


def test_the_vpc_parameters_are_typed_and_required(cfn: dict[str, Any]) -> None:
    """CloudFormation checks typed values against the account and refuses an empty one, so they have no
    default: every deploy is in a VPC (docs/deploy.md "Network")."""
    types = {
        "VpcId": "AWS::EC2::VPC::Id",
        "SubnetIds": "List<AWS::EC2::Subnet::Id>",
        "DatabaseSecurityGroupId": "AWS::EC2::SecurityGroup::Id",
    }
    for name, kind in types.items():
        assert cfn["Parameters"][name]["Type"] == kind and "Default" not in cfn["Parameters"][name]
    for function in FUNCTIONS:
        own = [{"Ref": "WebhooksSecurityGroup"}] if function == "WebhooksFunction" else []  # its receivers
        assert cfn["Resources"][function]["Properties"]["VpcConfig"] == {
            "SubnetIds": {"Ref": "SubnetIds"},
            "SecurityGroupIds": [{"Ref": "FunctionSecurityGroup"}, *own],
        }


def test_the_subnets_must_be_in_the_vpc(cfn: dict[str, Any]) -> None:
    rule = cfn["Rules"]["SubnetsInTheVpc"]
    lookup = ("AWS::EC2::Subnet::Id", "VpcId")
    assert rule_holds(rule, {"VpcId": "vpc-1"}, {lookup: ["vpc-1", "vpc-1"]})
    assert not rule_holds(rule, {"VpcId": "vpc-1"}, {lookup: ["vpc-1", "vpc-2"]})


def test_security_groups_chain_the_functions_to_the_proxy_to_the_database(cfn: dict[str, Any]) -> None:
    resources = cfn["Resources"]
    functions = {"Fn::GetAtt": ["FunctionSecurityGroup", "GroupId"]}
    proxy = {"Fn::GetAtt": ["ProxySecurityGroup", "GroupId"]}
    database = {"Ref": "DatabaseSecurityGroupId"}
    # the functions: HTTPS out (S3, Secrets Manager, a JWKS through a NAT), PostgreSQL to the proxy only
    (https,) = resources["FunctionSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert (https["FromPort"], https["ToPort"], https["CidrIp"]) == (443, 443, "0.0.0.0/0")
    to_proxy = resources["FunctionsToProxy"]
    assert to_proxy["Condition"] == "UsesProxy"
    assert to_proxy["Properties"]["GroupId"] == functions
    assert to_proxy["Properties"]["DestinationSecurityGroupId"] == proxy
    assert to_proxy["Properties"]["FromPort"] == to_proxy["Properties"]["ToPort"] == 5432
    # the proxy: in from the functions, out to the database
    (ingress,) = resources["ProxySecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert (ingress["SourceSecurityGroupId"], ingress["FromPort"]) == (functions, 5432)
    (egress,) = resources["ProxySecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert (egress["DestinationSecurityGroupId"], egress["FromPort"]) == (database, {"Ref": "DatabasePort"})
    # the database: in from the proxy (or, without one, the functions), unless managed elsewhere
    assert resources["DatabaseFromProxy"]["Condition"] == "AdmitsProxyToDatabase"
    assert resources["DatabaseFromProxy"]["Properties"]["GroupId"] == database
    assert resources["DatabaseFromProxy"]["Properties"]["SourceSecurityGroupId"] == proxy
    assert resources["DatabaseFromFunctions"]["Condition"] == "AdmitsFunctionsToDatabase"
    assert resources["DatabaseFromFunctions"]["Properties"]["SourceSecurityGroupId"] == functions
    assert resources["FunctionsToDatabase"]["Condition"] == "ConnectsDirectly"


def test_s3_and_secrets_manager_endpoints_are_created_unless_the_vpc_has_them(cfn: dict[str, Any]) -> None:
    s3 = cfn["Resources"]["S3GatewayEndpoint"]
    assert s3["Condition"] == "MakesS3GatewayEndpoint"
    assert s3["Properties"]["VpcEndpointType"] == "Gateway"
    assert s3["Properties"]["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.s3"}
    assert s3["Properties"]["RouteTableIds"] == {"Fn::Split": [",", {"Ref": "S3RouteTableIds"}]}
    secrets = cfn["Resources"]["SecretsManagerEndpoint"]
    assert secrets["Properties"]["VpcEndpointType"] == "Interface"
    assert secrets["Properties"]["PrivateDnsEnabled"] is True
    assert secrets["Properties"]["SubnetIds"] == {"Ref": "SubnetIds"}
    # only where a function reads a secret: with the proxy, no function does
    assert secrets["Condition"] == "MakesSecretsManagerEndpoint"
    for values, made in (
        ({"DatabaseInstanceId": "db", "DatabaseSecretArn": SECRET_ARN}, False),
        ({"DatabaseInstanceId": "db", "DatabaseSecretArn": SECRET_ARN, "ReplicaSecretArn": SECRET_ARN}, True),
        ({"DatabaseSecretArn": SECRET_ARN}, True),
        ({"DatabaseSecretArn": SECRET_ARN, "CreateSecretsManagerEndpoint": "false"}, False),
    ):
        assert Resolver(cfn, values).condition("MakesSecretsManagerEndpoint") is made, values
    rule = cfn["Rules"]["S3GatewayEndpointRoutes"]
    assert not rule_holds(rule, {"CreateS3GatewayEndpoint": "true", "S3RouteTableIds": ""})
    assert rule_holds(rule, {"CreateS3GatewayEndpoint": "true", "S3RouteTableIds": "rtb-0a1,rtb-0b2"})
    assert rule_holds(rule, {"CreateS3GatewayEndpoint": "false", "S3RouteTableIds": ""})
    assert re.fullmatch(cfn["Parameters"]["S3RouteTableIds"]["AllowedPattern"], "rtb-0a1,rtb-0b2")


# --- least privilege ---


def test_each_function_has_its_own_role_with_the_network_interface_permissions_only(
    cfn: dict[str, Any],
) -> None:
    for function, role in ROLES.items():
        assert cfn["Resources"][function]["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}
        assert "ManagedPolicyArns" not in cfn["Resources"][role]["Properties"]
        network = [s for s in statements(cfn["Resources"][role]) if s.get("Sid") == "NetworkInterfaces"]
        assert [(set(s["Action"]), s["Resource"]) for s in network] == [(NETWORK_INTERFACE_ACTIONS, "*")]
    text = json.dumps(cfn)
    assert "AWSLambdaSQSQueueExecutionRole" not in text and "AWSLambdaVPCAccessExecutionRole" not in text


def every_statement(role: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement a role can ever hold: both branches of every condition."""

    def branches(value: Any) -> list[Any]:
        if isinstance(value, dict) and "Fn::If" in value:
            return [b for branch in value["Fn::If"][1:] for b in branches(branch)]
        return [] if value == {"Ref": "AWS::NoValue"} else [value]

    found = []
    for policy in role["Properties"].get("Policies", []):
        for document in branches(policy):
            for statement in as_list(document["PolicyDocument"]["Statement"]):
                found.extend(branches(statement))
    return found


def test_no_role_allows_logs_star_or_acts_on_every_resource_but_network_interfaces_and_xray(
    cfn: dict[str, Any],
) -> None:
    roles = resources_of(cfn, "AWS::IAM::Role")
    assert set(ROLES.values()) | {"DatabaseProxyRole", "AuthorizerRole", "MigrateRole"} <= set(roles)
    for name, role in roles.items():
        for statement in every_statement(role):
            actions = as_list(statement["Action"])
            assert not any(a == "*" or a.endswith(":*") for a in actions), (name, statement)
            if "*" in as_list(statement["Resource"]):
                assert set(actions) <= NETWORK_INTERFACE_ACTIONS | XRAY_ACTIONS, (name, statement)
        managed = role["Properties"].get("ManagedPolicyArns", [])
        if name == "CodeDeployServiceRole":  # SAM's, for the canary: the AWS policy made for it
            assert [m.rsplit("/", 1)[1] for m in managed] == ["AWSCodeDeployRoleForLambda"]
        else:
            assert managed == [], name


def test_s3_permissions_stay_on_the_bucket_prefixes_each_function_uses(cfn: dict[str, Any]) -> None:
    def s3_grants(role: str) -> dict[str, set[str]]:
        grants: dict[str, set[str]] = {}
        for statement in statements(cfn["Resources"][role]):
            actions = [a for a in as_list(statement["Action"]) if a.startswith("s3:")]
            for resource in as_list(statement["Resource"]):
                text = json.dumps(resource)
                if "ModelBundlesUri" in text:
                    key = "bundles"
                elif "ModelUri" in text:
                    key = "model"
                elif "ImagesBucket" in text:
                    key = resource["Fn::Sub"].split("${ImagesBucket}", 1)[1] or "bucket"
                else:
                    key = text
                grants.setdefault(key, set()).update(actions)
        return {k: v for k, v in grants.items() if v}

    assert s3_grants("UploadRole") == {
        f"/{ORIGINALS}*": {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
        f"/{THUMBNAILS}*": {"s3:GetObject", "s3:DeleteObject"},
        "bundles": {"s3:GetObject"},
        "model": {"s3:GetObject"},
    }
    assert s3_grants("SearchRole") == {
        f"/{ORIGINALS}*": {"s3:GetObject"},
        f"/{THUMBNAILS}*": {"s3:GetObject"},
        "bundles": {"s3:GetObject"},
        "model": {"s3:GetObject"},
    }
    assert s3_grants("EmbedRole") == {
        f"/{ORIGINALS}*": {"s3:GetObject", "s3:DeleteObject"},
        f"/{THUMBNAILS}*": {"s3:PutObject"},
        "bucket": {"s3:ListBucket"},  # a deleted object must answer 404, not 403
        "bundles": {"s3:GetObject"},
        "model": {"s3:GetObject"},
    }
    assert s3_grants("WebhooksRole") == {}


def test_queue_secret_and_log_permissions_name_one_resource_each(cfn: dict[str, Any]) -> None:
    secrets = {"UploadRole": "DatabaseSecretArn", "EmbedRole": "DatabaseSecretArn"}
    for function, role in ROLES.items():
        for statement in statements(cfn["Resources"][role]):
            assert statement["Effect"] == "Allow"
            if statement.get("Sid") in ("NetworkInterfaces", "Tracing"):
                continue  # on "*": the test above
            # wildcards only at the end of an object prefix (originals/*, a bundle prefix's ${Location}*)
            resource = json.dumps(statement["Resource"]).replace("/*", "").replace("${Location}*", "")
            assert "*" not in resource, statement
            actions = as_list(statement["Action"])
            if any(a.startswith("sqs:") for a in actions):
                assert function == "EmbedFunction"
                assert statement["Resource"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
            if any(a.startswith("secretsmanager:") for a in actions):
                assert actions == ["secretsmanager:GetSecretValue"]
                allowed = [{"Ref": secrets.get(role, "DatabaseSecretArn")}, {"Ref": "ReplicaSecretArn"}]
                assert statement["Resource"] in (allowed if role == "SearchRole" else allowed[:1])
            if any(a.startswith("kms:") for a in actions):
                assert actions == ["kms:Decrypt"] and statement["Resource"] == {"Ref": "SecretsKmsKeyArn"}
                assert "kms:ViaService" in statement["Condition"]["StringEquals"]
            if any(a.startswith("logs:") for a in actions):
                assert statement["Resource"] == {
                    "Fn::GetAtt": [function.replace("Function", "LogGroup"), "Arn"]
                }
        expected = ["ReadsDatabaseSecret", "UsesProxy"]
        if function in IMAGE_FUNCTIONS:
            expected.append("HasModelUri")
        if role == "SearchRole":
            expected.append("HasReplicaSecret")
        assert sorted(conditional_policies(cfn["Resources"][role])) == sorted(expected)


def test_model_bundle_read_is_limited_to_the_model_uri_prefix(cfn: dict[str, Any]) -> None:
    model = conditional_policies(cfn["Resources"]["SearchRole"])["HasModelUri"]
    (statement,) = model["PolicyDocument"]["Statement"]
    pattern, variables = statement["Resource"]["Fn::Sub"]
    assert pattern == "arn:${AWS::Partition}:s3:::${Location}*"
    assert variables["Location"] == {"Fn::Select": [1, {"Fn::Split": ["s3://", {"Ref": "ModelUri"}]}]}


def test_every_function_may_read_the_bundles_prefix_of_a_model_being_rolled_out(cfn: dict[str, Any]) -> None:
    """A model registered with an s3:// bundle_uri under ModelBundlesUri (by default the images bucket's
    models/) loads in every function before ModelUri names it."""
    for role in (ROLES[f] for f in IMAGE_FUNCTIONS):
        (bundles,) = [s for s in statements(cfn["Resources"][role]) if s.get("Sid") == "ModelBundles"]
        assert bundles["Action"] == "s3:GetObject"
        condition, given, default = bundles["Resource"]["Fn::If"]
        assert condition == "HasModelBundlesUri"
        pattern, variables = given["Fn::Sub"]
        assert pattern == "arn:${AWS::Partition}:s3:::${Location}*"
        assert variables["Location"] == {
            "Fn::Select": [1, {"Fn::Split": ["s3://", {"Ref": "ModelBundlesUri"}]}]
        }
        assert default == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ImagesBucket}/models/*"}


@pytest.mark.parametrize(
    "uri, ok",
    [
        ("", True),
        ("s3://my-models/bundles/vit-b-32/", True),
        ("s3://My_Bucket/x", False),
        ("file:///tmp/bundle", False),
        ("https://example.com/bundle", False),
    ],
)
@pytest.mark.parametrize("parameter", ["ModelUri", "ModelBundlesUri"])
def test_model_uri_parameters_accept_s3_locations_only(
    cfn: dict[str, Any], parameter: str, uri: str, ok: bool
) -> None:
    assert (re.fullmatch(cfn["Parameters"][parameter]["AllowedPattern"], uri) is not None) is ok


def test_upload_and_embed_get_room_for_bundles_and_search_keeps_what_snapstart_allows(
    cfn: dict[str, Any],
) -> None:
    for function in ("UploadFunction", "EmbedFunction"):
        storage = cfn["Resources"][function]["Properties"]["EphemeralStorage"]
        assert storage == {"Size": {"Ref": "EphemeralStorage"}}
    assert "EphemeralStorage" not in cfn["Resources"]["SearchFunction"]["Properties"]  # 512 MB
    assert cfn["Parameters"]["EphemeralStorage"]["MinValue"] == 512


# --- the search function: alias, SnapStart, canary ---


def test_search_publishes_versions_with_snapstart_unless_provisioned_concurrency(cfn: dict[str, Any]) -> None:
    """Lambda does not combine SnapStart with provisioned concurrency (docs/deploy.md "Cold starts")."""
    properties = cfn["Resources"]["SearchFunction"]["Properties"]
    assert properties["SnapStart"] == {
        "Fn::If": [
            "HasSearchProvisionedConcurrency",
            {"Ref": "AWS::NoValue"},
            {"ApplyOn": "PublishedVersions"},
        ]
    }
    alias = cfn["Resources"]["SearchFunctionAliaslive"]["Properties"]
    assert alias["ProvisionedConcurrencyConfig"] == {
        "Fn::If": [
            "HasSearchProvisionedConcurrency",
            {"ProvisionedConcurrentExecutions": {"Ref": "SearchProvisionedConcurrency"}},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert parameter_default(cfn, "SearchProvisionedConcurrency") == 0
    assert environment(cfn, "SearchFunction")["IMAGESEARCH_WARM_MODEL_AT_INIT"] == "true"


def test_a_parameter_change_alone_publishes_a_new_search_version(
    sam_template: dict[str, Any], cfn: dict[str, Any]
) -> None:
    """SAM names the version after the template's text, so a parameter's new value alone would leave the
    alias on the old version: the version's description carries the parameters changed alone, and
    CloudFormation replaces (publishes anew) a version whose description changes."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    search = sam_template["Resources"]["SearchFunction"]["Properties"]
    assert search["AutoPublishAlias"] == "live"
    assert search["AutoPublishAliasAllProperties"] is True  # a new shared layer is a new version too
    (version,) = resources_of(cfn, "AWS::Lambda::Version").values()
    description, variables = version["Properties"]["Description"]["Fn::Sub"]
    named = set(re.findall(r"\$\{(\w+)\}", description)) - set(variables)
    assert "ModelUri" in named  # the rollout's step
    # SnapStart on or off, not the provisioned count: a new count alone changes nothing Lambda publishes
    assert variables["SnapStart"] == {"Fn::If": ["HasSearchProvisionedConcurrency", "off", "on"]}
    assert "SearchProvisionedConcurrency" not in description
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", "AWS::Lambda::Version").schema
    assert "/properties/Description" in schema["createOnlyProperties"]
    # each named value changes the function's environment too, so Lambda has something new to publish
    search_env = json.dumps(environment(cfn, "SearchFunction"))
    assert all(f'"Ref": "{name}"' in search_env for name in named)
    # the longest values keep it within Lambda's 256 characters, and no secret is shown
    longest = {
        name: "x" * cfn["Parameters"][name].get("MaxLength", 0)
        or max(map(str, cfn["Parameters"][name].get("AllowedValues", [10**9])), key=len)
        for name in named
    } | {"SnapStart": "off"}
    assert len(re.sub(r"\$\{(\w+)\}", lambda m: longest[m.group(1)], description)) <= 256
    assert not any(cfn["Parameters"][name].get("NoEcho") for name in named)


def test_search_deploys_as_a_canary_rolled_back_by_its_errors_and_the_apis_5xx(cfn: dict[str, Any]) -> None:
    (group,) = resources_of(cfn, "AWS::CodeDeploy::DeploymentGroup").values()
    alarms = group["Properties"]["AlarmConfiguration"]["Alarms"]
    assert alarms == [
        {"Name": {"Ref": "SearchErrorsAlarm"}},
        {"Name": cfn["Resources"]["ApiServerErrorsAlarm"]["Properties"]["AlarmName"]},
    ]
    assert "DEPLOYMENT_STOP_ON_ALARM" in group["Properties"]["AutoRollbackConfiguration"]["Events"]
    assert parameter_default(cfn, "SearchDeploymentType").startswith("Canary")
    update = cfn["Resources"]["SearchFunctionAliaslive"]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    assert update["DeploymentGroupName"] == {
        "Ref": next(iter(resources_of(cfn, "AWS::CodeDeploy::DeploymentGroup")))
    }


# --- alarms ---


def alarm_metric(alarm: dict[str, Any]) -> str:
    """The metric an alarm watches: namespace, name and dimensions, as one comparable string."""
    properties = alarm["Properties"]
    dimensions = {d["Name"]: d["Value"] for d in properties["Dimensions"]}
    return json.dumps([properties["Namespace"], properties["MetricName"], dimensions], sort_keys=True)


def test_alarms_watch_ingestion_functions_and_the_api_and_notify_one_topic(cfn: dict[str, Any]) -> None:
    alarms = resources_of(cfn, "AWS::CloudWatch::Alarm")
    api = {"ApiId": {"Ref": "HttpApi"}, "Stage": "$default"}
    expected: list[list[Any]] = [
        [
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}},
        ],
        [
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            {"QueueName": {"Fn::GetAtt": ["IngestQueue", "QueueName"]}},
        ],
        ["AWS/ApiGateway", "5xx", api],
        ["AWS/ApiGateway", "Latency", api],
    ]
    for function in (*FUNCTIONS, "AuthorizerFunction"):
        dimensions: dict[str, Any] = {"FunctionName": {"Ref": function}}
        if function != "WebhooksFunction":  # throttled by design: one dispatcher at a time
            expected.append(["AWS/Lambda", "Throttles", dimensions])
        if function == "SearchFunction":  # the alias: what the API calls and the canary watches
            dimensions = {**dimensions, "Resource": {"Fn::Sub": "${SearchFunction}:live"}}
        expected.append(["AWS/Lambda", "Errors", dimensions])
    assert sorted(map(alarm_metric, alarms.values())) == sorted(
        json.dumps(e, sort_keys=True) for e in expected
    )
    for alarm in alarms.values():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == properties["OKActions"] == [{"Ref": "AlarmTopic"}]
        assert properties["TreatMissingData"] == "notBreaching"
    by_metric = {a["Properties"]["MetricName"]: a["Properties"] for a in alarms.values()}
    assert by_metric["ApproximateNumberOfMessagesVisible"]["Threshold"] == 0
    assert by_metric["ApproximateNumberOfMessagesVisible"]["ComparisonOperator"] == "GreaterThanThreshold"
    assert by_metric["ApproximateAgeOfOldestMessage"]["Threshold"] == {"Ref": "IngestAgeAlarmSeconds"}
    assert by_metric["Latency"]["ExtendedStatistic"] == "p99"
    assert by_metric["Latency"]["Threshold"] == {"Ref": "ApiLatencyAlarmMs"}
    subscription = cfn["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


def test_outputs_name_the_api_bucket_queues_network_and_alarms(cfn: dict[str, Any]) -> None:
    outputs = cfn["Outputs"]
    assert "${HttpApi}.execute-api" in outputs["ApiUrl"]["Value"]["Fn::Sub"]
    assert outputs["ImagesBucketName"]["Value"] == {"Ref": "ImagesBucket"}
    assert outputs["IngestQueueName"]["Value"] == {"Fn::GetAtt": ["IngestQueue", "QueueName"]}
    assert outputs["DeadLetterQueueName"]["Value"] == {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}
    assert outputs["FunctionSecurityGroupId"]["Value"] == {"Fn::GetAtt": ["FunctionSecurityGroup", "GroupId"]}
    assert outputs["DatabaseProxyEndpoint"]["Condition"] == "UsesProxy"
    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}


# --- webhooks: the outbox's dispatcher (docs/webhooks.md) ---


WEBHOOK_CONDITIONED = (
    "WebhooksFunction",
    "WebhooksRole",
    "WebhooksLogGroup",
    "WebhooksSecurityGroup",
    "WebhooksErrorsAlarm",
    "WebhooksFunctionSchedule",
    "WebhooksFunctionSchedulePermission",
    "WebhooksFunctionEventInvokeConfig",
)


def test_the_webhooks_function_runs_every_minute_and_on_the_buss_image_events(cfn: dict[str, Any]) -> None:
    """The schedule sends what came due (retries); with ImageEventBus, a rule on that bus for the stack's
    own events (source imagesearch) sends a new delivery at once. WebhookDelivery=false removes it all."""
    resources = cfn["Resources"]
    for name in WEBHOOK_CONDITIONED:
        assert resources[name]["Condition"] == "DeliversWebhooks", name
    assert cfn["Conditions"]["DeliversWebhooks"] == {"Fn::Equals": [{"Ref": "WebhookDelivery"}, "true"]}
    assert parameter_default(cfn, "WebhookDelivery") == "true"
    # every minute, to this function, allowed for that rule only
    schedule = resources["WebhooksFunctionSchedule"]["Properties"]
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    (target,) = schedule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["WebhooksFunction", "Arn"]}
    allowed = resources["WebhooksFunctionSchedulePermission"]["Properties"]
    assert allowed["Principal"] == "events.amazonaws.com"
    assert allowed["SourceArn"] == {"Fn::GetAtt": ["WebhooksFunctionSchedule", "Arn"]}
    # the image events on ImageEventBus, only when it is set (and delivery is on)
    rule = resources["WebhooksOnImageEvents"]
    assert rule["Condition"] == "WakesWebhooksOnImageEvents"
    assert cfn["Conditions"]["WakesWebhooksOnImageEvents"] == {
        "Fn::And": [{"Condition": "DeliversWebhooks"}, {"Condition": "PublishesImageEvents"}]
    }
    assert rule["Properties"]["EventBusName"] == {"Ref": "ImageEventBus"}
    assert rule["Properties"]["EventPattern"] == {"source": ["imagesearch"]}
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["WebhooksFunction", "Arn"]}
    permission = resources["WebhooksOnImageEventsPermission"]
    assert permission["Condition"] == "WakesWebhooksOnImageEvents"
    assert permission["Properties"]["Principal"] == "events.amazonaws.com"
    assert permission["Properties"]["SourceArn"] == {"Fn::GetAtt": ["WebhooksOnImageEvents", "Arn"]}
    # nothing else invokes it
    invokers = [
        name
        for name, p in resources_of(cfn, "AWS::Lambda::Permission").items()
        if "WebhooksFunction" in json.dumps(p["Properties"]["FunctionName"])
    ]
    assert sorted(invokers) == ["WebhooksFunctionSchedulePermission", "WebhooksOnImageEventsPermission"]
    # a trigger is not retried or kept: the next minute's schedule does the same work
    invoke = resources["WebhooksFunctionEventInvokeConfig"]["Properties"]
    assert (invoke["MaximumRetryAttempts"], invoke["MaximumEventAgeInSeconds"]) == (0, 60)
    for values, schedule_made, rule_made in (
        ({}, True, False),
        ({"ImageEventBus": "default"}, True, True),
        ({"ImageEventBus": "default", "WebhookDelivery": "false"}, False, False),
    ):
        resolver = Resolver(cfn, values)
        assert resolver.condition("DeliversWebhooks") is schedule_made, values
        assert resolver.condition("WakesWebhooksOnImageEvents") is rule_made, values


def test_the_webhooks_function_is_sized_for_a_batch_of_timeouts_and_runs_alone(cfn: dict[str, Any]) -> None:
    """A batch of 10 receivers that all time out (connect and read) takes 2 x 10 x the timeout setting; the
    handler starts no batch once less than a lease (that plus 30 s) is left, so the function's timeout
    must leave room for at least one batch to start."""
    from imagesearch.webhooks.dispatch import Dispatcher

    properties = cfn["Resources"]["WebhooksFunction"]["Properties"]
    timeout = Settings.model_fields["webhook_timeout_seconds"].default
    lease = Dispatcher(None, type("S", (), {"timeout_seconds": timeout})()).lease_seconds  # type: ignore[arg-type]
    assert properties["Timeout"] > lease + 30
    assert properties["ReservedConcurrentExecutions"] == 1
    assert "IMAGESEARCH_EVENTBRIDGE_BUS_NAME" not in environment(cfn, "WebhooksFunction")  # it puts nothing
    # the functions' group (the proxy admits it), and the receivers' ports on a group of its own
    assert properties["VpcConfig"] == {
        "SubnetIds": {"Ref": "SubnetIds"},
        "SecurityGroupIds": [{"Ref": "FunctionSecurityGroup"}, {"Ref": "WebhooksSecurityGroup"}],
    }
    (egress,) = cfn["Resources"]["WebhooksSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 1, 65535)
    assert "SecurityGroupIngress" not in cfn["Resources"]["WebhooksSecurityGroup"]["Properties"]


def test_the_webhooks_role_reaches_the_database_and_nothing_else(cfn: dict[str, Any]) -> None:
    """No S3, no queue, no bus, no model bundle: logs, the network interfaces, X-Ray and the database."""
    role = cfn["Resources"]["WebhooksRole"]
    actions = {a for s in every_statement(role) for a in as_list(s["Action"])}
    database = {"rds-db:connect", "secretsmanager:GetSecretValue", "kms:Decrypt"}
    logs = {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert actions == logs | database | NETWORK_INTERFACE_ACTIONS | XRAY_ACTIONS
    assert not any(a.split(":")[0] in ("s3", "sqs", "events", "lambda") for a in actions)


def test_an_events_endpoint_is_made_only_for_the_bus_unless_the_vpc_has_one(cfn: dict[str, Any]) -> None:
    endpoint = cfn["Resources"]["EventsEndpoint"]
    assert endpoint["Condition"] == "MakesEventsEndpoint"
    properties = endpoint["Properties"]
    assert properties["VpcEndpointType"] == "Interface"
    assert properties["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.events"}
    assert properties["PrivateDnsEnabled"] is True
    assert properties["SubnetIds"] == {"Ref": "SubnetIds"}
    assert properties["SecurityGroupIds"] == [{"Fn::GetAtt": ["EventsEndpointSecurityGroup", "GroupId"]}]
    (ingress,) = cfn["Resources"]["EventsEndpointSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert ingress["SourceSecurityGroupId"] == {"Fn::GetAtt": ["FunctionSecurityGroup", "GroupId"]}
    assert (ingress["FromPort"], ingress["ToPort"]) == (443, 443)
    for values, made in (
        ({}, False),
        ({"ImageEventBus": "default"}, True),
        ({"ImageEventBus": "default", "CreateEventsEndpoint": "false"}, False),
    ):
        assert Resolver(cfn, values).condition("MakesEventsEndpoint") is made, values


# --- the schema: migrated before the code ---


def test_the_schema_is_migrated_by_a_custom_resource_before_any_code_changes(cfn: dict[str, Any]) -> None:
    """The migrate function runs as a custom resource whose Revision is the newest migration, so a new one
    updates it; the three functions depend on it, so CloudFormation updates them only after it succeeded
    (a FAILED answer rolls the deploy back with the old code still serving)."""
    from imagesearch.db.migrate import SCHEMA_REVISION

    resource = cfn["Resources"]["SchemaMigration"]
    assert resource["Type"] == "Custom::SchemaMigration"
    assert resource["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["MigrateFunction", "Arn"]}
    assert resource["Properties"]["Revision"] == SCHEMA_REVISION
    for function in FUNCTIONS:
        assert "SchemaMigration" in as_list(cfn["Resources"][function]["DependsOn"]), function
    migrate = cfn["Resources"]["MigrateFunction"]["Properties"]
    assert migrate["Timeout"] == 900  # CloudFormation waits; an index build may be long
    assert migrate["VpcConfig"] == cfn["Resources"]["UploadFunction"]["Properties"]["VpcConfig"]
    assert migrate["Environment"]["Variables"]["IMAGESEARCH_DB_STATEMENT_TIMEOUT_MS"] == "0"
    (shared,) = migrate["Layers"]  # its own Alembic and database client: no dependency layer
    assert shared["Ref"].startswith("SharedLayer")


def test_every_function_and_the_package_run_numpy_on_one_blas_thread(cfn: dict[str, Any]) -> None:
    """The re-ranking's small matrix products are slower on a BLAS thread pool (bench/search_features.py):
    every function's environment says one thread, and so does importing the package (the local stack)."""
    for name in FUNCTIONS:
        variables = cfn["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert variables["OPENBLAS_NUM_THREADS"] == "1", name
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    code = "import os, imagesearch.search.rerank; print(os.environ['OPENBLAS_NUM_THREADS'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
