"""`RabbitCluster`: a RabbitMQ cluster of local nodes, with MQTT, for tests and benchmarks.

Every node is a ``rabbitmq-server`` child process of its own (node name, AMQP, MQTT and
distribution ports, data and log directories under the working directory), with the
``rabbitmq_mqtt`` and ``rabbitmq_consistent_hash_exchange`` plugins enabled by a plugins file
of its own: the system's RabbitMQ service, its configuration and its plugins are never
touched. The nodes find each other by the classic peer list (``cluster_formation``) and share
an Erlang cookie written in the working directory. Start-up takes 25-35 s on 2 cores.

RabbitMQ 3.10's MQTT plugin tracks client IDs in a Raft cluster of its own (``mqtt_node``),
which it forms as it starts on each node. Started on several nodes at once, it races: two
nodes may ask the new leader to join at once, and the second request is refused
(``cluster_change_not_permitted``) and never retried, so that node accepts TCP on its MQTT
port but refuses every session ("client ID registration timed out"); or two nodes each wait
for the other to have a member list, for 100 s. So the nodes boot together with the
consistent-hash plugin only, and `start` then enables MQTT on one node after the other once
the cluster formed, each waited for until it accepts an MQTT session (a node left out of the
tracking cluster all the same is added to it once: `_rejoin_client_id_tracking`).

The script started is ``/usr/lib/rabbitmq/bin/rabbitmq-server``, not the ``/usr/sbin``
wrapper, which would switch to the ``rabbitmq`` user who cannot write the working directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from common.closing import Closing
from meshwatch.localservers.errors import MissingBinaryError, ServerError
from meshwatch.localservers.process import LOCALHOST, _Process, _tcp_accepts, free_port

_SCRIPTS = Path("/usr/lib/rabbitmq/bin")
# The plugins a node boots with; `start` enables rabbitmq_mqtt on each node in turn after.
_BOOT_PLUGINS = "[rabbitmq_consistent_hash_exchange].\n"
# A node boots in 10-30 s here; the cluster is formed a few seconds after the last one.
_START_TIMEOUT = 120.0
# Starts of a cluster whose ports another process took meanwhile (see `RabbitCluster.start`).
_START_ATTEMPTS = 2
# RabbitMQ refuses a session after 5 s when it cannot register the client ID.
_MQTT_PROBE_TIMEOUT = 10.0
# Adds the node it runs on to the MQTT plugin's client ID tracking cluster (a no-op answer,
# {error,already_member}, when it is one): the join that the plugin does not retry.
_REJOIN = "ra:add_member(mqtt_node:all_node_ids() -- [mqtt_node:node_id()], mqtt_node:node_id())."


@dataclass(frozen=True, slots=True)
class RabbitNode:
    """One node's name and ports."""

    name: str
    amqp_port: int
    mqtt_port: int
    dist_port: int

    @property
    def amqp_url(self) -> str:
        """``amqp://guest:guest@127.0.0.1:<port>/``: the node's AMQP address."""
        return f"amqp://guest:guest@{LOCALHOST}:{self.amqp_port}/%2F"


