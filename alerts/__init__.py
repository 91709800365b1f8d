"""Alerts: rules, alert lifecycle, silences, routing, receivers and the fleet health map.

Filled by the alerts issue; it plugs into the ingest path after scoring. Alarm hygiene
(hysteresis, minimum firing duration, flap damping, shelving, chattering and stale counts)
and feedback from maintenance staff (verdicts kept as labels, teaching the models) came with
issue 11.
"""

from __future__ import annotations

__all__: list[str] = []
