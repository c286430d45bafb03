"""`imagesearch invoke`: the template read as `sam local invoke` reads it, and the handler run in a child."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support.deploy import LAMBDA_BIN, TEMPLATE

from imagesearch.config import REPO_ROOT
from imagesearch.local.invoke import InvokeError, function_environment, invoke, load_env_vars
from imagesearch.local.sam_template import (
    Resolver,
    TemplateError,
    find_function,
    function_spec,
    load_template,
)

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:imagesearch/db-AbCdEf"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def test_a_function_resolves_to_its_code_layers_and_settings(template: dict[str, Any]) -> None:
    spec = function_spec(template, REPO_ROOT, "search")
    assert spec.logical_id == "SearchFunction"
    assert spec.code_dir == REPO_ROOT / "functions" / "search"
    assert (spec.handler, spec.runtime, spec.architecture) == ("app.handler", "python3.12", "x86_64")
    # The shared layer, then the core, model and HTTP dependency layers (no HEIC decoder by default),
    # which all build from layers/deps/ (split.py parts them in .aws-sam/build).
    assert spec.layer_dirs == [
        REPO_ROOT / "layers" / "shared" / "python",
        *[REPO_ROOT / "layers" / "deps" / "python"] * 3,
    ]
    raw = template["Resources"]["SearchFunction"]["Properties"]
    assert (spec.memory_mb, spec.timeout_seconds) == (raw["MemorySize"], raw["Timeout"])
    env = spec.environment
    # parameter defaults; a Ref to a resource is its logical id, as SAM CLI has it; NoValue drops the variable
    assert env["IMAGESEARCH_AUTH_MODE"] == "api_key"
    assert env["IMAGESEARCH_MAX_UPLOAD_BYTES"] == "52428800"
    assert env["IMAGESEARCH_STORAGE_URL"] == "s3://ImagesBucket"
    assert env["IMAGESEARCH_DATABASE_URL"] == ""
    for dropped in ("IMAGESEARCH_DATABASE_SECRET_ARN", "MODEL_URI", "IMAGESEARCH_DATABASE_REPLICA_URL"):
        assert dropped not in env


def test_parameter_overrides_switch_the_conditional_variables(template: dict[str, Any]) -> None:
    overrides = {
        "DatabaseSecretArn": SECRET_ARN,
        "ModelUri": "s3://models/vit/",
        "ReplicaUrl": "postgresql://r/db",
    }
    search = function_spec(template, REPO_ROOT, "SearchFunction", parameter_overrides=overrides).environment
    upload = function_spec(template, REPO_ROOT, "upload", parameter_overrides=overrides).environment
    assert (
        search["IMAGESEARCH_DATABASE_SECRET_ARN"] == SECRET_ARN and "IMAGESEARCH_DATABASE_URL" not in search
    )
    assert search["MODEL_URI"] == upload["MODEL_URI"] == "s3://models/vit/"
    assert search["IMAGESEARCH_DATABASE_REPLICA_URL"] == "postgresql://r/db"
    assert "IMAGESEARCH_DATABASE_REPLICA_URL" not in upload  # the search function's own variable


def test_unknown_functions_and_parameters_are_named(template: dict[str, Any]) -> None:
    assert find_function(template, "EMBED") == "EmbedFunction"
    with pytest.raises(
        TemplateError,
        match=(
            "AuthorizerFunction, EmbedFunction, MigrateFunction, OcrFunction, SearchFunction, "
            "UploadFunction, WebhooksFunction"
        ),
    ):
        find_function(template, "thumbnail")
    with pytest.raises(TemplateError, match="no parameter ModelUrl"):
        function_spec(template, REPO_ROOT, "search", parameter_overrides={"ModelUrl": "s3://x/"})


def test_resolver_handles_the_intrinsics_of_an_environment() -> None:
    template = {
        "Parameters": {"Env": {"Type": "String", "Default": "prod"}, "Names": {"Type": "CommaDelimitedList"}},
        "Conditions": {
            "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
            "Both": {"Fn::And": [{"Condition": "IsProd"}, {"Fn::Not": [{"Fn::Equals": ["a", "b"]}]}]},
        },
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
    }
    resolver = Resolver(template, {"Names": "a,b"})
    assert resolver.resolve({"Fn::Sub": "${Env}-${Bucket}-${AWS::Region}-${!Literal}"}) == (
        "prod-Bucket-us-east-1-${Literal}"
    )
    assert resolver.resolve({"Fn::Sub": ["${X}/y", {"X": {"Ref": "Env"}}]}) == "prod/y"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": ["://", "s3://b/p"]}]}) == "b/p"
    assert resolver.resolve({"Fn::Join": ["+", {"Ref": "Names"}]}) == "a+b"
    assert resolver.resolve({"Fn::If": ["Both", "yes", "no"]}) == "yes"
    assert resolver.resolve({"Fn::GetAtt": ["Bucket", "Arn"]}) == ""


def test_environment_precedence_is_sams() -> None:
    """Template values, overridden by the caller's environment, by env.json's Parameters, then by the
    function's own env.json entry; the caller's AWS credentials are passed on."""
    spec = function_spec(load_template(TEMPLATE), REPO_ROOT, "upload")
    env = function_environment(
        spec,
        {
            "Parameters": {"IMAGESEARCH_LOG_LEVEL": "DEBUG", "IMAGESEARCH_AUTH_MODE": "none"},
            "UploadFunction": {"IMAGESEARCH_LOG_LEVEL": "WARNING"},
            "SearchFunction": {"IMAGESEARCH_AUTH_MODE": "jwt"},
        },
        {"IMAGESEARCH_MAX_IMAGE_PIXELS": "1000", "AWS_ACCESS_KEY_ID": "AKIA", "UNRELATED": "x"},
    )
    assert env["IMAGESEARCH_MAX_IMAGE_PIXELS"] == "1000"
    assert env["IMAGESEARCH_AUTH_MODE"] == "none"
    assert env["IMAGESEARCH_LOG_LEVEL"] == "WARNING"
    assert env["AWS_ACCESS_KEY_ID"] == "AKIA" and env["AWS_SECRET_ACCESS_KEY"] == "defaultsecret"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == str(spec.memory_mb)
    assert "UNRELATED" not in env


def test_env_json_must_have_sams_shape(tmp_path: Path) -> None:
    path = tmp_path / "env.json"
    path.write_text(json.dumps({"Parameters": {"A": 1, "B": None}}))
    assert load_env_vars(path) == {"Parameters": {"A": "1", "B": ""}}
    path.write_text(json.dumps({"A": "not a mapping"}))
    with pytest.raises(InvokeError, match="expected"):
        load_env_vars(path)


def test_the_example_env_json_names_template_functions(template: dict[str, Any]) -> None:
    for key in load_env_vars(REPO_ROOT / "env.json"):
        assert key == "Parameters" or key in template["Resources"], key


# --- the child: a fake build with a tiny handler, no `sam build` needed ---


def fake_build(tmp_path: Path, app: str) -> Path:
    build = tmp_path / "build"
    (build / "Fn").mkdir(parents=True)
    (build / "Fn" / "app.py").write_text(textwrap.dedent(app))
    (build / "Layer" / "python" / "imagesearch" / "local").mkdir(parents=True)
    # the shared layer's copy of the context class the bootstrap hands to the handler
    package = REPO_ROOT / "layers" / "shared" / "imagesearch"
    (build / "Layer" / "python" / "imagesearch" / "__init__.py").write_text("")
    (build / "Layer" / "python" / "imagesearch" / "local" / "__init__.py").write_text("")
    (build / "Layer" / "python" / "imagesearch" / "local" / "context.py").write_text(
        (package / "local" / "context.py").read_text()
    )
    (build / "template.yaml").write_text(
        textwrap.dedent(
            """\
            Transform: AWS::Serverless-2016-10-31
            Globals:
              Function:
                Runtime: python3.12
                Handler: app.handler
                Environment: {Variables: {GREETING: hello}}
            Resources:
              Layer: {Type: AWS::Serverless::LayerVersion, Properties: {ContentUri: Layer}}
              Fn:
                Type: AWS::Serverless::Function
                Properties: {CodeUri: Fn, Layers: [!Ref Layer], MemorySize: 256, Timeout: 5}
            """
        )
    )
    return build


def lambda_python() -> str:
    python = LAMBDA_BIN / "python3.12"
    if not python.exists():
        if os.environ.get("CI"):
            pytest.fail("no python3.12 for the runtime: `make test` installs it with `make sam-tools`")
        pytest.skip("no python3.12 for the runtime: run `make sam-tools`")
    return str(python)


HANDLER = """\
    import os, sys

    def handler(event, context):
        if event.get("fail"):
            raise ValueError("asked to fail")
        if event.get("unserialisable"):
            return {"value": object()}
        return {
            "greeting": os.environ["GREETING"],
            "path0": sys.path[0],
            "function": context.function_name,
            "memory": context.memory_limit_in_mb,
            "event": event,
        }
