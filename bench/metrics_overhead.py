"""What metrics and tracing add to a search request, against baselines measured in the same run.

    .venv/bin/python bench/metrics_overhead.py [--calls 20000] [--rounds 7]

The parts, each in a tight loop:

  one search's records       what the search path calls per request: two spans (the model, the
                             database), a query-cache counter and SearchLatency with its mode; outside an
                             invocation (the local stack, tests) and inside one (Lambda)
  Powertools add_metric      the same two measurements through Powertools' own Metrics (cleared after
                             each pair, as a flush would), for comparison
  handler wrapper            @metrics.log_metrics around a handler that records them: not publishing
                             (no namespace: the local stack), and publishing (its EMF line, printed to
                             /dev/null)

and the whole search handler in-process (Mangum, FastAPI, the route; the service answers a canned page
after making the same records), as deployed before this change (the Logger decorator only) and with the
metrics decorator, and publishing timed inside that handler (thread CPU). Tracing is off here, as outside
Lambda, where `capture_lambda_handler` returns the handler itself. CPU time, not wall time: the figures
are what the process spends, which a busy machine disturbs less than the clock. Rounds are interleaved so
drift hits every case alike; the table gives the fastest round's mean (the one least disturbed) and the
median round's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("IMAGESEARCH_DATABASE_URL", "postgresql://bench@127.0.0.1:1/unused")
os.environ.setdefault("IMAGESEARCH_STORAGE_URL", f"file://{tempfile.mkdtemp()}")
os.environ.setdefault("IMAGESEARCH_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
os.environ.pop("POWERTOOLS_DEV", None)

from _canned import canned_response
from aws_lambda_powertools import Metrics

from imagesearch import observability
from imagesearch.auth.tenant import Tenant
from imagesearch.local.context import LocalLambdaContext
from imagesearch.local.functions import load_function
from imagesearch.logs import logger
from imagesearch.observability import QUERY_CACHE_HITS, SEARCH_LATENCY, metrics, tracer
from imagesearch.search.plan import SearchPlan
from imagesearch.search.service import SearchService, latency_mode
from imagesearch.tables import format_table

NAMESPACE = "imagesearch"
PLAN = SearchPlan(mode="hybrid", text="a red circle")
CANNED = canned_response(signed=False)


def search_records() -> None:
    """What SearchService.search and the query cache record for one text query."""
    with tracer.span("model"):
        metrics.add(QUERY_CACHE_HITS)
    with tracer.span("database"):
        pass
    metrics.add(SEARCH_LATENCY, 4.2, latency_mode(PLAN))


def nothing() -> None:
    pass


def canned_search(self: SearchService, tenant: Tenant, plan: SearchPlan, *, cursor: str | None = None) -> Any:
    search_records()
    return CANNED


def publishing(on: bool) -> None:
    """As POWERTOOLS_METRICS_NAMESPACE set (Lambda) or not (the local stack) when the process started."""
    metrics.namespace = NAMESPACE if on else None


def loop(call: Callable[[], Any], calls: int) -> float:
    """Mean CPU microseconds per call (the process's, thread-pool hops included)."""
    started = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - started) / calls * 1e6


