"""The alerting configuration measured: 20 rules and a routing tree of 10 routes.

Written as a user would write it (YAML, in the ``alerts:`` section's shape) and loaded through
`alerts.settings.load`, the path ``meshwatch run`` takes. The rules:

- 6 ``anomaly`` rules: the two defaults (warning after 3 flagged readings, critical after 10
  with score >= 0.8), and four scoped ones (by kind, by a site regex, by an asset regex),
  with ``for`` in readings or seconds and different ``min_score``;
- 13 ``limit`` rules over nine metrics of the five kinds, with every op (``>``, ``>=``, ``<``,
  ``==``, ``!=``), ``for`` from 0 to 1 minute, most scoped to a kind, some to none;
- 1 ``deadman``: an asset silent for 60 s is offline, a site whose assets all are is one
  site-wide alert.

The tree has 10 routes under the root (3 levels), matching on site, kind, severity and rule,
exact and regex, three with ``continue``, with various ``group_by`` and timings. Its
receivers are webhooks to a closed port; the engine only queues their notifications in the
outbox (no courier runs in this part).
"""

from __future__ import annotations

from typing import Any, Literal

import yaml

from alerts.settings import Alerting, AlertsSettings, load

RULES_YAML = """
- {type: anomaly, name: anomaly, severity: warning, for_readings: 3, resolve_after: 10}
- {type: anomaly, name: anomaly_severe, severity: critical, for_readings: 10,
   resolve_after: 10, min_score: 0.8}
- {type: anomaly, name: anomaly_cnc, severity: warning, matchers: ["kind=cnc-mill"],
   for_readings: 5, for: 5s, min_score: 0.6}
- {type: anomaly, name: anomaly_north, severity: info, matchers: ['site=~"site-0[0-9]"'],
   for_readings: 5}
- {type: anomaly, name: anomaly_molder, severity: warning, matchers: ["kind=injection-molder"],
   for_readings: 2, resolve_after: 5}
- {type: anomaly, name: anomaly_robot, severity: critical,
   matchers: ["kind=robot-arm", 'asset=~"rob-00[0-3]"'], for_readings: 3, min_score: 0.9}
- {type: limit, name: spindle_hot, severity: critical, matchers: ["kind=cnc-mill"],
   condition: "spindle_temp_c > 90", for: 30s}
- {type: limit, name: spindle_warm, severity: warning, matchers: ["kind=cnc-mill"],
   condition: "spindle_temp_c >= 80", for: 10s}
- {type: limit, name: vibration_high, severity: warning, condition: "vibration_rms > 7.1",
   for: 5s}
- {type: limit, name: vibration_severe, severity: critical, condition: "vibration_rms > 11"}
- {type: limit, name: barrel_hot, severity: critical, matchers: ["kind=injection-molder"],
   condition: "barrel_temp_c > 260", for: 20s}
- {type: limit, name: pressure_high, severity: critical, matchers: ["kind=injection-molder"],
   condition: "pressure_bar >= 1800"}
- {type: limit, name: pressure_low, severity: warning, matchers: ["kind=compressor"],
   condition: "pressure_bar < 5", for: 10s}
- {type: limit, name: discharge_hot, severity: critical, matchers: ["kind=compressor"],
   condition: "discharge_temp_c > 110", for: 1m}
- {type: limit, name: current_high, severity: warning, condition: "current_a > 40", for: 15s}
- {type: limit, name: conveyor_stopped, severity: warning, matchers: ["kind=conveyor"],
   condition: "speed_mps == 0", for: 30s}
- {type: limit, name: motor_hot, severity: critical, matchers: ["kind=conveyor"],
   condition: "motor_temp_c > 85", for: 20s}
- {type: limit, name: torque_high, severity: warning, matchers: ["kind=robot-arm"],
   condition: "torque_nm > 150", for: 5s}
- {type: limit, name: robot_fault, severity: critical, matchers: ["kind=robot-arm"],
   condition: "fault_code != 0"}
- {type: deadman, name: offline, severity: critical, for: 60s, site: true}
"""

ROUTE_YAML = """
receivers: [log]
group_by: ["..."]
group_wait: 0s
group_interval: 10s
repeat_interval: 4h
routes:
  - matchers: ["severity=critical"]
    receivers: [pager]
    continue: true
    group_by: [site]
    group_wait: 5s
  - matchers: ["kind=cnc-mill"]
    receivers: [machining]
    routes:
      - matchers: ["severity=critical"]
        receivers: [machining-oncall]
      - matchers: ['site=~"site-0[0-9]"']
        receivers: [north-machining]
  - matchers: ['kind=~"injection-molder|compressor"']
    receivers: [utilities]
    continue: true
  - matchers: ['site=~"site-(1|2)[0-9]"']
    receivers: [plant-east]
    group_by: [site, kind]
    group_wait: 10s
  - matchers: ["kind=robot-arm", "severity!=info"]
    receivers: [robotics]
  - matchers: ["kind=conveyor"]
    receivers: [logistics]
    group_by: [site]
  - matchers: ['rule=~"anomaly.*"']
    receivers: [data-science]
    continue: true
  - matchers: ["severity=info"]
    receivers: [log]
"""

#: The webhook receivers the routes name (never called in this part: nothing delivers).
RECEIVERS = (
    "pager", "machining", "machining-oncall", "north-machining", "utilities", "plant-east",
    "robotics", "logistics", "data-science",
)  # fmt: skip


#: Which rules a case runs: the 20 above, none (same routes), or the shipped defaults (the
#: default rules and route, no configuration at all).
Rules = Literal["bench", "none", "default"]


def settings(rules: Rules) -> AlertsSettings:
    """The ``alerts:`` section of a case."""
    if rules == "default":
        return AlertsSettings()
    data: dict[str, Any] = {
        "rules": yaml.safe_load(RULES_YAML) if rules == "bench" else [],
        "route": yaml.safe_load(ROUTE_YAML),
        "receivers": [
            {"name": name, "webhook": {"url": f"http://127.0.0.1:9/hooks/{name}"}}
            for name in RECEIVERS
        ],
    }
    return AlertsSettings.model_validate(data)


def alerting(rules: Rules) -> Alerting:
    """The configuration in force, as `alerts.settings.load` builds it."""
    return load(settings(rules))


def route_count(config: Alerting) -> int:
    """Routes below the root."""
    return len(config.route.walk()) - 1
