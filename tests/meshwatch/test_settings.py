"""Settings: env variables, YAML and defaults, and one clear line for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshwatch.clientsettings import ClientSettings, load
from meshwatch.errors import ConfigError
from meshwatch.settings import Settings, load_settings

ENV_CASES = [
    ("MESHWATCH_DATA_DIR", "/srv/meshwatch", lambda s: s.data_dir, Path("/srv/meshwatch")),
    ("MESHWATCH_MQTT__HOST", "broker.plant", lambda s: s.mqtt.host, "broker.plant"),
    ("MESHWATCH_MQTT__PORT", "8883", lambda s: s.mqtt.port, 8883),
    ("MESHWATCH_MQTT__USERNAME", "ingest", lambda s: s.mqtt.username, "ingest"),
    ("MESHWATCH_MQTT__TLS", "true", lambda s: s.mqtt.tls, True),
    ("MESHWATCH_MQTT__CLIENT_ID", "hub-1", lambda s: s.mqtt.client_id, "hub-1"),
    ("MESHWATCH_MQTT__TOPIC", "f/{asset}/{site}", lambda s: s.mqtt.topic, "f/{asset}/{site}"),
    ("MESHWATCH_MQTT__PROTOCOL", "3.1.1", lambda s: s.mqtt.protocol, "3.1.1"),
    ("MESHWATCH_MQTT__SESSION_EXPIRY", "0", lambda s: s.mqtt.session_expiry, 0),
    ("MESHWATCH_MQTT__RECEIVE_MAXIMUM", "20", lambda s: s.mqtt.receive_maximum, 20),
    ("MESHWATCH_MQTT__SHARE_GROUP", "ingest", lambda s: s.mqtt.share_group, "ingest"),
    ("MESHWATCH_INFLUX__URL", "http://tsdb:8086", lambda s: s.influx.url, "http://tsdb:8086"),
    ("MESHWATCH_INFLUX__ORG", "acme", lambda s: s.influx.org, "acme"),
    ("MESHWATCH_INFLUX__BUCKET", "plant", lambda s: s.influx.bucket, "plant"),
    ("MESHWATCH_SPOOL__MAX_BYTES", "1048576", lambda s: s.spool.max_bytes, 1 << 20),
    ("MESHWATCH_INGEST__MAX_PAYLOAD", "1024", lambda s: s.ingest.max_payload, 1024),
    ("MESHWATCH_INGEST__BATCH_MAX", "50", lambda s: s.ingest.batch_max, 50),
    ("MESHWATCH_HTTP__PORT", "0", lambda s: s.http.port, 0),
    ("MESHWATCH_LOG__LEVEL", "DEBUG", lambda s: s.log.level, "DEBUG"),
]


@pytest.mark.parametrize(
    ("env", "value", "read", "expected"), ENV_CASES, ids=[c[0] for c in ENV_CASES]
)
def test_env_variable_sets_its_setting(monkeypatch, env, value, read, expected) -> None:
    """Each MESHWATCH_* variable changes exactly the setting it names."""
    monkeypatch.setenv(env, value)
    assert read(load_settings()) == expected


def test_secrets_are_read_but_never_shown(monkeypatch) -> None:
    """Password and token come from the environment and are masked when printed."""
    monkeypatch.setenv("MESHWATCH_MQTT__USERNAME", "u")
    monkeypatch.setenv("MESHWATCH_MQTT__PASSWORD", "hunter2")
    monkeypatch.setenv("MESHWATCH_INFLUX__TOKEN", "tok")
    settings = load_settings()
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "hunter2"
    assert settings.influx.token is not None
    assert settings.influx.token.get_secret_value() == "tok"
    assert "hunter2" not in repr(settings) and "tok'" not in repr(settings)


BAD_CASES = [
    ("MESHWATCH_MQTT__PORT", "abc", "mqtt.port (MESHWATCH_MQTT__PORT)", "valid integer"),
    ("MESHWATCH_MQTT__PORT", "70000", "mqtt.port (MESHWATCH_MQTT__PORT)", "65535"),
    ("MESHWATCH_MQTT__PROTOCOL", "4", "mqtt.protocol", "'5' or '3.1.1'"),
    ("MESHWATCH_MQTT__TOPIC", "plant/{site}/telemetry", "mqtt.topic", "{asset}"),
    ("MESHWATCH_MQTT__TOPIC", "plant/+/{site}/{asset}", "mqtt.topic", "wildcards"),
    ("MESHWATCH_MQTT__TLS", "maybe", "mqtt.tls", "valid boolean"),
    (
        "MESHWATCH_MQTT__CA_FILE",
        "/nonexistent/ca.pem",
        "mqtt.ca_file (MESHWATCH_MQTT__CA_FILE)",
        "does not exist",
    ),
    ("MESHWATCH_MQTT__CLIENT_ID", "a+b", "mqtt.client_id", "should match pattern"),
    ("MESHWATCH_MQTT__PREFIX", "mw/#", "mqtt.prefix", "should match pattern"),
    ("MESHWATCH_MQTT__TOPIC", "{site}/{asset}", "invalid mqtt settings", "own topics"),
    ("MESHWATCH_MQTT__SESSION_EXPIRY", "-1", "mqtt.session_expiry", "greater than or equal"),
    ("MESHWATCH_MQTT__HOTS", "x", "mqtt.hots (MESHWATCH_MQTT__HOTS)", "unknown setting"),
    ("MESHWATCH_INFLUX__URL", "tsdb:8086", "influx.url", "should match pattern"),
    ("MESHWATCH_SPOOL__MAX_BYTES", "10", "spool.max_bytes", "greater than or equal"),
    ("MESHWATCH_HTTP__PORT", "-1", "http.port", "greater than or equal"),
    ("MESHWATCH_LOG__LEVEL", "LOUD", "log.level", "DEBUG"),
]


@pytest.mark.parametrize(
    ("env", "value", "names", "says"), BAD_CASES, ids=[f"{c[0]}={c[1]}" for c in BAD_CASES]
)
def test_bad_value_fails_with_one_line_naming_the_setting(monkeypatch, env, value, names, says):
    """A bad value raises ConfigError: one line naming the setting, its variable and the fix."""
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert names in message
    assert says in message


def test_password_without_username_is_refused(monkeypatch) -> None:
    """A password alone cannot authenticate: start-up says username is missing."""
    monkeypatch.setenv("MESHWATCH_MQTT__PASSWORD", "x")
    with pytest.raises(ConfigError, match=r"mqtt\.password requires mqtt\.username"):
        load_settings()


def test_yaml_file_sets_values_and_env_overrides_it(tmp_path, monkeypatch) -> None:
    """Values come from the YAML file, and an env variable beats the file."""
    config = tmp_path / "meshwatch.yaml"
    config.write_text("mqtt:\n  host: from-yaml\n  port: 1999\ningest:\n  batch_max: 7\n")
    monkeypatch.setenv("MESHWATCH_MQTT__HOST", "from-env")
    settings = load_settings(config)
    assert (settings.mqtt.host, settings.mqtt.port, settings.ingest.batch_max) == (
        "from-env",
        1999,
        7,
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("mqtt: [1, 2", "not valid YAML at line"),
        ("- a\n- b\n", "must be a mapping"),
        ("mqtt:\n  port: high\n", "mqtt.port"),
        ("mqt:\n  port: 1\n", "mqt (MESHWATCH_MQT): unknown setting"),
    ],
    ids=["broken-yaml", "not-a-mapping", "bad-value", "unknown-section"],
)
def test_bad_yaml_file_fails_with_one_line(tmp_path, text, says) -> None:
    """A broken or wrong config file stops start-up with one line saying where."""
    config = tmp_path / "meshwatch.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_yaml_file_is_named(tmp_path) -> None:
    """--config with a missing file names the file."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_sample_config_loads_to_the_defaults(tmp_path) -> None:
    """Uncommenting every default in sample.yaml gives exactly the built-in defaults."""
    sample = (Path(__file__).parents[2] / "meshwatch" / "sample.yaml").read_text()
    uncommented = "\n".join(
        line.replace("# ", "", 1) if line.lstrip().startswith("# ") else line
        for line in sample.splitlines()
    )
    config = tmp_path / "sample.yaml"
    config.write_text(uncommented)
    assert isinstance(yaml.safe_load(uncommented), dict)
    assert load_settings(config) == Settings()


