"""Settings of the ingest path: the MQTT subscriber, the stores and the batching.

Each model is one section of the configuration (``mqtt:``, ``influx:``, ``spool:``,
``ingest:`` in YAML; ``MESHWATCH_MQTT__HOST`` and so on in the environment).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ingest.errors import TopicTemplateError
from ingest.partition import Partition
from ingest.topic import TopicTemplate

if TYPE_CHECKING:
    # Imported by broker(): a command that never connects (``config show``) needs no paho.
    from common.mqtt import Broker


def existing_file(path: Path | None) -> Path | None:
    """Validate a settings path that must name a file (a CA, a certificate, a key)."""
    if path is not None and not path.is_file():
        raise ValueError(f"file {str(path)!r} does not exist")
    return path


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(_Section):
    """Where telemetry comes from, and how the pipeline's session behaves."""

    host: str = "localhost"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    # Part of the status topic: no wildcards, no "/".
    client_id: str = Field("meshwatch-ingest", pattern=r"^[^/+#\x00-\x1f]{1,128}$")
    topic: str = "plant/{site}/{asset}/telemetry"
    protocol: Literal["5", "3.1.1"] = "5"
    # One day: the broker queues a day of readings while the pipeline is down.
    session_expiry: int = Field(86_400, ge=0, le=4_294_967_295)
    keepalive: int = Field(30, ge=5, le=65_535)
    # MQTT 5 Receive Maximum; mosquitto also caps at its max_inflight_messages (default 20).
    receive_maximum: int = Field(1000, ge=1, le=65_535)
    share_group: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    prefix: str = Field("meshwatch", pattern=r"^[^/+#\x00-\x1f]+(/[^/+#\x00-\x1f]+)*$")
    reconnect_min: float = Field(0.5, gt=0)
    reconnect_max: float = Field(30.0, gt=0)

    @field_validator("topic")
    @classmethod
    def _topic_is_a_template(cls, value: str) -> str:
        try:
            TopicTemplate.parse(value)
        except TopicTemplateError as exc:
            raise ValueError(str(exc)) from None
        return value

    _files_exist = field_validator("ca_file", "cert_file", "key_file")(existing_file)

    @model_validator(mode="after")
    def _consistent(self) -> MqttSettings:
        files = [name for name in ("ca_file", "cert_file", "key_file") if getattr(self, name)]
        if files and not self.tls:
            raise ValueError(f"mqtt.{files[0]} is set but mqtt.tls is false: set tls to true")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("mqtt.cert_file and mqtt.key_file go together: set both or neither")
        if self.password is not None and self.username is None:
            raise ValueError("mqtt.password requires mqtt.username")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("mqtt.reconnect_max must be at least mqtt.reconnect_min")
        template = TopicTemplate.parse(self.topic)
        for own in ("deadletter", f"status/{self.client_id}", "alerts/s/a", "health/s/a"):
            if template.covers(f"{self.prefix}/{own}"):
                raise ValueError(
                    f"mqtt.topic {self.topic!r} also matches meshwatch's own topics "
                    f"({self.prefix}/{own}): start the template with a fixed level "
                    "(plant/{site}/{asset}/telemetry) or change mqtt.prefix"
                )
        return self

    def broker(self) -> Broker:
        """The broker these settings connect to: address, credentials and TLS files."""
        from common.mqtt import Broker, Tls

        password = self.password.get_secret_value() if self.password else None
        tls = Tls(self.ca_file, self.cert_file, self.key_file) if self.tls else None
        return Broker(self.host, self.port, self.username, password, tls)


class InfluxSettings(_Section):
    """The InfluxDB v2 write API target; with no URL the embedded store is used."""

    url: str | None = Field(None, pattern=r"^https?://\S+$")
    token: SecretStr | None = None
    org: str = ""
    bucket: str = Field("meshwatch", min_length=1)
    # Lines per HTTP write; influxdb-client writes 5,000 points at ~67k points/s here.
    batch_size: int = Field(5000, ge=1, le=1_000_000)
    timeout: float = Field(10.0, gt=0)


