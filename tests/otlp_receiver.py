"""A real OTLP/HTTP receiver on loopback that decodes what it gets (protobuf), for tests."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class Receiver:
    """Collects decoded OTLP requests; answers ``status`` (200 = accepted)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.metrics: list[ExportMetricsServiceRequest] = []
        self.logs: list[ExportLogsServiceRequest] = []
        self.traces: list[ExportTraceServiceRequest] = []
        self.auth: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.auth.append(self.headers.get("authorization"))
                if self.path.endswith("/v1/metrics"):
                    receiver.metrics.append(ExportMetricsServiceRequest.FromString(body))
                elif self.path.endswith("/v1/logs"):
                    receiver.logs.append(ExportLogsServiceRequest.FromString(body))
                elif self.path.endswith("/v1/traces"):
                    receiver.traces.append(ExportTraceServiceRequest.FromString(body))
                self.send_response(receiver.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _metric_list(self) -> list[Any]:
        return [m for req in self.metrics for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]

    def gauge_points(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Latest value per (metric name, sorted attributes)."""
        return {(m.name, _attributes(p)): _number(p) for m in self._metric_list() for p in m.gauge.data_points}

    def resource_attributes(self) -> dict[str, str]:
        rm = self.metrics[-1].resource_metrics[0]
        return {a.key: a.value.string_value for a in rm.resource.attributes}

    def log_records(self) -> list[Any]:
        return [r for req in self.logs for rl in req.resource_logs for sl in rl.scope_logs for r in sl.log_records]

    def spans(self) -> list[Any]:
        return [s for req in self.traces for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]

    def sums(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Latest value of every counter (sum) and histogram count, per (name, sorted attributes)."""
        out = {(m.name, _attributes(p)): _number(p) for m in self._metric_list() for p in m.sum.data_points}
        out |= {(m.name, _attributes(p)): p.count for m in self._metric_list() for p in m.histogram.data_points}
        return out


def _attributes(point: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((a.key, a.value.string_value) for a in point.attributes))


def _number(point: Any) -> float:
    value: float = point.as_double if point.HasField("as_double") else point.as_int
    return value