def test_tls_files_without_tls_are_refused(monkeypatch, tmp_path) -> None:
    """A CA file with tls off would be silently unused: start-up says to turn tls on."""
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    monkeypatch.setenv("MESHWATCH_MQTT__CA_FILE", str(ca))
    with pytest.raises(ConfigError, match=r"mqtt\.ca_file is set but mqtt\.tls is false"):
        load_settings()


def test_client_settings_read_the_same_file_and_environment(tmp_path, monkeypatch) -> None:
    """Commands that talk to a pipeline see the broker and data dir the pipeline is given."""
    path = tmp_path / "meshwatch.yaml"
    path.write_text(yaml.safe_dump({"data_dir": "/srv/mw", "mqtt": {"host": "broker.plant"}}))
    monkeypatch.setenv("MESHWATCH_MQTT__PORT", "8883")
    client = load(ClientSettings, path)
    full = load_settings(path)
    assert (client.data_dir, client.mqtt, client.log) == (full.data_dir, full.mqtt, full.log)


def test_client_settings_leave_unused_sections_to_the_pipeline(tmp_path) -> None:
    """A section a remote command does not use is not checked by it (the pipeline checks it)."""
    path = tmp_path / "meshwatch.yaml"
    path.write_text(yaml.safe_dump({"models": {"warmup": -1}, "mqtt": {"port": 1884}}))
    assert load(ClientSettings, path).mqtt.port == 1884
    with pytest.raises(ConfigError, match=r"models\.warmup"):
        load_settings(path)


