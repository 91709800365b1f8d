"""compose.yaml: valid Compose, self-consistent, and configured only with real settings."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from meshwatch.settings import load_settings

ROOT = Path(__file__).parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
# ${VAR}, ${VAR:-default}, ${VAR:?message}; $$ is a literal dollar.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _interpolate(text: str, env: dict[str, str]) -> str:
    return VARIABLE.sub(lambda m: env[m.group(1)], text).replace("$$", "$")


def test_compose_validates_against_the_compose_spec_schema() -> None:
    """The file, interpolated from .env.example, is valid per the vendored Compose schema."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
    text = _interpolate((ROOT / "compose.yaml").read_text(encoding="utf-8"), _env_example())
    jsonschema.Draft7Validator(schema).validate(yaml.safe_load(text))


def test_compose_structure_strictly() -> None:
    """Only known top-level keys and service keys; every service has an image or a build."""
    assert set(COMPOSE) <= {"services", "volumes", "networks", "secrets", "configs"}
    allowed = {
        "image", "build", "command", "restart", "ports", "volumes", "environment",
        "healthcheck", "depends_on", "profiles", "hostname",
    }  # fmt: skip
    for name, service in SERVICES.items():
        assert set(service) <= allowed, name
        assert "image" in service or "build" in service, name
        assert service.get("restart", "unless-stopped") == "unless-stopped", name
        assert isinstance(service.get("environment", {}), dict), name
        for check in [service.get("healthcheck", {})]:
            assert set(check) <= {
                "test",
                "interval",
                "timeout",
                "retries",
                "start_period",
                "disable",
            }


CLUSTER = {"rabbit1", "rabbit2", "rabbit3", "postgres", "meshwatch-1", "meshwatch-2"}
INSTANCES = ["meshwatch-1", "meshwatch-2"]


def test_the_services_of_issue_6_are_there() -> None:
    assert set(SERVICES) - CLUSTER == {
        "mosquitto",
        "influxdb",
        "meshwatch",
        "prometheus",
        "grafana",
        "simulator",
    }
    assert SERVICES["mosquitto"]["image"].startswith("eclipse-mosquitto:2")
    assert SERVICES["influxdb"]["image"].startswith("influxdb:2.")
    assert SERVICES["grafana"]["image"].startswith("grafana/grafana")
    assert SERVICES["meshwatch"]["build"]["dockerfile"] == "Dockerfile"
    assert SERVICES["simulator"]["profiles"] == ["demo"]
    assert SERVICES["simulator"]["command"][:4] == ["simulate", "small", "--speed", "1"]
    assert all("profiles" not in s for n, s in SERVICES.items() if n not in CLUSTER | {"simulator"})


def test_the_cluster_profile_is_three_rabbitmq_nodes_postgresql_and_two_instances() -> None:
    """Profile cluster (issue 14): RabbitMQ 3.10 with MQTT and consistent hashing, clustered."""
    assert {n for n, s in SERVICES.items() if s.get("profiles") == ["cluster"]} == CLUSTER
    conf = (ROOT / "deploy/rabbitmq/20-meshwatch.conf").read_text(encoding="utf-8")
    plugins = (ROOT / "deploy/rabbitmq/enabled_plugins").read_text(encoding="utf-8")
    assert plugins.strip() == "[rabbitmq_mqtt,rabbitmq_consistent_hash_exchange]."
    for i in (1, 2, 3):
        node = SERVICES[f"rabbit{i}"]
        assert node["image"] == "rabbitmq:3.10"
        assert node["hostname"] == f"rabbit{i}"
        assert f"cluster_formation.classic_config.nodes.{i} = rabbit@rabbit{i}" in conf
        assert (
            "./deploy/rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro"
            in (node["volumes"])
        )
        assert node["environment"]["RABBITMQ_ERLANG_COOKIE"].startswith("${RABBITMQ_ERLANG")
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    for name in INSTANCES:
        instance = SERVICES[name]
        assert instance["build"]["args"] == {"CLUSTER": "true"}
        assert set(instance["depends_on"]) == {"rabbit1", "rabbit2", "rabbit3"} | {
            "postgres",
            "influxdb",
        }


