"""OpenTelemetry export: window gauges, payment counters, a latency histogram, and logs.

The one module that imports opentelemetry. Metrics go over OTLP/HTTP to BetterStack
(`OPENTELEMETRY_INGESTING_HOST` + bearer `OPENTELEMETRY_SOURCE_TOKEN`) or to the endpoint
the standard `OTEL_EXPORTER_OTLP_*` variables name. Gauges are observed from a snapshot
callback, so an export shows the latest fold; overall, per-plan and (opt-in) per-user series
share a name but never an attribute set (`scope`), so dashboards never average totals with parts.

Every payment outcome becomes a span (request to outcome) whose ids derive from the payment
id, so the warnings and errors logged about a payment (OTel logs) carry that span's context.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from opentelemetry import context as otel_context
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
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
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags, set_span_in_context

from pipeline.events import PaymentConfirmed, PaymentFailed, Recorded
from projections.payment_outcomes import PaymentOutcomes

WINDOWS = ("10m", "1h", "6h", "12h", "24h", "7d", "30d")
GAUGES = ("payment_count", "total_amount", "success_rate", "failure_count", "active_users", "active_subscriptions")
COUNTERS = ("canton.billing.payment.confirmed", "canton.billing.payment.failed")
LATENCY = "canton.billing.payment.latency"
TEST_METRIC = "canton.billing.test.metric"
STANDARD_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")  # either turns export on


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
    traces_endpoint: str | None = None

    @classmethod
    def from_settings(cls, host: str | None, token: str | None) -> Destination:
        if host:
            base = (host if host.startswith(("http://", "https://")) else f"https://{host}").rstrip("/")
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return cls(f"{base}/v1/metrics", f"{base}/v1/logs", headers, f"{base}/v1/traces")
        return cls(None, None, {})


def enabled(host: str | None, environ: Mapping[str, str]) -> bool:
    return bool(host) or any(map(environ.get, STANDARD_ENDPOINTS))


def resource(app_name: str, chain: str, source_id: str | None) -> Resource:
    attributes = {"service.name": app_name, "service.version": "0.1.0", "canton.chain": chain}
    if source_id:
        attributes["source.id"] = source_id
    return Resource.create(attributes)


class Telemetry:
    """The metric, trace and log pipeline of one process. Call `shutdown()` on exit: it flushes.

    ``redact`` is applied to every log body and string attribute before it leaves the process;
    without one, the redaction of the process's stderr log handler (see `commands.logs`) is used.
    """

    def __init__(
        self,
        res: Resource,
        dest: Destination,
        snapshot: Snapshot,
        interval_secs: float,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        headers = dict(dest.headers)
        exporter = OTLPMetricExporter(endpoint=dest.metrics_endpoint, headers=headers, timeout=10)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=interval_secs * 1000)
        self.meters = MeterProvider(resource=res, metric_readers=[reader])
        self.logs = LoggerProvider(resource=res)
        log_exporter = OTLPLogExporter(endpoint=dest.logs_endpoint, headers=headers, timeout=10)
        self.logs.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
        self.handler = PaymentLogHandler(
            redact or _stderr_redaction(), level=logging.WARNING, logger_provider=self.logs
        )
        self.ids = PaymentIds()
        self.traces = TracerProvider(resource=res, id_generator=self.ids, shutdown_on_exit=False)
        span_exporter = OTLPSpanExporter(endpoint=dest.traces_endpoint, headers=headers, timeout=10)
        self.traces.add_span_processor(BatchSpanProcessor(span_exporter))
        self.payments = PaymentOutcomes()
        self._snapshot = snapshot
        self._latest: tuple[float, dict[tuple[str, str], list[Sample]]] = (-1.0, {})
        meter = self.meters.get_meter("canton-billing")
        for window in WINDOWS:
            for metric in GAUGES:
                meter.create_observable_gauge(gauge_name(window, metric), callbacks=[self._observer(window, metric)])
        self.confirmed = meter.create_counter(COUNTERS[0], unit="{payment}", description="payments confirmed")
        self.failed = meter.create_counter(COUNTERS[1], unit="{payment}", description="payments failed for good")
        self.latency = meter.create_histogram(LATENCY, unit="s", description="request to outcome")
        logging.getLogger().addHandler(self.handler)

    def _observer(self, window: str, metric: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(s.value, {"window": window, **s.attributes}) for s in self._samples(window, metric)]

        return observe

    def _samples(self, window: str, metric: str) -> list[Sample]:
        """One snapshot serves all 42 gauges of an export (they are collected one after another)."""
        taken, groups = self._latest
        if time.monotonic() - taken > 1.0:
            groups = {}
            for sample in self._snapshot():
                groups.setdefault((sample.window, sample.metric), []).append(sample)
            self._latest = (time.monotonic(), groups)
        return groups.get((window, metric), [])

    def observe(self, record: Recorded) -> None:
        """Feed one new log record: outcomes count, time their latency and become payment spans."""
        outcome = self.payments.see(record)
        if outcome is None:
            return
        event, requested_at = outcome
        confirmed = isinstance(event, PaymentConfirmed)
        latency = (event.at - requested_at).total_seconds() if requested_at else None
        self.count_outcome(confirmed, event.plan, latency)
        self._span(event, requested_at or event.at)

    def _span(self, event: PaymentConfirmed | PaymentFailed, start: datetime) -> None:
        attributes = {
            "payment.id": event.payment_id,
            "subscription": event.plan,
            "outcome": "confirmed" if isinstance(event, PaymentConfirmed) else "failed",
        }
        if isinstance(event, PaymentConfirmed):
            attributes["canton.update_id"] = event.update_id
        else:
            attributes["error.code"] = event.code
        self.ids.next = payment_ids(event.payment_id)
        try:
            span = self.traces.get_tracer("canton-billing").start_span(
                "payment", attributes=attributes, start_time=_ns(start)
            )
        finally:
            self.ids.next = None
        if isinstance(event, PaymentFailed):
            span.set_status(Status(StatusCode.ERROR, event.code))
        span.end(end_time=_ns(event.at))

    def count_outcome(self, confirmed: bool, plan: str, latency_secs: float | None = None) -> None:
        (self.confirmed if confirmed else self.failed).add(1, {"subscription": plan})
        if latency_secs is not None:
            self.latency.record(latency_secs, {"subscription": plan})

    def shutdown(self) -> None:
        logging.getLogger().removeHandler(self.handler)
        self.meters.shutdown()
        self.traces.shutdown()
        self.logs.shutdown()


def _ns(at: datetime) -> int:
    return int(at.timestamp() * 1e9)


def payment_ids(payment_id: str) -> tuple[int, int]:
    """(trace id, span id) of a payment's span: derived from its id, so any process agrees."""
    digest = hashlib.sha256(payment_id.encode()).digest()
    return int.from_bytes(digest[:16], "big") or 1, int.from_bytes(digest[16:24], "big") or 1