class SpoolSettings(_Section):
    """The on-disk spool between the pipeline and InfluxDB."""

    # 1 GiB of line protocol is roughly 10 million readings: hours of a large fleet's outage.
    max_bytes: int = Field(1 << 30, ge=1 << 16)


class IngestSettings(_Section):
    """Decoding limits, batching and dead letters."""

    max_payload: int = Field(65_536, ge=64, le=268_435_455)
    max_future: float = Field(300.0, ge=0)
    batch_max: int = Field(1000, ge=1, le=65_535)
    linger: float = Field(0.05, ge=0, le=10)
    publish_deadletters: bool = False
    deadletters_max: int = Field(100_000, ge=1)
    #: ``k/N``: this process is worker k of N (`ingest.partition`), its state in
    #: ``<data_dir>/workers/<k>``. Set by ``meshwatch run --workers`` for its workers.
    partition: str | None = None

    @field_validator("partition")
    @classmethod
    def _partition_parses(cls, value: str | None) -> str | None:
        if value is not None:
            Partition.parse(value)
        return value

    def owned(self) -> Partition | None:
        """Which worker this process is, or None for a single process."""
        return None if self.partition is None else Partition.parse(self.partition)


_AMQP_URL = re.compile(r"^amqps?://\S+$")


class AmqpSettings(_Section):
    """A clustered RabbitMQ as the source of telemetry, in partitions (docs/scaling.md).

    With no ``urls`` (the default) the pipeline reads MQTT itself (`MqttSettings`). With them,
    sensors still publish MQTT to RabbitMQ's MQTT plugin; a consistent-hash exchange bound
    to ``amq.topic`` spreads the telemetry over ``partitions`` quorum queues, and the
    instances sharing the cluster split the queues among themselves (`ingest.assignment`).
    """

    #: Every node's AMQP URL: the source connects to the first that answers, in order.
    urls: tuple[str, ...] = ()
    # 16 partitions keep 2-8 instances within a partition of an even share; fixed for the
    # life of the queues (changing it would leave bound queues that nobody reads).
    partitions: int = Field(16, ge=1, le=1024)
    exchange: str = Field("meshwatch.partitions", pattern=r"^[A-Za-z0-9_.:-]{1,200}$")
    queue_prefix: str = Field("meshwatch.partition.", pattern=r"^[A-Za-z0-9_.:-]{1,200}$")
    members_exchange: str = Field("meshwatch.members", pattern=r"^[A-Za-z0-9_.:-]{1,200}$")
    # Unacked deliveries per partition (quorum queues have no per-channel limit): 250 keeps an
    # instance holding 4-16 partitions at 1,000-4,000 in flight, the MQTT source's ~1,000.
    prefetch: int = Field(250, ge=1, le=65_535)
    #: Seconds between this instance's heartbeats to the others.
    heartbeat: float = Field(1.0, gt=0, le=60)
    #: Seconds without a heartbeat before an instance counts as gone and its partitions move.
    member_timeout: float = Field(5.0, gt=0, le=3600)

    @field_validator("urls")
    @classmethod
    def _urls_are_amqp(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not _AMQP_URL.match(url):
                raise ValueError(f"{url!r} is not an amqp:// or amqps:// URL")
        return value

    @model_validator(mode="after")
    def _timeout_spans_heartbeats(self) -> AmqpSettings:
        if self.member_timeout < 2 * self.heartbeat:
            raise ValueError(
                f"amqp.member_timeout ({self.member_timeout:g}) must be at least twice "
                f"amqp.heartbeat ({self.heartbeat:g}), or one late heartbeat moves partitions"
            )
        return self

    def queue(self, partition: int) -> str:
        """The name of partition `partition`'s queue."""
        return f"{self.queue_prefix}{partition}"
