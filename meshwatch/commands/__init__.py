"""The commands of ``meshwatch``, one module per command group.

`meshwatch.cli` imports a module only when its command runs or its help is printed, so each
module imports its heavy dependencies (settings, the broker client, rich, the detectors)
inside the command that uses them.

- ``run``: ``run``, the pipeline.
- ``demo``: ``demo``, a broker, the pipeline and a simulated fleet.
- ``evaluate``: ``evaluate``, the detectors or the pipeline judged against labels.
- ``deadletters``: ``deadletters``, the rejected messages.
- ``config``: ``config sample`` and ``config show``.
- ``running``: what the commands talking to a running pipeline share (``--timeout``, ``--by``).
- ``status``: ``status``, the fleet's health map.
- ``silence``: ``silence add``, ``list`` and ``expire``.
- ``alerts``: ``ack``, ``shelve``, ``unshelve`` and ``feedback``.
- ``history``: ``alerts history``, the alert episodes and the weekly review's tallies.
- ``model``: ``model reset``.
- ``web``: ``web``, the web console, and ``web adduser``.
"""

from __future__ import annotations

__all__: list[str] = []
