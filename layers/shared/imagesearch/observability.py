"""Metrics and traces of a Lambda invocation: recorded anywhere in the package, published by the handler.

Code anywhere in the package records with `metrics.add(METRIC, value, dimension)`. A measurement lands in
the current invocation's measurements, which exist only inside a handler decorated with
`@metrics.log_metrics` in a process that publishes: Powertools has a namespace
(POWERTOOLS_METRICS_NAMESPACE) and metrics are not disabled (POWERTOOLS_METRICS_DISABLED, POWERTOOLS_DEV).
Everywhere else (the local stack's HTTP routes, the command line, tests that call services) it is
dropped, for the price of one context-variable read, and nothing is printed. When the handler returns (or
raises), Powertools' serialiser turns the invocation's measurements into one line of CloudWatch EMF,
printed on stdout. Powertools' own `Metrics` is not used for recording: it keeps values outside
invocations and prints every 100 of them even when disabled, its `add_metric` costs about ten times a
recording here, and its one dimension set applies to every metric, where SearchLatency alone is split.

Tracing is Powertools' Tracer where the X-Ray SDK is installed and Tracer's own detection finds Lambda;
elsewhere `capture_lambda_handler` returns the handler itself and `span` a no-op. docs/observability.md
lists the metrics and says why the dependency layers leave the SDK out."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aws_lambda_powertools.metrics import EphemeralMetrics
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

SERVICE = "imagesearch"  # the `service` dimension of every metric and the traces' service annotation
COUNT = "Count"
MILLISECONDS = "Milliseconds"


@dataclass(frozen=True, eq=False)  # hashed by identity: each metric is one object, declared below
class Metric:
    name: str
    unit: str  # a CloudWatch unit; counts are summed per invocation, other values kept one by one
    dimension: str | None = None  # the one dimension it is split by (a handful of values, never ids)


IMAGES_EMBEDDED = Metric("ImagesEmbedded", COUNT)
IMAGES_FAILED = Metric("ImagesFailed", COUNT)
IMAGES_BACKFILLED = Metric("ImagesBackfilled", COUNT)  # another model's vectors of stored images
SEARCH_LATENCY = Metric("SearchLatency", MILLISECONDS, dimension="mode")
QUERY_CACHE_HITS = Metric("QueryCacheHits", COUNT)
QUERY_CACHE_MISSES = Metric("QueryCacheMisses", COUNT)
UPLOADS_ACCEPTED = Metric("UploadsAccepted", COUNT, dimension="via")
WEBHOOKS_DELIVERED = Metric("WebhooksDelivered", COUNT)
WEBHOOK_ATTEMPTS_FAILED = Metric("WebhookAttemptsFailed", COUNT)  # each failed try, retried or not
WEBHOOKS_GIVEN_UP = Metric("WebhooksGivenUp", COUNT)  # deliveries that ran out of attempts: `failed`
EVENTS_NOT_PUBLISHED = Metric("EventsNotPublished", COUNT)  # EventBridge PutEvents entries lost
METRICS = (
    IMAGES_EMBEDDED,
    IMAGES_FAILED,
    IMAGES_BACKFILLED,
    SEARCH_LATENCY,
    QUERY_CACHE_HITS,
    QUERY_CACHE_MISSES,
    UPLOADS_ACCEPTED,
    WEBHOOKS_DELIVERED,
    WEBHOOK_ATTEMPTS_FAILED,
    WEBHOOKS_GIVEN_UP,
    EVENTS_NOT_PUBLISHED,
)

Measurements = dict[tuple[Metric, str | None], list[float]]
# The invocation's measurements. Asyncio tasks and the thread-pool hops of sync routes copy the context,
# so a search served through Mangum records into its invocation; other threads (the local stack's HTTP
# server, shadow runs) see None.
_current: ContextVar[Measurements | None] = ContextVar("imagesearch_measurements", default=None)

H = TypeVar("H", bound=Callable[..., Any])


class InvocationMetrics:
    """Records measurements during an invocation and has Powertools publish them at its end."""

    def __init__(self, *, service: str = SERVICE, namespace: str | None = None) -> None:
        self.service = service
        # As Powertools' Metrics does: the namespace given, else POWERTOOLS_METRICS_NAMESPACE, read once.
        self.namespace: str | None = EphemeralMetrics(namespace=namespace).namespace
        self._emf: EphemeralMetrics | None = None
        self._lock = threading.Lock()

    def add(self, metric: Metric, value: float = 1.0, dimension: str | None = None) -> None:
        """Add `value` to `metric` (under `dimension`'s value when it has one) in the current invocation."""
        measurements = _current.get()
        if measurements is None:
            return
        if (dimension is None) is not (metric.dimension is None):
            raise ValueError(f"{metric.name} takes {metric.dimension or 'no'} dimension, got {dimension!r}")
        measurements.setdefault((metric, dimension), []).append(value)

    def log_metrics(self, handler: H) -> H:
        """Decorate a Lambda handler: its invocation's measurements are published when it ends."""

        @functools.wraps(handler)
        def measured(event: Any, context: Any) -> Any:
            if not self.publishing():
                return handler(event, context)
            measurements: Measurements = {}
            token = _current.set(measurements)
            try:
                return handler(event, context)
            finally:
                _current.reset(token)
                self.publish(measurements)

        return cast(H, measured)

    def publishing(self) -> bool:
        """Whether this process publishes: a namespace is known and metrics are not disabled."""
        return self.namespace is not None and not is_metrics_disabled()

    def publish(self, measurements: Measurements) -> None:
        """Print `measurements` as EMF: one line per value of a dimension (an invocation has one at most:
        one search mode, one upload route), published under {service} and {service, dimension}; the
        measurements without a dimension ride on the first line. Nothing when there is nothing."""
        lines: dict[tuple[str, str] | None, list[tuple[Metric, list[float]]]] = {}
        for (metric, value_of), values in measurements.items():
            key = None if metric.dimension is None or value_of is None else (metric.dimension, value_of)
            lines.setdefault(key, []).append((metric, values))
        plain = lines.pop(None, [])
        if plain:
            lines.setdefault(next(iter(lines), None), []).extend(plain)
        with self._lock:
            emf = self._provider()
            for key, items in lines.items():
                if key is not None:
                    emf.add_dimensions(**{"service": self.service, key[0]: key[1]})
                # Powertools' serialiser, handed the values the way its metric set holds them: going through
                # its add_metric (checks and a formatted debug message per value) and flush_metrics doubled
                # the cost of publishing (docs/observability.md, "Overhead").
                metric_set = {
                    metric.name: {
                        "Unit": metric.unit,
                        "StorageResolution": 60,
                        "Value": [sum(values)] if metric.unit == COUNT else values,
                    }
                    for metric, values in items
                }
                print(json.dumps(emf.serialize_metric_set(metrics=metric_set), separators=(",", ":")))
                emf.clear_metrics()  # the dimension sets too

    def _provider(self) -> EphemeralMetrics:
        # Ephemeral: Powertools' shared Metrics state stays untouched. Reused: building one costs ~40 us.
        emf = self._emf
        if emf is None or emf.namespace != self.namespace:
            emf = self._emf = EphemeralMetrics(namespace=self.namespace, service=self.service)
        return emf


_NO_SPAN: AbstractContextManager[None] = nullcontext()


class Tracing:
    """Powertools' Tracer where this process traces; else handlers and spans pass through untouched."""

    def __init__(self, tracer: Tracer | None = None) -> None:
        self.tracer = tracer

    @classmethod
    def for_this_process(cls, service: str = SERVICE) -> Tracing:
        """On where the X-Ray SDK is installed and Tracer's own detection finds Lambda (not `sam local`, not
        POWERTOOLS_TRACE_DISABLED). The SDK is looked for without importing it: its import alone costs a
        few hundred milliseconds (it builds two botocore clients)."""
        if find_spec("aws_xray_sdk") is None:
            return cls(None)
        from aws_lambda_powertools import Tracer

        if Tracer._is_tracer_disabled():
            return cls(None)
        # No auto-patching: search/service.py's spans name the database and the model; patching psycopg
        # would add a subsegment for every statement of the pool, pings included.
        return cls(Tracer(service=service, auto_patch=False))

    def capture_lambda_handler(self, handler: H) -> H:
        """A segment per invocation (the response is not attached: search pages are large)."""
        if self.tracer is None:
            return handler
        return cast(H, self.tracer.capture_lambda_handler(handler, capture_response=False))

    def span(self, name: str) -> AbstractContextManager[Any]:
        """A subsegment named `name` around a block, when tracing."""
        if self.tracer is None:
            return _NO_SPAN
        return cast(AbstractContextManager[Any], self.tracer.provider.in_subsegment(name=name))


metrics = InvocationMetrics()
tracer = Tracing.for_this_process()
