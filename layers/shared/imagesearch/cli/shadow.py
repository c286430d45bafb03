"""`imagesearch shadow report`: how candidate strategies compared with the live search."""

from __future__ import annotations

import argparse
from typing import Any

from imagesearch.cli.target import add_target_arguments, target_runtime


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("shadow", help="shadow-mode comparisons")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    report = actions.add_parser("report", help="agreement (overlap@k, RBO) and latency by candidate strategy")
    report.add_argument(
        "--since-hours", type=float, default=24 * 7, help="look back this far (default: 7 days)"
    )
    add_target_arguments(report)
    report.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from imagesearch.search.shadow_report import render, shadow_report

    with target_runtime(args) as runtime:
        reports = shadow_report(runtime.database, since_hours=args.since_hours)
    if not reports:
        print("no shadow comparisons recorded: set IMAGESEARCH_SHADOW_STRATEGY and _SHADOW_SAMPLE_RATE")
        return 0
    print(render(reports))
    return 0
