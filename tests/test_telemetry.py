"""OTLP export reaches a real receiver on loopback with the right names, values and token."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from commands.config import Settings
from commands.console import Console
from commands.context import Context
from commands.services.telemetry_export import snapshot_of
from pipeline.events import AnyEvent, PaymentConfirmed, PaymentFailed, PaymentRequested, Period, Recorded
from pipeline.log.store import Store
from projections.telemetry import (
    Destination,
    Sample,
    Telemetry,
    exported_metric_names,
    gauge_name,
    payment_ids,
    resource,
    send_test,
)
from projections.windows import WindowProjection
from tests.otlp_receiver import Receiver
from tests.processes import write_catalogue

TOKEN = "otlp-test-token-4711"


def test_window_gauges_reach_the_receiver_with_bearer_token() -> None:
    samples = [
        Sample("24h", "payment_count", 7, {"scope": "overall", "subscription": "all"}),
        Sample("24h", "payment_count", 5, {"scope": "plan", "subscription": "prover"}),
        Sample("1h", "total_amount", 12.5, {"scope": "overall", "subscription": "all"}),
    ]
    with Receiver() as rx:
        dest = Destination.from_settings(rx.url, TOKEN)
        telemetry = Telemetry(resource("billing-test", "localnet", "src-1"), dest, lambda: samples, 3600)
        telemetry.count_outcome(True, "prover", latency_secs=1.5)
        telemetry.shutdown()  # flushes: short commands lose nothing
        points = rx.gauge_points()
        assert rx.auth and set(rx.auth) == {f"Bearer {TOKEN}"}
        assert rx.resource_attributes()["service.name"] == "billing-test"
        assert rx.resource_attributes()["canton.chain"] == "localnet"
    name = gauge_name("24h", "payment_count")
    assert points[(name, (("scope", "overall"), ("subscription", "all"), ("window", "24h")))] == 7
    assert points[(name, (("scope", "plan"), ("subscription", "prover"), ("window", "24h")))] == 5
    assert (
        points[(gauge_name("1h", "total_amount"), (("scope", "overall"), ("subscription", "all"), ("window", "1h")))]
        == 12.5
    )


def test_warnings_go_out_as_logs() -> None:
    with Receiver() as rx:
        telemetry = Telemetry(resource("b", "c", None), Destination.from_settings(rx.url, TOKEN), lambda: [], 3600)
        logging.getLogger("pipeline.processor.runner").warning("payment failed: insufficient funds")
        telemetry.shutdown()
        bodies = [
            r.body.string_value
            for req in rx.logs
            for rl in req.resource_logs
            for sl in rl.scope_logs
            for r in sl.log_records
        ]
    assert "payment failed: insufficient funds" in bodies


def test_test_otel_reports_acceptance_and_refusal() -> None:
    with Receiver() as rx:
        assert send_test(resource("b", "c", None), Destination.from_settings(rx.url, TOKEN)) == (True, True)
        assert any(name == "canton.billing.test.metric" for name, _ in rx.gauge_points())
    with Receiver(status=401) as rx:
        assert send_test(resource("b", "c", None), Destination.from_settings(rx.url, "wrong")) == (False, False)


def test_metric_names_keep_the_original_contract() -> None:
    names = exported_metric_names()
    for window in ("10m", "1h", "6h", "12h", "24h", "7d", "30d"):
        assert f"canton.billing.window.{window}.success_rate" in names
    assert "canton.billing.payment.failed" in names


def test_outcomes_become_counters_latency_and_payment_spans_and_logs_carry_their_trace() -> None:
    t0 = datetime(2026, 11, 24, 12, tzinfo=UTC)
    request = PaymentRequested(
        payment_id="pay-1",
        at=t0,
        party="a::1",
        user_id="a",
        plan="prover",
        period=Period(index=3, start=t0, end=t0 + timedelta(minutes=5)),
        amount=Decimal(2),
        receiver="app::1",
        description="d",
    )
    confirmed = PaymentConfirmed(
        payment_id="pay-1",
        at=t0 + timedelta(seconds=4),
        party="a::1",
        plan="prover",
        amount=Decimal(2),
        update_id="1220ab",
    )
    failed = PaymentFailed(
        payment_id="pay-2",
        at=t0,
        party="b::1",
        plan="prover",
        amount=Decimal(2),
        attempt=5,
        code="INSUFFICIENT_FUNDS",
        message="m",
        retryable=False,
        final=True,
    )
    with Receiver() as rx:
        telemetry = Telemetry(
            resource("b", "c", None),
            Destination.from_settings(rx.url, TOKEN),
            lambda: [],
            3600,
            redact=lambda text: text.replace("s3cret-token", "***"),
        )
        # pay-1 confirmed twice: a second Kafka worker recorded it too; it counts once
        stream: list[AnyEvent] = [request, confirmed, failed, confirmed]
        for offset, event in enumerate(stream):
            telemetry.observe(Recorded(offset, event))
        logging.getLogger("pipeline.processor.runner").warning(
            "scan lags; token s3cret-token", extra={"payment_id": "pay-1", "plan": "prover"}
        )
        telemetry.shutdown()
        sums, spans, logs = (
            rx.sums(),
            {s.name + s.attributes[0].value.string_value: s for s in rx.spans()},
            rx.log_records(),
        )
    assert sums[("canton.billing.payment.confirmed", (("subscription", "prover"),))] == 1
    assert sums[("canton.billing.payment.failed", (("subscription", "prover"),))] == 1
    assert len([s for s in rx.spans() if s.name == "payment"]) == 2
    assert sums[("canton.billing.payment.latency", (("subscription", "prover"),))] == 1  # the one with a request
    span = spans["paymentpay-1"]
    trace_id, span_id = payment_ids("pay-1")
    assert span.trace_id == trace_id.to_bytes(16, "big") and span.span_id == span_id.to_bytes(8, "big")
    assert span.end_time_unix_nano - span.start_time_unix_nano == 4 * 10**9
    assert spans["paymentpay-2"].status.code == 2  # STATUS_CODE_ERROR
    (record,) = [r for r in logs if "scan lags" in r.body.string_value]
    assert record.trace_id == span.trace_id and record.span_id == span.span_id  # the log is in the payment's trace
    assert record.body.string_value == "scan lags; token ***"


def test_series_are_overall_and_per_plan_and_per_user_only_when_opted_in(tmp_path: Path) -> None:
    data = write_catalogue(tmp_path / "data", users=3)
    projection = WindowProjection(Store.open(tmp_path / "proj"))
    now = datetime.now(UTC)
    projection.apply(
        [
            Recorded(
                i,
                PaymentConfirmed(
                    payment_id=f"p{i}",
                    at=now,
                    party=f"u{i}::1220{i:060x}",
                    plan="prover",
                    amount=Decimal(2),
                    update_id="u",
                ),
            )
            for i in range(3)
        ]
    )
    projection.commit()
    for env, users in (({}, 0), ({"OTEL_PER_USER_SERIES": "true", "OTEL_MAX_USER_SERIES": "2"}, 2)):
        settings = Settings.from_env({"BILLING_DATA_DIR": str(data), **env}, dotenv=None)
        samples = list(snapshot_of(projection, Context(settings, Console(out=io.StringIO()), lambda: now)))
        by_name: dict[tuple[str, str], list[dict[str, str]]] = {}
        for s in samples:
            by_name.setdefault((s.window, s.metric), []).append(dict(s.attributes))
        for attribute_sets in by_name.values():  # one name: every series told apart by its attributes
            assert len({tuple(sorted(a.items())) for a in attribute_sets}) == len(attribute_sets)
            assert all("scope" in a for a in attribute_sets)
        user_series = {a["user"] for sets in by_name.values() for a in sets if a["scope"] == "user"}
        assert len(user_series) == users
        overall = next(
            s
            for s in samples
            if s.window == "24h" and s.metric == "payment_count" and s.attributes["scope"] == "overall"
        )
        assert overall.value == 3
    projection.store.close()
