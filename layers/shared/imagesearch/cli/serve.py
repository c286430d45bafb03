"""`imagesearch serve upload|search|embed`: one function as a plain HTTP service (the container image's
entry point; Knative, Cloud Run or any container host).

The function's own `app` is served as it is, GET /health included, on 0.0.0.0:$PORT. Configuration comes
from the environment only: a real database (DATABASE_URL, never the embedded one), object storage
(IMAGESEARCH_STORAGE_URL, IMAGESEARCH_STORAGE_ENDPOINT_URL for S3-compatible stores) and the model
(MODEL_DIR or MODEL_URI). SIGTERM stops accepting connections, lets requests in flight finish within
--graceful-timeout and exits 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from imagesearch.local.functions import FUNCTION_NAMES

# Cloud Run kills a container 10 s after SIGTERM; Knative's default grace period is longer.
DEFAULT_GRACEFUL_TIMEOUT = 8.0


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="serve one function over HTTP on $PORT (the container image's entry point)"
    )
    parser.add_argument("function", choices=FUNCTION_NAMES)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, help="default: PORT or IMAGESEARCH_PORT, else 8080")
    parser.add_argument(
        "--graceful-timeout",
        type=float,
        default=DEFAULT_GRACEFUL_TIMEOUT,
        help=f"seconds requests in flight get after SIGTERM (default {DEFAULT_GRACEFUL_TIMEOUT:g})",
    )
    parser.set_defaults(func=run)


def functions_dir(app_dir: Path | None) -> Path:
    """functions/ under IMAGESEARCH_APP_DIR (the image's /app), else the source checkout's."""
    from imagesearch.local.functions import FUNCTIONS_DIR

    return app_dir / "functions" if app_dir is not None else FUNCTIONS_DIR


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT; 0 when the server stopped cleanly."""
    import uvicorn

    from imagesearch.cli.dev import stop_on_signals
    from imagesearch.config import load_settings
    from imagesearch.http.protocol import HttpProtocol
    from imagesearch.local.functions import load_function
    from imagesearch.runtime import configure, reset

    settings = load_settings()
    if settings.database_url is None and settings.database_secret_arn is None:
        print("imagesearch serve: set DATABASE_URL (a PostgreSQL with pgvector; run `imagesearch migrate`)")
        return 2
    configure(settings)
    try:
        # Uvicorn drains on SIGTERM, then raises it again to the handler it found: under the default one
        # the process would die with 143, which platforms report as a crash. stop_on_signals catches it.
        with stop_on_signals() as stop:
            try:
                module = load_function(args.function, root=functions_dir(settings.app_dir))
            except FileNotFoundError as e:
                print(f"imagesearch serve: {e} (set IMAGESEARCH_APP_DIR to the folder holding functions/)")
                return 2
            app = getattr(module, "app", None)
            if app is None:
                print(f"imagesearch serve: function {args.function!r} has no HTTP app")
                return 2
            port = args.port if args.port is not None else settings.port
            config = uvicorn.Config(
                app,
                host=args.host,
                port=port,
                log_level=settings.log_level.lower(),
                access_log=False,
                timeout_graceful_shutdown=args.graceful_timeout,
                http=HttpProtocol,  # a response in one write (http/protocol.py)
            )
            print(f"imagesearch: serving {args.function} on {args.host}:{port}", flush=True)
            server = stop.server = uvicorn.Server(config)
            server.should_exit = stop.received is not None  # asked to stop while loading
            server.run()
            return 0 if server.started or stop.received is not None else 1
    finally:
        reset()  # close the pools: the database sees the connections go, not time out