def test_the_cluster_image_installs_the_cluster_requirements() -> None:
    """The instances' image is built with CLUSTER=true, which the Dockerfile acts on."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG CLUSTER=false" in dockerfile
    install = "pip install --no-deps -r deploy/requirements-cluster.txt"
    assert f'if [ "$CLUSTER" = "true" ]; then {install}' in dockerfile


def test_pipeline_waits_for_healthy_broker_and_influxdb_and_has_a_healthz_check() -> None:
    pipeline = SERVICES["meshwatch"]
    assert pipeline["depends_on"] == {
        "mosquitto": {"condition": "service_healthy"},
        "influxdb": {"condition": "service_healthy"},
    }
    assert pipeline["restart"] == "unless-stopped"
    assert "/healthz" in " ".join(pipeline["healthcheck"]["test"])
    assert ":9464/" in " ".join(pipeline["healthcheck"]["test"])
    assert "meshwatch-data:/data" in pipeline["volumes"]
    for name in ("mosquitto", "influxdb"):
        assert SERVICES[name]["healthcheck"]["test"], name


def test_every_referenced_service_volume_and_path_exists() -> None:
    named = set(COMPOSE.get("volumes") or {})
    used = set()
    for name, service in SERVICES.items():
        assert set(service.get("depends_on", {})) <= set(SERVICES) - {name}, name
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), source
            else:
                assert source in named, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == named, "declared volumes nobody mounts"
    assert (ROOT / SERVICES["meshwatch"]["build"]["context"] / "Dockerfile").is_file()


def test_every_variable_is_defined_in_env_example_and_no_secret_is_inline() -> None:
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    env = _env_example()
    used = {m.group(1) for m in VARIABLE.finditer(text)}
    assert used, "compose.yaml uses no variables"
    assert used <= set(env), used - set(env)
    for service in SERVICES.values():
        for key, value in service.get("environment", {}).items():
            if re.search(r"PASSWORD|TOKEN|SECRET", key):
                assert VARIABLE.fullmatch(str(value)), f"{key} is not taken from .env"


def test_influxdb_is_initialised_from_env() -> None:
    env = SERVICES["influxdb"]["environment"]
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    for key in ("ORG", "BUCKET", "RETENTION", "ADMIN_TOKEN", "USERNAME", "PASSWORD"):
        assert VARIABLE.fullmatch(env[f"DOCKER_INFLUXDB_INIT_{key}"]), key


@pytest.mark.parametrize("service", ["meshwatch", "simulator", *INSTANCES])
def test_meshwatch_variables_are_real_settings_that_parse(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each MESHWATCH_* the service sets parses as a setting (unknown ones are errors)."""
    env = _env_example()
    settings = {
        key: _interpolate(str(value), env)
        for key, value in SERVICES[service]["environment"].items()
        if key.startswith("MESHWATCH_")
    }
    assert settings
    for key in [k for k in os.environ if k.startswith("MESHWATCH_")]:
        monkeypatch.delenv(key)
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    loaded = load_settings()
    for key, value in settings.items():
        node: object = loaded
        path = key.removeprefix("MESHWATCH_").lower().split("__")
        for part in path:
            assert hasattr(node, part), f"{key} is not a meshwatch setting"
            node = getattr(node, part)
        shown = node.get_secret_value() if hasattr(node, "get_secret_value") else node
        if isinstance(shown, tuple | list):  # a list setting, given as JSON
            assert list(shown) == json.loads(value), key
        else:
            assert str(shown) == value, key
    if service in INSTANCES:
        # An instance of the cluster: every node, its own name, shared state in PostgreSQL.
        assert len(loaded.amqp.urls) == 3
        assert [u.split("@")[1].split(":")[0] for u in loaded.amqp.urls] == [
            "rabbit1",
            "rabbit2",
            "rabbit3",
        ]
        assert loaded.mqtt.client_id == service
        assert (loaded.mqtt.host, loaded.mqtt.protocol) == ("rabbit1", "3.1.1")
        assert loaded.models.checkpoints_url == loaded.alerts.state_url
        assert str(loaded.models.checkpoints_url).endswith("@postgres/meshwatch")
        assert loaded.influx.url == "http://influxdb:8086"
        return
    assert loaded.mqtt.host == "mosquitto"
    if service == "meshwatch":
        assert loaded.influx.url == "http://influxdb:8086"
        assert str(loaded.data_dir) == "/data"
        assert loaded.mqtt.username == "meshwatch"
    else:
        assert loaded.mqtt.username == "simulator"