def cases(calls: int) -> dict[str, Callable[[], float]]:
    """name -> one round's mean microseconds per call (setting the environment it needs first)."""
    powertools = Metrics(namespace=NAMESPACE, service="imagesearch")

    def powertools_records() -> None:
        powertools.add_metric(name="QueryCacheHits", unit="Count", value=1)
        powertools.add_metric(name="SearchLatency", unit="Milliseconds", value=4.2)
        powertools.clear_metrics()  # as its flush at the end of each invocation would

    def inside_invocation(call: Callable[[], None]) -> Callable[[], float]:
        def run() -> float:
            token = observability._current.set({})
            try:
                return loop(call, calls)
            finally:
                observability._current.reset(token)

        return run

    def recorded_handler(event: Any, context: Any) -> None:
        search_records()

    wrapped = metrics.log_metrics(recorded_handler)
    context = LocalLambdaContext(function_name="bench")

    def handler_case(handler: Callable[[Any, Any], Any], on: bool, n: int) -> Callable[[], float]:
        def run() -> float:
            publishing(on)
            return loop(lambda: handler({}, context), n)

        return run

    search = load_function("search")
    SearchService.search = canned_search  # type: ignore[method-assign]
    before = logger.inject_lambda_context(clear_state=True)(search._asgi)  # the handler before this change
    after = search.handler  # tracer (off: nothing) -> metrics -> logger -> Mangum
    event = search_event()
    requests = max(calls // 20, 200)

    def whole(handler: Callable[[Any, Any], Any], on: bool) -> Callable[[], float]:
        def run() -> float:
            publishing(on)

            def call() -> None:
                response = handler(event, context)
                if response["statusCode"] != 200:
                    raise RuntimeError(response)

            return loop(call, requests)

        return run

    def publish_inside() -> float:
        """Mean thread CPU of publishing, timed inside the deployed handler: the worker thread of the
        request, which Mangum's fresh event loop retires meanwhile, is not counted."""
        spent = [0.0, 0.0]
        publish = metrics.publish

        def timed(measurements: observability.Measurements) -> None:
            started = time.thread_time()
            publish(measurements)
            spent[0] += time.thread_time() - started
            spent[1] += 1

        metrics.publish = timed  # type: ignore[method-assign]
        try:
            whole(after, True)()
        finally:
            del metrics.publish
        return spent[0] / spent[1] * 1e6

    return {
        "baseline: an empty function call": lambda: loop(nothing, calls),
        "one search's records, outside an invocation (local stack)": lambda: loop(search_records, calls),
        "one search's records, inside an invocation (Lambda)": inside_invocation(search_records),
        "the same two through Powertools Metrics.add_metric": lambda: loop(powertools_records, calls),
        "baseline: a handler that records, undecorated": handler_case(recorded_handler, False, calls),
        "the same with @metrics.log_metrics, not publishing": handler_case(wrapped, False, calls),
        "the same with @metrics.log_metrics, publishing (one EMF line)": handler_case(wrapped, True, calls),
        "baseline: search handler, canned answer, Logger only": whole(before, False),
        "search handler as deployed, not publishing": whole(after, False),
        "search handler as deployed, publishing": whole(after, True),
        "of which publishing, timed inside the handler": publish_inside,
    }


def search_event() -> dict[str, Any]:
    body = b'{"query": "a red circle", "limit": 10}'
    return {
        "version": "2.0",
        "routeKey": "POST /search",
        "rawPath": "/search",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "content-length": str(len(body))},
        "requestContext": {
            "http": {"method": "POST", "path": "/search", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "bench",
            "routeKey": "POST /search",
            "stage": "$default",
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20000, help="calls per case and round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):  # the EMF lines
        runs = cases(args.calls)
        for run in runs.values():  # warm-up
            run()
        samples: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                samples[name].append(run())

    rows = []
    baseline = (0.0, 0.0)
    for name, values in samples.items():
        best, median = min(values), statistics.median(values)
        if name.startswith("baseline"):
            baseline = (best, median)
            rows.append([name, f"{best:.2f}", "", f"{median:.2f}", ""])
        elif name.startswith("of which"):
            rows.append([name, f"{best:.2f}", "", f"{median:.2f}", ""])
        else:
            rows.append(
                [
                    name,
                    f"{best:.2f}",
                    f"{best - baseline[0]:+.2f}",
                    f"{median:.2f}",
                    f"{median - baseline[1]:+.2f}",
                ]
            )
    headers = ["case", "us (fastest)", "added", "us (median)", "added"]
    print(format_table(headers, rows))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\npython {sys.version.split()[0]}, {os.cpu_count()} CPUs (load average {load}), "
        f"{args.calls} calls x {args.rounds} rounds, CPU time; tracing off"
    )


if __name__ == "__main__":
    main()
