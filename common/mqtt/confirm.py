"""Publish-confirmed: a QoS 1 publish that waits for the broker's PUBACK, and its refusals.

paho marks a publish done at its PUBACK whatever the reason code, so `Pubacks` keeps the
refusals that ``on_publish`` reports, by message id, for the publisher to look up. It is at
least once: a message whose PUBACK did not come in time stays in paho's queue and may still
arrive after a reconnect.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

# PUBACK reason codes after which the same publish may succeed later (MQTT 5 §3.4.2.1):
# unspecified error, implementation specific error, packet identifier in use, quota exceeded.
# The others (not authorized, topic name invalid, payload format invalid) never will.
_RETRYABLE_PUBACK = frozenset({0x80, 0x83, 0x91, 0x97})


class PublishError(Exception):
    """A confirmed publish that failed; ``retryable`` when the same publish may succeed later.

    Examples
    --------
    >>> PublishError("no PUBACK", retryable=True).retryable
    True
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Pubacks:
    """Refused PUBACKs by message id, as ``on_publish`` reports them (from paho's thread).

    Plain dict operations only: `record` runs under paho's message lock.
    """

    def __init__(self) -> None:
        self._refused: dict[int, ReasonCode] = {}

    def record(self, mid: int, reason_code: ReasonCode) -> None:
        """Note the PUBACK of `mid`; a success clears a stale refusal of an earlier use."""
        if reason_code.is_failure:
            self._refused[mid] = reason_code
        else:
            self._refused.pop(mid, None)

    def refusal(self, mid: int) -> ReasonCode | None:
        """The reason code the broker refused `mid` with, forgotten once read."""
        return self._refused.pop(mid, None)


def publish_confirmed(
    client: mqtt.Client,
    pubacks: Pubacks,
    topic: str,
    payload: bytes,
    *,
    timeout: float,
    broker: str,
) -> None:
    """Publish at QoS 1 and wait up to `timeout` seconds for the PUBACK (paho's thread reads it).

    Raises
    ------
    PublishError
        Retryable when paho could not send it or no PUBACK came in time (the message may still
        be delivered later); not retryable when the topic or payload cannot be published, or
        the broker refused it for good (not authorized). `broker` (``host:port``) names it.
    """
    try:
        info = client.publish(topic, payload, qos=1)
    except (ValueError, TypeError) as exc:  # a wildcard in the topic, a payload too large
        raise PublishError(f"cannot publish to {topic}: {exc}", retryable=False) from None
    if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
        # NO_CONN: the connection dropped just now; paho keeps the message and sends it
        # after the reconnect, so the retry this asks for may deliver it twice.
        raise PublishError(
            f"publish to {topic} failed: {mqtt.error_string(info.rc)}", retryable=True
        )
    try:
        info.wait_for_publish(timeout)
        published = info.is_published()
    except (RuntimeError, ValueError) as exc:  # paho's way of saying the publish failed
        raise PublishError(f"publish to {topic} failed: {exc}", retryable=True) from None
    if not published:
        raise PublishError(
            f"no PUBACK from the MQTT broker {broker} for {topic} within {timeout:g} s",
            retryable=True,
        )
    refused = pubacks.refusal(info.mid)
    if refused is not None:
        raise PublishError(
            f"the MQTT broker refused the publish to {topic}: {refused} (check the ACL)",
            retryable=refused.value in _RETRYABLE_PUBACK,
        )