def test_client_settings_refuse_a_bad_broker_setting_in_one_line(monkeypatch) -> None:
    """The broker settings a remote command uses are checked with the usual one line."""
    monkeypatch.setenv("MESHWATCH_MQTT__PORT", "0")
    with pytest.raises(ConfigError, match=r"^invalid setting mqtt.port \(MESHWATCH_MQTT__PORT\)"):
        load(ClientSettings)


def test_a_bad_setting_in_the_config_file_names_the_file_and_line(tmp_path) -> None:
    """A value the file gave is refused with the file and its line before the setting."""
    path = tmp_path / "meshwatch.yaml"
    path.write_text("mqtt:\n  host: broker\n  port: 0\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}: line 3: invalid setting mqtt.port ")


def test_a_problem_across_alert_keys_names_the_key_and_its_line(tmp_path) -> None:
    """A route naming a time interval nobody defined: that key's line, not the section's."""
    path = tmp_path / "meshwatch.yaml"
    path.write_text(
        "alerts:\n"
        "  route:\n"
        "    routes:\n"
        "      - matchers: [kind=compressor]\n"
        "        mute_time_intervals: [weekly-service]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value) == (
        f"{path}: line 5: invalid setting alerts.route.routes.0.mute_time_intervals "
        "(MESHWATCH_ALERTS__ROUTE__ROUTES__0__MUTE_TIME_INTERVALS): time interval "
        "'weekly-service' is not defined (time_intervals: none)"
    )


def test_a_bad_setting_from_the_environment_names_no_file_line(tmp_path, monkeypatch) -> None:
    """The file does not hold the value the environment gave: no file and line are claimed."""
    path = tmp_path / "meshwatch.yaml"
    path.write_text("mqtt:\n  host: broker\n")
    monkeypatch.setenv("MESHWATCH_MQTT__PORT", "0")
    with pytest.raises(ConfigError, match=r"^invalid setting mqtt.port \(MESHWATCH_MQTT__PORT\)"):
        load_settings(path)
