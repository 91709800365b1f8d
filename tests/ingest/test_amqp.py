"""The clustered source's pure parts (`ingest.amqptopology`) and its settings (`amqp:`)."""

from __future__ import annotations

import pytest

from ingest.amqptopology import binding_key, topic_of
from ingest.topic import TopicTemplate
from meshwatch.app import check
from meshwatch.errors import ConfigError
from meshwatch.settings import load_settings

URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@pytest.mark.parametrize(
    ("template", "key"),
    [
        ("plant/{site}/{asset}/telemetry", "plant.#"),
        ("plant-eu/line/{site}/{asset}", "plant-eu.line.#"),
        ("{site}/{asset}/telemetry", "*.*.telemetry"),
    ],
    ids=["literal-first", "two-literals", "placeholder-first"],
)
def test_the_binding_follows_the_topic_template(template: str, key: str) -> None:
    """The partitions are bound to amq.topic by the template's literal prefix."""
    assert binding_key(TopicTemplate.parse(template)) == key


def test_a_routing_key_gives_back_the_topic() -> None:
    """RabbitMQ's MQTT plugin turns "/" into "."; the source turns it back."""
    assert topic_of("plant.s1.cnc-1.telemetry") == "plant/s1/cnc-1/telemetry"


def test_urls_are_read_from_a_json_list_in_the_environment(monkeypatch) -> None:
    """MESHWATCH_AMQP__URLS holds every node, in the order they are tried."""
    monkeypatch.setenv("MESHWATCH_AMQP__URLS", f'["{URL}", "amqp://127.0.0.1:5673/"]')
    assert load_settings().amqp.urls == (URL, "amqp://127.0.0.1:5673/")


@pytest.mark.parametrize(
    ("amqp", "says"),
    [
        ({"urls": ["http://127.0.0.1:5672"]}, "'http://127.0.0.1:5672' is not an amqp://"),
        ({"urls": [URL], "partitions": 0}, "amqp.partitions"),
        ({"urls": [URL], "heartbeat": 2, "member_timeout": 3}, "at least twice amqp.heartbeat"),
        ({"urls": [URL], "exchange": "no spaces"}, "amqp.exchange"),
    ],
    ids=["not-amqp", "no-partitions", "timeout-too-short", "bad-exchange"],
)
def test_a_bad_amqp_setting_is_one_line_naming_it(amqp: dict[str, object], says: str) -> None:
    """Each mistake stops start-up with one line naming the setting."""
    with pytest.raises(ConfigError) as caught:
        load_settings(amqp=amqp)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_dotted_topic_level_is_refused_with_rabbitmq() -> None:
    """A '.' in a literal level could not be told from a separator once routed."""
    settings = load_settings(amqp={"urls": [URL]}, mqtt={"topic": "plant.eu/{site}/{asset}/t"})
    with pytest.raises(ConfigError, match=r"mqtt\.topic .*'plant\.eu' holds a '\.'"):
        check(settings)


def test_republishing_dead_letters_needs_the_mqtt_source() -> None:
    """The RabbitMQ source keeps dead letters in the data dir; asking for more is refused."""
    settings = load_settings(amqp={"urls": [URL]}, ingest={"publish_deadletters": True})
    with pytest.raises(ConfigError, match=r"ingest\.publish_deadletters"):
        check(settings)


def test_a_cluster_instance_keeps_its_state_under_its_name(tmp_path) -> None:
    """Instances may share a data dir: each keeps models and alerts in instances/<client_id>."""
    settings = load_settings(
        data_dir=tmp_path, amqp={"urls": [URL]}, mqtt={"client_id": "meshwatch-7"}
    )
    assert settings.state_dir() == tmp_path / "instances" / "meshwatch-7"


def test_checkpoints_url_must_be_postgresql() -> None:
    """models.checkpoints_url takes a postgresql:// URL only."""
    with pytest.raises(ConfigError, match=r"models\.checkpoints_url"):
        load_settings(models={"checkpoints_url": "mysql://db/meshwatch"})
