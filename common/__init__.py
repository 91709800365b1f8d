"""Parts every layer may use: the MQTT transport and the parsers of durations and timestamps.

Also metric names, the labelled dataset readers and the key path and line of a YAML error. A
leaf: it imports nothing of meshwatch, ingest, models, alerts or simulators.
"""
