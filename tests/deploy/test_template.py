"""template.yaml: lints clean before and after the SAM transform, and is wired as DESIGN.md section 7 says."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from support.deploy import TEMPLATE, cfn_json, errors, lint, translate

from imagesearch.config import Settings
from imagesearch.images.object_keys import ORIGINALS, THUMBNAILS
from imagesearch.local.functions import load_function

FUNCTIONS = ("UploadFunction", "SearchFunction", "EmbedFunction")
ROLES = {"UploadFunction": "UploadRole", "SearchFunction": "SearchRole", "EmbedFunction": "EmbedRole"}
EXPECTED_ROUTES = {
    ("GET", "/health"): "UploadFunction",
    ("POST", "/images"): "UploadFunction",
    ("POST", "/uploads"): "UploadFunction",
    ("GET", "/images"): "UploadFunction",
    ("GET", "/images/{id}"): "UploadFunction",
    ("PATCH", "/images/{id}"): "UploadFunction",
    ("DELETE", "/images/{id}"): "UploadFunction",
    ("POST", "/search"): "SearchFunction",
    ("POST", "/search/image"): "SearchFunction",
    ("GET", "/images/{id}/similar"): "SearchFunction",
}


def resources_of(cfn: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in cfn["Resources"].items() if r["Type"] == kind}


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of a role's inline policies, conditional ones included (Fn::If's true branch)."""
    found = []
    for policy in role["Properties"]["Policies"]:
        if "Fn::If" in policy:
            policy = policy["Fn::If"][1]
        found.extend(policy["PolicyDocument"]["Statement"])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- lint ---


def test_the_sam_template_lints_clean() -> None:
    assert errors(lint(TEMPLATE.read_text("utf-8"))) == []


def test_the_translated_cloudformation_lints_clean(cfn: dict[str, Any]) -> None:
    assert errors(lint(cfn_json(cfn))) == []


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


# --- HTTP API ---


def routes(cfn: dict[str, Any]) -> dict[tuple[str, str], str]:
    body = cfn["Resources"]["HttpApi"]["Properties"]["Body"]
    found = {}
    for path, operations in body["paths"].items():
        for method, operation in operations.items():
            uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            function = re.search(r"\$\{(\w+)\.Arn\}", uri)
            assert function is not None, uri
            found[(method.upper(), path)] = function.group(1)
    return found


def test_routes_go_to_their_functions(cfn: dict[str, Any]) -> None:
    assert routes(cfn) == EXPECTED_ROUTES
    # API Gateway may invoke each function once per route, and nothing else may
    permissions = resources_of(cfn, "AWS::Lambda::Permission")
    assert len(permissions) == len(EXPECTED_ROUTES)
    assert all(p["Properties"]["Principal"] == "apigateway.amazonaws.com" for p in permissions.values())


