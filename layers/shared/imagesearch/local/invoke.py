"""Invoke a function from the built artifacts (`.aws-sam/build`) without Docker: `imagesearch invoke`.

A stand-in for `sam local invoke`. The handler runs in a fresh Python of the template's runtime
(python3.12), in-process there, with sys.path starting at the function's code directory and its layers'
python/ directories, the template's environment (parameter defaults resolved, env.json on top) and a
LocalLambdaContext. A fresh interpreter, not this one: this process has already imported imagesearch and
its dependencies from the development environment, which would shadow the built copies, and the layers'
native wheels are built for the runtime's Python, not necessarily this one's.

Differences from `sam local invoke`, on purpose: AWS::NoValue removes a variable (as in AWS; SAM CLI sets
""), and env.json may add variables the template does not declare (e.g. an S3 endpoint).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagesearch.config import REPO_ROOT
from imagesearch.errors import ImageSearchError
from imagesearch.local.sam_template import FunctionSpec, TemplateError, function_spec, load_template

DEFAULT_BUILD_DIR = Path(".aws-sam/build")
# A Python with only boto3 beside the standard library: what the Lambda runtime adds to the layers.
LAMBDA_PYTHON = REPO_ROOT / ".venv-lambda" / "bin" / "python"
INIT_TIMEOUT_SECONDS = 10.0  # Lambda's limit for the init phase (imports)
# What `sam local invoke` passes from the caller's environment: credentials, region, endpoints.
PASSED_THROUGH = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CA_BUNDLE",
    "AWS_ENDPOINT_URL",
)
BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")


class InvokeError(ImageSearchError):
    """The function could not be started (not its own errors, which come back in the report)."""


@dataclass
class Invocation:
    """One event's outcome: the handler's JSON result, or Lambda's error object."""

    result: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0


@dataclass
class InvokeReport:
    """The outcomes of the events given to one fresh container, with Lambda's REPORT figures."""

    function: FunctionSpec
    invocations: list[Invocation] = field(default_factory=list)
    init_ms: float = 0.0
    max_rss_mb: float = 0.0

    def report_line(self) -> str:
        """Lambda's REPORT log line for the last invocation."""
        duration = self.invocations[-1].duration_ms if self.invocations else 0.0
        return (
            f"REPORT {self.function.logical_id} Duration: {duration:.2f} ms "
            f"Memory Size: {self.function.memory_mb} MB Max Memory Used: {self.max_rss_mb:.0f} MB "
            f"Init Duration: {self.init_ms:.2f} ms"
        )


def load_env_vars(path: Path) -> dict[str, dict[str, str]]:
    """An env.json as `sam local invoke --env-vars` reads it: {"Parameters": {...}, "<LogicalId>": {...}}."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise InvokeError(f"cannot read the env vars file {path}: {e}") from e
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InvokeError(f'{path}: expected {{"Parameters": {{...}}, "<FunctionLogicalId>": {{...}}}}')
    return {key: {k: "" if v is None else str(v) for k, v in value.items()} for key, value in data.items()}


def function_environment(
    spec: FunctionSpec, env_vars: Mapping[str, Mapping[str, str]], host: Mapping[str, str]
) -> dict[str, str]:
    """Lambda's variables, the caller's AWS settings, the template's variables (a caller's variable of the
    same name wins, as in SAM CLI), then env.json's "Parameters" and the function's own entries."""
    region = host.get("AWS_REGION") or host.get("AWS_DEFAULT_REGION") or "us-east-1"
    environment = {
        "PATH": host.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "defaultkey",
        "AWS_SECRET_ACCESS_KEY": "defaultsecret",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_seconds),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.logical_id}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "_HANDLER": spec.handler,
    }
    environment.update({name: host[name] for name in PASSED_THROUGH if name in host})
    environment.update({name: host.get(name, value) for name, value in spec.environment.items()})
    environment.update(env_vars.get("Parameters", {}))
    environment.update(env_vars.get(spec.logical_id, {}))
    return environment


def find_python(runtime: str, python: str | None = None) -> str:
    """The interpreter for `runtime`: the one given, else .venv-lambda (`make sam-tools`), else PATH's."""
    if python:
        return python
    if LAMBDA_PYTHON.exists():
        return str(LAMBDA_PYTHON)
    found = shutil.which(runtime)
    if found is None:
        raise InvokeError(f"no {runtime} interpreter: run `make sam-tools` or pass --python")
    return found


def invoke(
    function: str,
    events: Sequence[Mapping[str, Any]],
    *,
    build_dir: Path = DEFAULT_BUILD_DIR,
    env_vars: Mapping[str, Mapping[str, str]] | None = None,
    parameter_overrides: Mapping[str, str] | None = None,
    python: str | None = None,
    host_env: Mapping[str, str] | None = None,
) -> InvokeReport:
    """Run `events`, in order, through one fresh container of `function` from the built template."""
    build_dir = Path(build_dir)
    template = load_template(build_dir / "template.yaml")
    spec = function_spec(template, build_dir.resolve(), function, parameter_overrides=parameter_overrides)
    for path in (spec.code_dir, *spec.layer_dirs):
        if not path.is_dir():
            raise TemplateError(f"{path} is missing: run `sam build` again")
    # The caller's environment is read here only to pass AWS credentials on, as SAM CLI does.
    environment = function_environment(spec, env_vars or {}, os.environ if host_env is None else host_env)
    with tempfile.TemporaryDirectory(prefix="imagesearch-invoke-") as tmp:
        report_path = Path(tmp) / "report.json"
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(
            json.dumps(
                {
                    "code_dir": str(spec.code_dir),
                    "layer_dirs": [str(p) for p in spec.layer_dirs],
                    "handler": spec.handler,
                    "runtime": spec.runtime,
                    "architecture": spec.architecture,
                    "function_name": spec.logical_id,
                    "memory_mb": spec.memory_mb,
                    "timeout_seconds": spec.timeout_seconds,
                    "events": list(events),
                    "report_path": str(report_path),
                }
            ),
            "utf-8",
        )
        timeout = INIT_TIMEOUT_SECONDS + spec.timeout_seconds * max(1, len(events))
        command = [find_python(spec.runtime, python), "-I", "-B", str(BOOTSTRAP), str(spec_path)]
        try:
            # The function's logs (stdout) go to our stderr: stdout is for the result.
            completed = subprocess.run(
                command, env=environment, stdout=sys.stderr, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise InvokeError(f"{spec.logical_id}: Task timed out after {timeout:.0f} seconds") from None
        except OSError as e:
            raise InvokeError(f"cannot start {command[0]}: {e}") from e
        if not report_path.exists():
            raise InvokeError(f"{spec.logical_id}: the runtime exited with code {completed.returncode}")
        raw = json.loads(report_path.read_text("utf-8"))
    if "init_error" in raw:
        error = raw["init_error"]
        trace = "".join(error.get("stackTrace") or [])
        message = f"{spec.logical_id} failed to start: {error['errorType']}: {error['errorMessage']}"
        raise InvokeError(f"{message}\n{trace}".rstrip())
    return InvokeReport(
        function=spec,
        invocations=[Invocation(**outcome) for outcome in raw["invocations"]],
        init_ms=raw["init_ms"],
        max_rss_mb=raw["max_rss_mb"],
    )
