"""Reading a backlog of PUBLISH packets in bulk, beside paho, on a plain TCP connection.

paho reads each packet with three or more ``recv`` calls (one byte for the type, one per
byte of the remaining length, then the rest) and, on MQTT 5, builds a ``Properties`` object
for every PUBLISH: about 25 µs of CPU a message, most of what a reader of single-reading
messages spends (py-spy, issue 14). `BulkReader.read` instead looks at what the kernel
holds (``MSG_PEEK``), parses the whole QoS 0 and 1 PUBLISH packets at its front, and only
then takes exactly those bytes off the socket. Everything else (PUBACKs of our own
publishes, PINGRESP, a DISCONNECT, a QoS 2 PUBLISH, a packet not yet whole) stays in the
socket for paho, which reads it as before: paho's state is never touched, so it must be
between packets when `read` runs, and `read` reads nothing when it is not.

TLS connections are left to paho: an SSL socket cannot peek at plaintext.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

#: The most bytes looked at in one go: a few hundred single-reading messages, or a few
#: dozen batches; a PUBLISH larger than this is read by paho.
PEEK_BYTES = 1 << 18
_PUBLISH = 3


@dataclass(slots=True)
class Publish:
    """One PUBLISH as received: what the subscriber needs of it, and what its ack needs."""

    topic: str
    payload: bytes
    mid: int
    qos: int


@dataclass(slots=True)
class BulkReader:
    """Takes whole QoS 0/1 PUBLISH packets off a paho client's socket, many per call.

    Parameters
    ----------
    v5
        The connection speaks MQTT 5 (a PUBLISH then carries properties, skipped here:
        the subscriber asks for no topic aliases, so every PUBLISH names its topic).
    peek_bytes
        The most bytes looked at per call.
    """

    v5: bool
    peek_bytes: int = PEEK_BYTES
    _scratch: bytearray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._scratch = bytearray(self.peek_bytes)

    def read(self, client: mqtt.Client, limit: int) -> list[Publish]:
        """Up to `limit` PUBLISH packets from the front of the socket (none: paho's turn).

        Returns nothing when the socket holds no whole PUBLISH at its front, when paho is
        in the middle of a packet, on a TLS connection, or when the socket has failed (paho
        finds the failure at its next read).
        """
        sock = client.socket()
        # Only a plain TCP socket (not an SSLSocket, a websocket wrapper, or none), and only
        # between packets in paho's own reading state: a packet begun is paho's to finish.
        if type(sock) is not socket.socket or client._in_packet["command"] != 0:
            return []
        try:
            data = sock.recv(self.peek_bytes, socket.MSG_PEEK)
        except OSError:  # BlockingIOError (nothing there) included
            return []
        found, used = parse_publishes(data, self.v5, limit)
        if used:
            self._consume(sock, used)
        return found

    def _consume(self, sock: socket.socket, count: int) -> None:
        """Take `count` bytes already seen off the socket."""
        view = memoryview(self._scratch)
        while count:
            count -= sock.recv_into(view, count)


def parse_publishes(data: bytes, v5: bool, limit: int) -> tuple[list[Publish], int]:
    """The whole QoS 0/1 PUBLISH packets at the front of `data`, and the bytes they span.

    Stops at the first packet that is no such PUBLISH, or not whole, or at `limit`.

    Examples
    --------
    >>> packet = bytes([0x32, 10, 0, 3]) + b"a/b" + bytes([0, 7]) + b"hi!"
    >>> parse_publishes(packet + packet[:5], False, 10)
    ([Publish(topic='a/b', payload=b'hi!', mid=7, qos=1)], 12)
    >>> parse_publishes(bytes([0x40, 2, 0, 1]) + packet, False, 10)  # a PUBACK first
    ([], 0)
    """
    found: list[Publish] = []
    end = len(data)
    pos = 0
    while pos < end and len(found) < limit:
        first = data[pos]
        qos = (first >> 1) & 3
        if first >> 4 != _PUBLISH or qos > 1:
            break
        try:
            length, at = _varint(data, pos + 1, end)  # the remaining length
        except IndexError:  # not all here yet
            return found, pos
        stop = at + length
        if stop > end:
            break
        try:
            raw_topic, mid, at = _variable_header(data, at, stop, qos, v5)
        except IndexError:  # malformed: paho reads it and drops the connection
            break
        if not raw_topic or at > stop:  # no topic (an alias, never asked for), or malformed
            break
        try:
            topic = raw_topic.decode()
        except UnicodeDecodeError:  # brokers should refuse such topics; keep what we can read
            topic = raw_topic.decode("utf-8", "replace")
        found.append(Publish(topic, data[at:stop], mid, qos))
        pos = stop
    return found, pos


def _variable_header(data: bytes, at: int, stop: int, qos: int, v5: bool) -> tuple[bytes, int, int]:
    """A PUBLISH's topic, packet id and where its payload starts (`IndexError`: malformed)."""
    topic_end = at + 2 + (data[at] << 8 | data[at + 1])
    if topic_end > stop:
        raise IndexError("topic beyond the packet")
    topic = data[at + 2 : topic_end]
    at = topic_end
    mid = 0
    if qos:
        mid = data[at] << 8 | data[at + 1]
        at += 2
    if v5:  # skip the properties: their length, then them
        size, at = _varint(data, at, stop)
        at += size
    return topic, mid, at


def _varint(data: bytes, at: int, end: int) -> tuple[int, int]:
    """MQTT's variable byte integer at `at` and where it ends (`IndexError`: not whole).

    1 to 4 bytes, 7 bits each, least significant first; one not ended by `end`, or longer
    than 4 bytes, is not whole.
    """
    value = shift = 0
    while at < end and shift <= 21:
        byte = data[at]
        at += 1
        value |= (byte & 127) << shift
        shift += 7
        if byte < 128:
            return value, at
    raise IndexError("variable byte integer not whole")
