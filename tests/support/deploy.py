"""Deployment test helpers: the SAM template, its offline CloudFormation translation, cfn-lint."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from imagesearch.config import REPO_ROOT

TEMPLATE = REPO_ROOT / "template.yaml"
# `sam deploy` replaces local code paths by the S3 locations it uploaded them to.
ARTIFACTS = "s3://imagesearch-deploy-artifacts"


def parse_template(text: str | None = None) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    result: dict[str, Any] = yaml_parse(text if text is not None else TEMPLATE.read_text("utf-8"))
    return result


def translate(sam_template: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The CloudFormation that `sam deploy` would submit (the AWS::Serverless transform applied offline)."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(sam_template)
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            properties["CodeUri"] = f"{ARTIFACTS}/{logical_id}.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = f"{ARTIFACTS}/{logical_id}.zip"
    # Only the AWS-managed policies SAM would name (none here) need IAM: an empty map keeps it offline.
    translator = Translator(
        managed_policy_map={}, sam_parser=Parser(), boto_session=boto3.Session(region_name="us-east-1")
    )
    result: dict[str, Any] = translator.translate(sam_template=template, parameter_values=parameters or {})
    return result


def lint(template_text: str, *, serverless: bool = False) -> list[Any]:
    """cfn-lint's findings for a template (SAM or CloudFormation), in one region; with `serverless`, the
    rules of cfn-lint-serverless too (ids ES* and WS*)."""
    from cfnlint.api import ManualArgs
    from cfnlint.api import lint as cfn_lint

    rules = ["cfn_lint_serverless.rules"] if serverless else []
    return cfn_lint(template_text, config=ManualArgs(regions=["us-east-1"], append_rules=rules))


def errors(matches: list[Any]) -> list[str]:
    return [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches if m.rule.id.startswith("E")]


def findings(matches: list[Any]) -> list[str]:
    """Errors and warnings (cfn-lint's and the serverless rules'), informational notes left out."""
    return [
        f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches if not m.rule.id.startswith("I")
    ]


def rule_holds(
    rule: Mapping[str, Any],
    values: Mapping[str, str],
    lookups: Mapping[tuple[str, str], list[str]] | None = None,
) -> bool:
    """Whether a template rule admits these parameter values, as CloudFormation decides before it creates
    anything: the RuleCondition, then every assertion. `lookups` stands for what CloudFormation reads from
    the account for Fn::ValueOfAll, e.g. {("AWS::EC2::Subnet::Id", "VpcId"): ["vpc-1", "vpc-1"]}."""

    def evaluate(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        ((function, arg),) = node.items()
        if function == "Ref":
            return values.get(arg, "")
        if function == "Fn::Equals":
            left, right = (evaluate(v) for v in arg)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not evaluate(arg[0])
        if function == "Fn::And":
            return all(evaluate(v) for v in arg)
        if function == "Fn::Or":
            return any(evaluate(v) for v in arg)
        if function == "Fn::Contains":
            return evaluate(arg[1]) in evaluate(arg[0])
        if function == "Fn::EachMemberEquals":
            return all(member == evaluate(arg[1]) for member in evaluate(arg[0]))
        if function == "Fn::ValueOfAll":
            return list((lookups or {})[(arg[0], arg[1])])
        raise ValueError(f"not a rule function: {function}")

    if "RuleCondition" in rule and not evaluate(rule["RuleCondition"]):
        return True
    return all(evaluate(assertion["Assert"]) for assertion in rule["Assertions"])


def cfn_json(template: dict[str, Any]) -> str:
    return json.dumps(template, default=str)


# --- the SAM CLI and the built artifacts (`make sam-tools` installs both interpreters) ---
SAM = REPO_ROOT / ".venv-sam" / "bin" / "sam"
LAMBDA_BIN = REPO_ROOT / ".venv-lambda" / "bin"
LAMBDA_SIZE_LIMIT = 262_144_000  # bytes: a function and its layers, unzipped (Lambda's "250 MB")


def sam_environment() -> dict[str, str]:
    """The environment `sam` runs in: python3.12 from .venv-lambda first on PATH, no telemetry."""
    import os

    return {
        **os.environ,
        "PATH": f"{LAMBDA_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
    }


def tree_bytes(path: Any) -> int:
    """Unzipped size of a directory: what Lambda counts."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
