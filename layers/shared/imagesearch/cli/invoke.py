"""`imagesearch invoke FUNCTION EVENT.json`: a built function's handler on an event, without Docker."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "invoke",
        help="run a built function's handler on an event, as `sam local invoke` does (no Docker)",
        description=(
            "Runs FUNCTION's handler from the built artifacts in a fresh python3.12 (its code and layers "
            "first on sys.path, the template's environment, env.json on top) and prints the JSON result. "
            "The function's logs and Lambda's REPORT line go to stderr."
        ),
    )
    parser.add_argument("function", help="logical id (SearchFunction) or short name (search)")
    parser.add_argument("event", help="event JSON file (see events/), or - for standard input")
    parser.add_argument("--env-vars", type=Path, help="env.json as for `sam local invoke --env-vars`")
    parser.add_argument("--build-dir", type=Path, default=Path(".aws-sam/build"), help="sam build's output")
    parser.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters instead of their defaults",
    )
    parser.add_argument("--python", help="the runtime's interpreter (default: .venv-lambda, else python3.12)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imagesearch.local.invoke import InvokeError, invoke, load_env_vars

    try:
        event = json.loads(sys.stdin.read() if args.event == "-" else Path(args.event).read_text("utf-8"))
    except OSError as e:
        raise InvokeError(f"cannot read the event: {e}") from e
    except ValueError as e:
        raise InvokeError(f"the event is not JSON: {e}") from e
    overrides = {}
    for item in args.parameter_overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvokeError(f"--parameter-overrides takes KEY=VALUE, got {item!r}")
        overrides[key] = value
    report = invoke(
        args.function,
        [event],
        build_dir=args.build_dir,
        env_vars=load_env_vars(args.env_vars) if args.env_vars else None,
        parameter_overrides=overrides,
        python=args.python,
    )
    print(report.report_line(), file=sys.stderr)
    outcome = report.invocations[0]
    print(json.dumps(outcome.error if outcome.error is not None else outcome.result, indent=2))
    return 1 if outcome.error is not None else 0
