"""`imagesearch dev`: the local stack on the embedded default."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dev", help="run the local stack (embedded Postgres, filesystem storage, all routes on one port)"
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data-dir", type=Path, default=Path(".imagesearch"))
    parser.add_argument("--auth", action="store_true", help="require API keys (default: off, one tenant)")
    parser.add_argument(
        "--events",
        choices=("in-process", "cloudevents"),
        default="in-process",
        help="how object-created events reach the embed function: its handler called in process with the "
        "SQS event AWS sends (default), or CloudEvents POSTed to this server's /events, as Knative and "
        "Cloud Run deliver them",
    )
    parser.set_defaults(func=run)


class StopRequest:
    """SIGINT or SIGTERM asks the stack to stop; a second one, while it starts or stops, aborts at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.server: uvicorn.Server | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        if self.server is not None:
            self.server.should_exit = True  # a signal between start-up and uvicorn's own handlers


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Turn SIGINT and SIGTERM into a request the stack answers by stopping cleanly.

    Uvicorn handles both while it serves, and afterwards raises each again to the handler it found. For
    SIGTERM that was the default action, which killed the process before the stack's stop() ran and left
    PostgreSQL running; here it lands in StopRequest and the stack unwinds as for Ctrl-C.
    """
    request = StopRequest()
    previous = {sig: signal.signal(sig, request.handle) for sig in STOP_SIGNALS}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM, then stop PostgreSQL and free the data directory; 0 when it did."""
    import uvicorn

    from imagesearch.http.protocol import HttpProtocol
    from imagesearch.local.stack import LocalStack

    with (
        stop_on_signals() as stop,
        LocalStack(
            data_dir=args.data_dir, host=args.host, port=args.port, auth=args.auth, event_delivery=args.events
        ) as stack,
    ):
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
            http=HttpProtocol,
        )
        server = stop.server = uvicorn.Server(config)
        server.should_exit = stop.received is not None  # asked to stop while starting
        server.run()
    return 0
