"""OTLP export reaches a real receiver on loopback with the right names, values and token."""

from __future__ import annotations

import logging

from projections.telemetry import (
    Destination,
    Sample,
    Telemetry,
    exported_metric_names,
    gauge_name,
    resource,
    send_test,
)
from tests.otlp_receiver import Receiver

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
    assert points[(gauge_name("1h", "total_amount"), (("scope", "overall"), ("subscription", "all"),
                                                      ("window", "1h")))] == 12.5


def test_warnings_go_out_as_logs() -> None:
    with Receiver() as rx:
        telemetry = Telemetry(resource("b", "c", None), Destination.from_settings(rx.url, TOKEN), lambda: [], 3600)
        logging.getLogger("pipeline.processor").warning("payment failed: insufficient funds")
        telemetry.shutdown()
        bodies = [r.body.string_value for req in rx.logs for rl in req.resource_logs
                  for sl in rl.scope_logs for r in sl.log_records]
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
