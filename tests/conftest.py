"""Shared fixtures: a clean environment, real local servers, unique names."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from support import PipelineProcess, not_installed

from meshwatch.localservers import MissingBinaryError, Mosquitto, RabbitCluster, VictoriaMetrics

_Server = TypeVar("_Server", Mosquitto, VictoriaMetrics)

# --doctest-modules would import each conftest.py as a test module named "conftest", which
# clashes with the conftest of a test folder that sorts before it (tests/alerts).
collect_ignore = [
    "conftest.py",
    "alerts/conftest.py",
    "models/conftest.py",
    "web/conftest.py",
]


@contextmanager
def _running(server: _Server) -> Iterator[_Server]:
    """Start ``server`` for the duration of a fixture; skip when it is not installed (not in CI)."""
    try:
        server.start()
    except MissingBinaryError as exc:
        not_installed(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every MESHWATCH_* variable so the developer's settings never leak into tests."""
    for name in list(os.environ):
        if name.startswith("MESHWATCH_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def no_stray_pipelines() -> Iterator[None]:
    """Kill any `meshwatch run` a test started and left running (a failed test, say)."""
    yield
    while PipelineProcess.started:
        process = PipelineProcess.started.pop()
        if process.alive():
            process.kill()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """Yield a broker shared by the session; to restart or kill one, use ``fresh_mosquitto``."""
    with _running(Mosquitto(tmp_path_factory.mktemp("mosquitto"))) as broker:
        yield broker


@pytest.fixture
def fresh_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """Yield a broker of this test's own, free to restart or kill."""
    with _running(Mosquitto(tmp_path / "mosquitto")) as broker:
        yield broker


@pytest.fixture(scope="session")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    """Yield a VictoriaMetrics shared by the session; keep series apart with ``unique_topic``."""
    with _running(VictoriaMetrics(tmp_path_factory.mktemp("victoria-metrics"))) as vm:
        yield vm


@pytest.fixture
def fresh_victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """Yield a VictoriaMetrics of this test's own, free to restart or kill."""
    with _running(VictoriaMetrics(tmp_path / "victoria-metrics")) as vm:
        yield vm


@pytest.fixture(scope="module")
def rabbit_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitCluster]:
    """Yield a 3-node RabbitMQ cluster with MQTT, shared by a module (starting one takes ~30 s).

    Tests that kill a node run in a module of their own, or last.
    """
    cluster = RabbitCluster(tmp_path_factory.mktemp("rabbitmq"), size=3)
    try:
        cluster.start()
    except MissingBinaryError as exc:
        not_installed(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """Yield the URL of a fresh PostgreSQL database of this module's own, dropped afterwards.

    The server is the one on 127.0.0.1:5432 (trust authentication, database ``test``); the
    tests skip when there is none.
    """
    psycopg = pytest.importorskip("psycopg")
    admin_url = os.environ.get("MESHWATCH_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
    name = f"meshwatch_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(admin_url, autocommit=True)
    except psycopg.OperationalError as exc:
        not_installed(f"no PostgreSQL at {admin_url}: {exc}")
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield admin_url.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def unique_topic() -> str:
    """Return a short unique ID, valid as topic prefix, site or asset ID (``[A-Za-z0-9_.-]``)."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Return a fresh, empty data directory (created)."""
    path = tmp_path / "data"
    path.mkdir()
    return path