"""


def test_the_handler_runs_in_a_runtime_python_with_the_code_dir_first(tmp_path: Path) -> None:
    build = fake_build(tmp_path, HANDLER)
    report = invoke(
        "Fn",
        [{"n": 1}, {"fail": True}, {"unserialisable": True}],
        build_dir=build,
        env_vars={"Parameters": {"GREETING": "hi"}},
        python=lambda_python(),
        host_env={},
    )
    ok, failed, unserialisable = report.invocations
    assert ok.result == {
        "greeting": "hi",
        "path0": str((build / "Fn").resolve()),
        "function": "Fn",
        "memory": 256,
        "event": {"n": 1},
    }
    assert failed.error is not None and (failed.error["errorType"], failed.error["errorMessage"]) == (
        "ValueError",
        "asked to fail",
    )
    assert unserialisable.error is not None and unserialisable.error["errorType"] == "Runtime.MarshalError"
    assert report.max_rss_mb > 0 and "Memory Size: 256 MB" in report.report_line()


def test_a_handler_that_cannot_be_imported_is_an_init_error(tmp_path: Path) -> None:
    build = fake_build(tmp_path, "import not_in_any_layer\n")
    with pytest.raises(InvokeError, match="Runtime.ImportModuleError: No module named 'not_in_any_layer'"):
        invoke("Fn", [{}], build_dir=build, python=lambda_python(), host_env={})


def test_another_python_than_the_runtimes_is_refused(tmp_path: Path) -> None:
    build = fake_build(tmp_path, HANDLER)
    wanted = f"{sys.version_info.major}.{sys.version_info.minor}"
    if wanted == "3.12":
        pytest.skip("this interpreter is the runtime's")
    with pytest.raises(InvokeError, match=f"python3.12 needs Python 3.12; this interpreter is {wanted}"):
        invoke("Fn", [{}], build_dir=build, python=sys.executable, host_env={})


def test_a_missing_build_says_to_run_sam_build(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="run `sam build` first"):
        invoke("search", [{}], build_dir=tmp_path / "nothing")
