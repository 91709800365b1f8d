"""Simulators: a micro-factory fleet with faults and ground truth, record and replay.

Filled by the simulators issue. Simulators speak MQTT like real sensors and import nothing of
the pipeline.
"""

from __future__ import annotations

__all__: list[str] = []
