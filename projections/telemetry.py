"""OpenTelemetry export: window gauges, payment counters, a latency histogram, and logs.

The one module that imports opentelemetry. Metrics go over OTLP/HTTP either to
BetterStack (`OPENTELEMETRY_INGESTING_HOST` + bearer `OPENTELEMETRY_SOURCE_TOKEN`) or to
any endpoint named by the standard `OTEL_EXPORTER_OTLP_*` variables, which the exporter
reads itself. Gauges are observed from a snapshot callback, so an export always shows the
latest fold; overall, per-plan and (opt-in) per-user series share a name but never an
attribute set: `scope` tells them apart, so dashboards never average totals with parts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

WINDOWS = ("10m", "1h", "6h", "12h", "24h", "7d", "30d")
GAUGES = ("payment_count", "total_amount", "success_rate", "failure_count", "active_users", "active_subscriptions")
COUNTERS = ("canton.billing.payment.confirmed", "canton.billing.payment.failed")
LATENCY = "canton.billing.payment.latency"
TEST_METRIC = "canton.billing.test.metric"


def gauge_name(window: str, metric: str) -> str:
    return f"canton.billing.window.{window}.{metric}"


def exported_metric_names() -> list[str]:
    """Every metric name this product exports (the dashboard may query only these)."""
    return [gauge_name(w, m) for w in WINDOWS for m in GAUGES] + [*COUNTERS, LATENCY, TEST_METRIC]


@dataclass(frozen=True)
class Sample:
    """One gauge value: ``metric`` of ``window`` for one attribute set."""

    window: str
    metric: str
    value: float
    attributes: Mapping[str, str] = field(default_factory=dict)


Snapshot = Callable[[], Iterable[Sample]]


@dataclass(frozen=True)
class Destination:
    """Where OTLP goes. Empty endpoint: the exporter reads OTEL_EXPORTER_OTLP_* itself."""

    metrics_endpoint: str | None
    logs_endpoint: str | None
    headers: Mapping[str, str]

    @classmethod
    def from_settings(cls, host: str | None, token: str | None) -> Destination:
        if host:
            base = host if host.startswith(("http://", "https://")) else f"https://{host}"
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return cls(f"{base.rstrip('/')}/v1/metrics", f"{base.rstrip('/')}/v1/logs", headers)
        return cls(None, None, {})


def enabled(host: str | None, environ: Mapping[str, str]) -> bool:
    return bool(host) or any(
        environ.get(k) for k in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    )


def resource(app_name: str, chain: str, source_id: str | None) -> Resource:
    attributes = {"service.name": app_name, "service.version": "0.1.0", "canton.chain": chain}
    if source_id:
        attributes["source.id"] = source_id
    return Resource.create(attributes)


class Telemetry:
    """The metric and log pipeline of one process. Call `shutdown()` on exit: it flushes."""

    def __init__(self, res: Resource, dest: Destination, snapshot: Snapshot, interval_secs: float) -> None:
        exporter = OTLPMetricExporter(endpoint=dest.metrics_endpoint, headers=dict(dest.headers), timeout=10)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=interval_secs * 1000)
        self.meters = MeterProvider(resource=res, metric_readers=[reader])
        self.logs = LoggerProvider(resource=res)
        log_exporter = OTLPLogExporter(endpoint=dest.logs_endpoint, headers=dict(dest.headers), timeout=10)
        self.logs.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
        self.handler = LoggingHandler(level=logging.WARNING, logger_provider=self.logs)
        self._snapshot = snapshot
        meter = self.meters.get_meter("canton-billing")
        for window in WINDOWS:
            for metric in GAUGES:
                meter.create_observable_gauge(gauge_name(window, metric), callbacks=[self._observer(window, metric)])
        self.confirmed = meter.create_counter(COUNTERS[0], unit="{payment}", description="payments confirmed")
        self.failed = meter.create_counter(COUNTERS[1], unit="{payment}", description="payments failed for good")
        self.latency = meter.create_histogram(LATENCY, unit="s", description="request to confirmation")
        logging.getLogger().addHandler(self.handler)

    def _observer(self, window: str, metric: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(s.value, {"window": window, **s.attributes})
                for s in self._snapshot()
                if s.window == window and s.metric == metric
            ]

        return observe

    def count_outcome(self, confirmed: bool, plan: str, latency_secs: float | None = None) -> None:
        (self.confirmed if confirmed else self.failed).add(1, {"subscription": plan})
        if latency_secs is not None:
            self.latency.record(latency_secs, {"subscription": plan})

    def flush(self) -> None:
        self.meters.force_flush()
        self.logs.force_flush()

    def shutdown(self) -> None:
        logging.getLogger().removeHandler(self.handler)
        self.meters.shutdown()
        self.logs.shutdown()


def send_test(res: Resource, dest: Destination) -> tuple[bool, bool]:
    """Export one test gauge and one log record now; return whether each was accepted."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=res, metric_readers=[reader])
    provider.get_meter("canton-billing").create_gauge(TEST_METRIC).set(42, {"source": "test-otel"})
    data = reader.get_metrics_data()
    exporter = OTLPMetricExporter(endpoint=dest.metrics_endpoint, headers=dict(dest.headers), timeout=10)
    metrics_ok = data is not None and exporter.export(data) == MetricExportResult.SUCCESS
    provider.shutdown()
    exporter.shutdown()
    logs_ok = _send_test_log(res, dest)
    return metrics_ok, logs_ok


def _send_test_log(res: Resource, dest: Destination) -> bool:
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=res)
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    message = "test-otel: a test log record from canton-billing"
    handler.emit(logging.LogRecord("canton-billing.test-otel", logging.WARNING, __file__, 0, message, None, None))
    exporter = OTLPLogExporter(endpoint=dest.logs_endpoint, headers=dict(dest.headers), timeout=10)
    records = memory.get_finished_logs()
    try:
        return bool(records) and exporter.export(records) == LogRecordExportResult.SUCCESS
    finally:
        exporter.shutdown()
        provider.shutdown()
