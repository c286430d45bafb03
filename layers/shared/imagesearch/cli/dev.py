"""`imagesearch dev`: the local stack on the embedded default."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dev", help="run the local stack (embedded Postgres, filesystem storage, all routes on one port)"
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data-dir", type=Path, default=Path(".imagesearch"))
    parser.add_argument("--auth", action="store_true", help="require API keys (default: off, one tenant)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from imagesearch.local.stack import LocalStack

    with LocalStack(data_dir=args.data_dir, host=args.host, port=args.port, auth=args.auth) as stack:
        assert stack.app is not None and stack.settings is not None
        print(
            f"imagesearch: serving on {stack.base_url} (data in {stack.data_dir}); Ctrl-C stops", flush=True
        )
        config = uvicorn.Config(
            stack.app,
            host=args.host,
            port=args.port,
            log_level=stack.settings.log_level.lower(),
            access_log=False,
        )
        uvicorn.Server(config).run()
    return 0
