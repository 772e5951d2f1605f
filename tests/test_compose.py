"""docker-compose.yml and the collector config, checked by parsing (no Docker engine here).

`docker compose config` needs the compose plugin and is not available on these machines, so
the structure that a deployment relies on is asserted directly on the YAML.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from commands.config import SPECS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(doc, dict)
    return doc


def test_the_services_use_official_images_and_have_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"kafka", "otel-collector", "billing", "monitor"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["otel-collector"]["image"].startswith("otel/opentelemetry-collector")
    assert services["billing"]["build"] == "." and (ROOT / "Dockerfile").is_file()
    for name, service in services.items():
        check = service.get("healthcheck", {})
        assert check.get("test") and check.get("interval"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name


def test_kafka_runs_in_kraft_mode_and_keeps_the_log(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].endswith("@kafka:9093")
    assert not [k for k in env if "ZOOKEEPER" in k]
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert str(env["KAFKA_LOG_RETENTION_MS"]) == "-1"  # the event log is the source of truth
    assert any(v.startswith("kafka-data:") for v in kafka["volumes"])


def test_billing_runs_kafka_workers_with_a_state_volume_and_env(compose: dict[str, Any]) -> None:
    billing = compose["services"]["billing"]
    env = billing["environment"]
    assert billing["command"][:3] == ["start", "--backend", "kafka"]
    assert env["EVENT_LOG"] == "kafka://kafka:9092"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert billing["env_file"] == ".env" and (ROOT / ".env.example").is_file()
    known = {s.env for s in SPECS}
    assert {k for k in env if not k.startswith("OTEL_")} <= known, "an unknown setting in the billing environment"
    state = env["ROCKSDB_PATH"]
    assert f"billing-data:{state}" in billing["volumes"]
    assert f"{state}/alive-" in " ".join(billing["healthcheck"]["test"])  # commands/kafka/worker.py writes it
    assert billing["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert set(compose["volumes"]) >= {"kafka-data", "billing-data"}


def test_published_ports_are_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_the_collector_forwards_metrics_and_logs_with_the_token(compose: dict[str, Any]) -> None:
    collector = compose["services"]["otel-collector"]
    mount = next(v for v in collector["volumes"] if v.endswith(":ro"))
    config = yaml.safe_load((ROOT / mount.split(":")[0]).read_text())
    exporter = config["exporters"]["otlphttp/forward"]
    used = set(re.findall(r"\$\{env:(\w+)\}", yaml.safe_dump(config)))
    assert used <= set(collector["environment"]), "the config reads a variable the service does not set"
    assert exporter["headers"]["Authorization"].startswith("Bearer ")
    for pipeline in ("metrics", "logs"):
        assert config["service"]["pipelines"][pipeline]["exporters"] == ["otlphttp/forward"]
        assert config["service"]["pipelines"][pipeline]["receivers"] == ["otlp"]
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")


def test_one_monitor_exports_the_whole_topic_from_the_billing_image(compose: dict[str, Any]) -> None:
    monitor, billing = compose["services"]["monitor"], compose["services"]["billing"]
    assert monitor["command"] == ["monitor"] and monitor["image"] == billing["image"]
    assert "deploy" not in monitor  # one: it holds the whole-topic view (projections/topic)
    assert monitor["environment"]["EVENT_LOG"] == billing["environment"]["EVENT_LOG"]
    assert monitor["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://otel-collector:")
    state = monitor["environment"]["ROCKSDB_PATH"]
    assert f"billing-data:{state}" in monitor["volumes"]
    assert f"{state}/alive-monitor-" in " ".join(monitor["healthcheck"]["test"])  # commands/cli/metrics.py
