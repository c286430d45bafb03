"""`imagesearch openapi`: the public API's OpenAPI document, as committed in openapi.json.

The public API is what the API gateway routes: every route of the upload and search functions (not the
local stack's /files and web page, nor the embed function). `--write` rewrites openapi.json;
tests/test_openapi.py fails when the apps drift from it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from imagesearch.config import REPO_ROOT

OPENAPI_PATH = REPO_ROOT / "openapi.json"
# The functions behind the API gateway's routes (template.yaml); a new HTTP function goes here.
PUBLIC_FUNCTIONS = ("upload", "search")
REGENERATE = "imagesearch openapi --write"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "openapi", help="print the public API's OpenAPI document (--write: into openapi.json)"
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"rewrite {OPENAPI_PATH.name}")
    action.add_argument(
        "--check", action="store_true", help=f"exit 1 when {OPENAPI_PATH.name} is out of date"
    )
    parser.set_defaults(func=run)


def public_openapi() -> dict[str, Any]:
    """The OpenAPI document of the upload and search functions' routes, merged as the gateway serves them."""
    from fastapi.routing import APIRoute

    from imagesearch import __version__
    from imagesearch.http.app import create_app
    from imagesearch.local.functions import load_function

    app = create_app("imagesearch")
    app.version = __version__
    seen = {
        (route.path, frozenset(route.methods or ())) for route in app.routes if isinstance(route, APIRoute)
    }
    for name in PUBLIC_FUNCTIONS:
        for route in load_function(name).app.routes:
            if isinstance(route, APIRoute) and (route.path, frozenset(route.methods or ())) not in seen:
                seen.add((route.path, frozenset(route.methods or ())))
                app.router.routes.append(route)
    return app.openapi()


def render(document: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indents, a final newline (stable diffs)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def run(args: argparse.Namespace) -> int:
    text = render(public_openapi())
    if args.write:
        OPENAPI_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {OPENAPI_PATH}")
        return 0
    if args.check:
        current = OPENAPI_PATH.read_text(encoding="utf-8") if OPENAPI_PATH.exists() else ""
        if current != text:
            print(f"{OPENAPI_PATH.name} is out of date: run `{REGENERATE}`", file=sys.stderr)
            return 1
        print(f"{OPENAPI_PATH.name} is up to date")
        return 0
    sys.stdout.write(text)
    return 0