class RabbitCluster(Closing):
    """`size` RabbitMQ nodes on 127.0.0.1, clustered, each with an MQTT listener.

    Parameters
    ----------
    workdir
        Configuration, cookie, data and logs of every node (created).
    size
        How many nodes (3 for a quorum that survives the loss of one).

    Examples
    --------
    >>> cluster = RabbitCluster(Path("/tmp/rabbit"), size=3)
    >>> len(cluster.nodes), cluster.nodes[0].name.endswith("0@localhost")
    (3, True)
    >>> "mqtt.listeners.tcp.default" in cluster.config_text(0)
    True
    """

    def __init__(self, workdir: Path, size: int = 3) -> None:
        if size < 1:
            raise ValueError(f"a cluster needs at least one node, got {size}")
        self.workdir = Path(workdir).resolve()
        self.nodes = _new_nodes(size)
        self._processes = [
            _Process(f"rabbitmq node {i}", self.workdir / f"n{i}" / "out.log") for i in range(size)
        ]
        self._cookie = uuid.uuid4().hex

    @property
    def amqp_urls(self) -> list[str]:
        """The AMQP URL of every node, in order."""
        return [node.amqp_url for node in self.nodes]

    def config_text(self, index: int) -> str:
        """The ``rabbitmq.conf`` of node `index`."""
        node = self.nodes[index]
        lines = [
            f"listeners.tcp.default = {LOCALHOST}:{node.amqp_port}",
            f"mqtt.listeners.tcp.default = {LOCALHOST}:{node.mqtt_port}",
            "mqtt.allow_anonymous = true",
            # guest may connect from 127.0.0.1 only, which is all these nodes listen on
            "loopback_users = none",
            "cluster_formation.peer_discovery_backend = classic_config",
            *(
                f"cluster_formation.classic_config.nodes.{i + 1} = {peer.name}"
                for i, peer in enumerate(self.nodes)
            ),
        ]
        return "\n".join(lines) + "\n"

    def _env(self, index: int | None) -> dict[str, str]:
        home = self.workdir / "home"
        env = {
            **os.environ,
            "HOME": str(home),  # the Erlang cookie is read from $HOME/.erlang.cookie
            # the system's rabbitmq-env.conf names the system node: read an empty one instead
            "RABBITMQ_CONF_ENV_FILE": str(self.workdir / "rabbitmq-env.conf"),
        }
        if index is not None:
            node, d = self.nodes[index], self.workdir / f"n{index}"
            env.update(
                RABBITMQ_NODENAME=node.name,
                RABBITMQ_NODE_PORT=str(node.amqp_port),
                RABBITMQ_DIST_PORT=str(node.dist_port),
                RABBITMQ_CONFIG_FILE=str(d / "rabbitmq.conf"),
                RABBITMQ_ADVANCED_CONFIG_FILE=str(d / "advanced.config"),
                RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
                RABBITMQ_LOG_BASE=str(d / "log"),
                RABBITMQ_PID_FILE=str(d / "pid"),
                RABBITMQ_PLUGINS_EXPAND_DIR=str(d / "plugins-expand"),
                RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
            )
        return env

    def start(self) -> None:
        """Start every node and wait until all have joined one cluster.

        A start that fails stops what it started. A port taken by another process between
        `free_port` and the node binding it (tests running side by side) is one retry with new
        names and ports.

        Raises
        ------
        MissingBinaryError
            If RabbitMQ is not installed.
        ServerError
            If a node exits or the cluster does not form within two minutes.
        """
        for attempt in range(_START_ATTEMPTS):
            try:
                self._start_once()
                return
            except ServerError as exc:
                with contextlib.suppress(ServerError):
                    self.stop(timeout=10)
                if "eaddrinuse" not in str(exc) or attempt == _START_ATTEMPTS - 1:
                    raise
                self.nodes = _new_nodes(len(self.nodes))
                for index in range(len(self.nodes)):
                    shutil.rmtree(self.workdir / f"n{index}" / "mnesia", ignore_errors=True)
                    (self.workdir / f"n{index}" / "enabled_plugins").unlink(missing_ok=True)

    def _start_once(self) -> None:
        script = _SCRIPTS / "rabbitmq-server"
        if not script.is_file():
            raise MissingBinaryError(f"{script} not found: run scripts/ensure-tools rabbitmq")
        home = self.workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(self._cookie)
            cookie.chmod(0o400)  # Erlang refuses a cookie others may read
        (self.workdir / "rabbitmq-env.conf").write_text("")
        for index in range(len(self.nodes)):
            self.start_node(index, wait=False)
        for index in range(len(self.nodes)):
            self._wait_node(index, mqtt=False)
        self._processes[0].wait_ready(
            lambda: self.running_nodes() == len(self.nodes), _START_TIMEOUT, "the cluster formed"
        )
        for index in range(len(self.nodes)):
            self._enable_mqtt(index)
        for index in range(len(self.nodes)):
            self._wait_node(index)
            self._wait_mqtt_sessions(index)

    def start_node(self, index: int, *, wait: bool = True) -> None:
        """Start node `index` (again, after `kill_node`), with its data."""
        d = self.workdir / f"n{index}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "rabbitmq.conf").write_text(self.config_text(index))
        plugins = d / "enabled_plugins"
        if not plugins.exists():  # a restarted node keeps rabbitmq_mqtt (`_enable_mqtt`)
            plugins.write_text(_BOOT_PLUGINS)
        process = self._processes[index]
        process.spawn([str(_SCRIPTS / "rabbitmq-server")], self._env(index))
        if wait:
            self._wait_node(index)

    def _wait_node(self, index: int, *, mqtt: bool = True) -> None:
        node = self.nodes[index]
        self._processes[index].wait_ready(
            lambda: (
                _tcp_accepts(LOCALHOST, node.amqp_port)
                and (not mqtt or _tcp_accepts(LOCALHOST, node.mqtt_port))
            ),
            _START_TIMEOUT,
            f"AMQP on {node.amqp_port}" + (f" and MQTT on {node.mqtt_port}" if mqtt else ""),
        )

    def _enable_mqtt(self, index: int) -> None:
        """Enable rabbitmq_mqtt on running node `index` (its plugins file keeps it, for restarts).

        Once the cluster has formed every node sees the same peers, so each starts the client
        ID tracking with the same members. One node after the other: enabled on all at once,
        two nodes could still each wait 100 s for the other's member list.
        """
        plugins = self.workdir / f"n{index}" / "enabled_plugins"
        result = subprocess.run(
            [
                str(_SCRIPTS / "rabbitmq-plugins"),
                "-n",
                self.nodes[index].name,
                "enable",
                "rabbitmq_mqtt",
            ],
            # not the node's own settings (_env(index)): its distribution port would move the
            # CLI's own port range (that port + 10000), possibly past 65535
            env={**self._env(None), "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins)},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServerError(
                f"cannot enable rabbitmq_mqtt on node {index} (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()}"
            )

    def _wait_mqtt_sessions(self, index: int) -> None:
        """Wait until node `index` accepts an MQTT session; rejoin it to the tracking once."""
        node = self.nodes[index]
        rejoined = False

        def ready() -> bool:
            nonlocal rejoined
            if _mqtt_session_accepted(node.mqtt_port, f"meshwatch-probe-{index}"):
                return True
            if not rejoined:
                self._rejoin_client_id_tracking(index)
                rejoined = True
            return False

        self._processes[index].wait_ready(
            ready, _START_TIMEOUT, f"an MQTT session accepted on {node.mqtt_port}"
        )

    def _rejoin_client_id_tracking(self, index: int) -> None:
        """Add node `index` to the MQTT plugin's client ID tracking cluster (see the module)."""
        subprocess.run(
            [str(_SCRIPTS / "rabbitmqctl"), "-n", self.nodes[index].name, "eval", _REJOIN],
            env=self._env(None),
            capture_output=True,
            text=True,
            check=False,
        )

    def running_nodes(self) -> int:
        """How many nodes the first running node sees running in its cluster (0: none answers)."""
        for index, node in enumerate(self.nodes):
            if not self._processes[index].running:
                continue
            result = subprocess.run(
                [
                    str(_SCRIPTS / "rabbitmqctl"),
                    "-n",
                    node.name,
                    "cluster_status",
                    "--formatter",
                    "json",
                ],
                env=self._env(None),
                capture_output=True,
                text=True,
                check=False,
            )
            try:
                return len(json.loads(result.stdout)["running_nodes"])
            except (ValueError, KeyError, TypeError):
                return 0
        return 0

    def pids(self) -> list[int]:
        """The process ids of the running nodes (the Erlang VMs; for CPU accounting)."""
        return [pid for process in self._processes if (pid := process.pid) is not None]

    def kill_node(self, index: int) -> None:
        """SIGKILL node `index` and its helpers: a crash of that machine."""
        self._processes[index].signal_group(signal.SIGKILL)

    def stop(self, timeout: float = 30) -> None:
        """Stop every node (SIGTERM to each node's process group, SIGKILL after `timeout`)."""
        errors = []
        for process in self._processes:
            try:
                process.signal_group(signal.SIGTERM, wait=timeout)
            except ServerError as exc:  # stop the others all the same
                errors.append(exc)
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Stop the cluster (the end of a ``with`` block)."""
        self.stop()

    def __enter__(self) -> RabbitCluster:
        self.start()
        return self


def _new_nodes(size: int) -> list[RabbitNode]:
    """Nodes of a new cluster: names of their own, ports free a moment ago."""
    tag = uuid.uuid4().hex[:8]
    return [
        RabbitNode(f"mw{tag}n{i}@localhost", free_port(), free_port(), free_port())
        for i in range(size)
    ]


def _mqtt_session_accepted(port: int, client_id: str) -> bool:
    """Whether an MQTT 3.1.1 CONNECT (clean session) to 127.0.0.1:`port` gets CONNACK 0."""
    name = client_id.encode()
    # variable header: protocol name "MQTT", level 4, flags: clean session, keep-alive 10 s
    body = b"\x00\x04MQTT\x04\x02\x00\x0a" + struct.pack("!H", len(name)) + name
    try:
        with socket.create_connection((LOCALHOST, port), timeout=_MQTT_PROBE_TIMEOUT) as sock:
            sock.sendall(bytes([0x10, len(body)]) + body)
            connack = b""
            while len(connack) < 4:
                chunk = sock.recv(4 - len(connack))
                if not chunk:
                    return False
                connack += chunk
            accepted = connack[0] == 0x20 and connack[3] == 0
            if accepted:
                sock.sendall(b"\xe0\x00")  # DISCONNECT
            return accepted
    except OSError:
        return False
