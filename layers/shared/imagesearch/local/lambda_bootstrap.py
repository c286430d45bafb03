"""The child side of `imagesearch invoke`: one function's handler in a fresh interpreter, as Lambda runs it.

Started as `python3.12 -I -B lambda_bootstrap.py SPEC.json` by `imagesearch.local.invoke`. Nothing but the
standard library is imported until sys.path starts with the function's code directory and its layers'
python/ directories, so every other import comes from the built artifacts (and boto3 from the interpreter,
as the Lambda runtime provides it). The handler's output (logs) goes to stdout; the results go to the
file the spec names.
"""

from __future__ import annotations

import importlib
import json
import platform
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

MACHINES = {"x86_64": {"x86_64", "amd64"}, "arm64": {"aarch64", "arm64"}}


def error_object(error: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """The error shape Lambda returns for an unhandled exception."""
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def check_interpreter(runtime: str, architecture: str) -> None:
    """Native wheels in the layers load only in the runtime's Python on the runtime's architecture."""
    wanted = runtime.removeprefix("python")
    have = f"{sys.version_info.major}.{sys.version_info.minor}"
    if have != wanted:
        raise RuntimeError(f"{runtime} needs Python {wanted}; this interpreter is {have} ({sys.executable})")
    if platform.machine().lower() not in MACHINES.get(architecture, {architecture}):
        raise RuntimeError(f"the layers are built for {architecture}; this machine is {platform.machine()}")


def run(spec: dict[str, Any]) -> dict[str, Any]:
    check_interpreter(spec["runtime"], spec["architecture"])
    # Lambda: /var/task first, then /opt/python (layers extracted in order, a later one overwriting).
    sys.path[:0] = [spec["code_dir"], *reversed(spec["layer_dirs"])]
    report: dict[str, Any] = {"invocations": []}
    started = time.perf_counter()
    module_name, _, function_name = spec["handler"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as e:
        report["init_error"] = error_object(e, "Runtime.ImportModuleError")
        return report
    finally:
        report["init_ms"] = (time.perf_counter() - started) * 1000
    from imagesearch.local.context import LocalLambdaContext  # from the shared layer

    for event in spec["events"]:
        context = LocalLambdaContext(
            function_name=spec["function_name"],
            memory_limit_in_mb=spec["memory_mb"],
            timeout_seconds=spec["timeout_seconds"],
        )
        started = time.perf_counter()
        outcome: dict[str, Any] = {}
        try:
            result = handler(event, context)
        except Exception as e:
            outcome["error"] = error_object(e)
        else:
            try:
                json.dumps(result)  # Lambda refuses a result it cannot serialise
                outcome["result"] = result
            except (TypeError, ValueError) as e:
                outcome["error"] = error_object(e, "Runtime.MarshalError")
        outcome["duration_ms"] = (time.perf_counter() - started) * 1000
        report["invocations"].append(outcome)
    return report


def peak_rss_mb() -> float:
    """Peak RSS of this process image (VmHWM). Not getrusage's ru_maxrss: Linux carries that over from
    the parent across fork and exec, so a child of a large test process would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text("utf-8"))
    try:
        report = run(spec)
    except RuntimeError as e:
        report = {"init_error": error_object(e, "Runtime.InvalidEntrypoint"), "invocations": []}
    report["max_rss_mb"] = peak_rss_mb()
    Path(spec["report_path"]).write_text(json.dumps(report, default=str), "utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