def test_every_route_of_the_apps_is_deployed_and_no_other() -> None:
    """The template's routes and the FastAPI apps' routes agree (health is served by the upload function)."""
    served = set()
    for name in ("upload", "search"):
        for path, operations in load_function(name).app.openapi()["paths"].items():
            served |= {(method.upper(), path.replace("{image_id}", "{id}")) for method in operations}
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
    (mapping,) = resources_of(cfn, "AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert properties["FunctionName"] == {"Ref": "EmbedFunction"}
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


def test_queue_visibility_is_at_least_six_times_the_embed_timeout(cfn: dict[str, Any]) -> None:
    """AWS's advice for an SQS event source, with the longest batching window the parameter allows."""
    timeout = cfn["Resources"]["EmbedFunction"]["Properties"]["Timeout"]
    window = cfn["Parameters"]["EmbedBatchWindowSeconds"]["MaxValue"]
    visibility = cfn["Resources"]["IngestQueue"]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * timeout + window


# --- functions: layers, environment, settings ---


def test_every_function_runs_python312_with_both_layers(cfn: dict[str, Any]) -> None:
    layers = resources_of(cfn, "AWS::Lambda::LayerVersion")
    assert len(layers) == 2
    shared = next(name for name in layers if name.startswith("SharedLayer"))
    deps = next(name for name in layers if name.startswith("DepsLayer"))
    for function in FUNCTIONS:
        properties = cfn["Resources"][function]["Properties"]
        assert properties["Runtime"] == "python3.12"
        assert properties["Handler"] == "app.handler"
        assert properties["Layers"] == [{"Ref": shared}, {"Ref": deps}]
        assert properties["Architectures"] == layers[shared]["Properties"]["CompatibleArchitectures"]


def test_layers_are_built_from_the_shared_package_and_the_pinned_requirements(
    sam_template: dict[str, Any],
) -> None:
    shared = sam_template["Resources"]["SharedLayer"]
    deps = sam_template["Resources"]["DepsLayer"]
    assert shared["Properties"]["ContentUri"] == "layers/shared/"
    assert deps["Properties"]["ContentUri"] == "layers/deps/"
    for layer, target in ((shared, "build-SharedLayer"), (deps, "build-DepsLayer")):
        assert layer["Metadata"]["BuildMethod"] == "makefile"
        makefile = (TEMPLATE.parent / layer["Properties"]["ContentUri"] / "Makefile").read_text("utf-8")
        assert f"\n{target}:" in makefile and "compileall" in makefile


def environment(cfn: dict[str, Any], function: str) -> dict[str, Any]:
    variables: dict[str, Any] = cfn["Resources"][function]["Properties"]["Environment"]["Variables"]
    return variables


def test_every_environment_variable_is_a_setting_the_code_reads(cfn: dict[str, Any]) -> None:
    """A misspelt variable would be silently ignored (extra="ignore"): each one must name a Settings field."""
    known = set()
    for name, field in Settings.model_fields.items():
        known.add(f"IMAGESEARCH_{name.upper()}")
        alias = field.validation_alias
        known |= set(getattr(alias, "choices", []) or ([alias] if isinstance(alias, str) else []))
    for function in FUNCTIONS:
        names = set(environment(cfn, function)) - {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL"}
        assert names <= known, names - known


def test_environment_carries_the_parameters(cfn: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        env = environment(cfn, function)
        assert env["IMAGESEARCH_STORAGE_URL"] == {"Fn::Sub": "s3://${ImagesBucket}"}
        assert env["IMAGESEARCH_AUTH_MODE"] == {"Ref": "AuthMode"}
        assert env["IMAGESEARCH_MAX_UPLOAD_BYTES"] == {"Ref": "MaxUploadBytes"}
        assert env["IMAGESEARCH_MAX_IMAGE_PIXELS"] == {"Ref": "MaxImagePixels"}
        assert env["MODEL_URI"]["Fn::If"][0] == "HasModelUri"
        # exactly one of the URL and the secret reaches the function
        assert env["IMAGESEARCH_DATABASE_URL"]["Fn::If"] == [
            "HasDatabaseSecret",
            {"Ref": "AWS::NoValue"},
            {"Ref": "DatabaseUrl"},
        ]
        assert env["IMAGESEARCH_DATABASE_SECRET_ARN"]["Fn::If"][1] == {"Ref": "DatabaseSecretArn"}
    assert "IMAGESEARCH_DATABASE_REPLICA_URL" in environment(cfn, "SearchFunction")
    assert "IMAGESEARCH_DATABASE_REPLICA_URL" not in environment(cfn, "UploadFunction")


def test_exactly_one_database_source_is_asserted_at_deploy_time(cfn: dict[str, Any]) -> None:
    assert "OneDatabaseSource" in cfn["Rules"]


# --- least privilege ---


def test_each_function_has_its_own_role_and_no_broad_managed_policy(cfn: dict[str, Any]) -> None:
    for function, role in ROLES.items():
        assert cfn["Resources"][function]["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}
        managed = cfn["Resources"][role]["Properties"].get("ManagedPolicyArns", [])
        # only the VPC policy, and only when the functions are put in a VPC
        assert all(list(m) == ["Fn::If"] and m["Fn::If"][0] == "HasVpc" for m in managed)
    assert "AWSLambdaSQSQueueExecutionRole" not in json.dumps(cfn)


def test_s3_permissions_stay_on_the_bucket_prefixes_each_function_uses(cfn: dict[str, Any]) -> None:
    def s3_grants(role: str) -> dict[str, set[str]]:
        grants: dict[str, set[str]] = {}
        for statement in statements(cfn["Resources"][role]):
            actions = [a for a in as_list(statement["Action"]) if a.startswith("s3:")]
            for resource in as_list(statement["Resource"]):
                text = json.dumps(resource)
                if "ModelUri" in text:
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
        "model": {"s3:GetObject"},
    }
    assert s3_grants("SearchRole") == {
        f"/{ORIGINALS}*": {"s3:GetObject"},
        f"/{THUMBNAILS}*": {"s3:GetObject"},
        "model": {"s3:GetObject"},
    }
    assert s3_grants("EmbedRole") == {
        f"/{ORIGINALS}*": {"s3:GetObject", "s3:DeleteObject"},
        f"/{THUMBNAILS}*": {"s3:PutObject"},
        "bucket": {"s3:ListBucket"},  # a deleted object must answer 404, not 403
        "model": {"s3:GetObject"},
    }


def test_queue_secret_and_log_permissions_name_one_resource_each(cfn: dict[str, Any]) -> None:
    for function, role in ROLES.items():
        for statement in statements(cfn["Resources"][role]):
            assert statement["Effect"] == "Allow"
            # wildcards only at the end of an object prefix (originals/*, the model bundle's ${Location}*)
            resource = json.dumps(statement["Resource"]).replace("/*", "").replace("${Location}*", "")
            assert "*" not in resource, statement
            actions = as_list(statement["Action"])
            if any(a.startswith("sqs:") for a in actions):
                assert function == "EmbedFunction"
                assert statement["Resource"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
            if any(a.startswith("secretsmanager:") for a in actions):
                assert actions == ["secretsmanager:GetSecretValue"]
                assert statement["Resource"] == {"Ref": "DatabaseSecretArn"}
            if any(a.startswith("logs:") for a in actions):
                assert statement["Resource"] == {
                    "Fn::GetAtt": [function.replace("Function", "LogGroup"), "Arn"]
                }
        conditional = [
            p["Fn::If"][0] for p in cfn["Resources"][role]["Properties"]["Policies"] if "Fn::If" in p
        ]
        assert sorted(conditional) == ["HasDatabaseSecret", "HasModelUri"]


def test_model_bundle_read_is_limited_to_the_model_uri_prefix(cfn: dict[str, Any]) -> None:
    role = cfn["Resources"]["SearchRole"]["Properties"]
    (model,) = [p["Fn::If"][1] for p in role["Policies"] if "Fn::If" in p and p["Fn::If"][0] == "HasModelUri"]
    (statement,) = model["PolicyDocument"]["Statement"]
    pattern, variables = statement["Resource"]["Fn::Sub"]
    assert pattern == "arn:${AWS::Partition}:s3:::${Location}*"
    assert variables["Location"] == {"Fn::Select": [1, {"Fn::Split": ["s3://", {"Ref": "ModelUri"}]}]}


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
def test_model_uri_parameter_accepts_s3_locations_only(cfn: dict[str, Any], uri: str, ok: bool) -> None:
    assert (re.fullmatch(cfn["Parameters"]["ModelUri"]["AllowedPattern"], uri) is not None) is ok


def test_outputs_name_the_api_bucket_and_queues(cfn: dict[str, Any]) -> None:
    outputs = cfn["Outputs"]
    assert "${HttpApi}.execute-api" in outputs["ApiUrl"]["Value"]["Fn::Sub"]
    assert outputs["ImagesBucketName"]["Value"] == {"Ref": "ImagesBucket"}
    assert outputs["IngestQueueName"]["Value"] == {"Fn::GetAtt": ["IngestQueue", "QueueName"]}
    assert outputs["DeadLetterQueueName"]["Value"] == {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}