class PaymentIds(RandomIdGenerator):
    """Random ids, except for the span being started for a payment (``next``)."""

    next: tuple[int, int] | None = None

    def generate_trace_id(self) -> int:
        return self.next[0] if self.next else super().generate_trace_id()

    def generate_span_id(self) -> int:
        return self.next[1] if self.next else super().generate_span_id()


def _stderr_redaction() -> Callable[[str], str]:
    """The redaction the CLI's log handler applies (its formatter's ``redactor``), else none."""
    for handler in logging.getLogger().handlers:
        redactor = getattr(handler.formatter, "redactor", None)
        if callable(getattr(redactor, "redact", None)):
            return redactor.redact  # type: ignore[no-any-return,union-attr]
    return str


class PaymentLogHandler(LoggingHandler):
    """OTel logs with secrets redacted, in the trace of the payment a record is about (``payment_id``)."""

    def __init__(self, redact: Callable[[str], str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.redact = redact
        self.setFormatter(logging.Formatter())  # the base class formats the body only when one is set

    def emit(self, record: logging.LogRecord) -> None:
        payment_id = getattr(record, "payment_id", None) or (getattr(record, "fields", None) or {}).get("payment_id")
        if not isinstance(payment_id, str):
            super().emit(record)
            return
        trace_id, span_id = payment_ids(payment_id)
        span = NonRecordingSpan(
            SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
        )
        token = otel_context.attach(set_span_in_context(span))
        try:
            super().emit(record)
        finally:
            otel_context.detach(token)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(record.getMessage())  # the message only: fields go out as attributes

    def _get_attributes(self, record: logging.LogRecord) -> tuple[dict, str | None]:  # type: ignore[type-arg]
        attributes, event_name = super()._get_attributes(record)
        fields = attributes.pop("fields", None)
        if isinstance(fields, dict):
            attributes.update(fields)
        return {
            k: self.redact(v) if isinstance(v, str) else v if isinstance(v, int | float | bool) else self.redact(str(v))
            for k, v in attributes.items()
        }, event_name


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
    return metrics_ok, _send_test_log(res, dest)


def _send_test_log(res: Resource, dest: Destination) -> bool:
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]  # unannotated in opentelemetry
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
        exporter.shutdown()  # type: ignore[no-untyped-call]  # unannotated in opentelemetry
        provider.shutdown()
