"""Parts every layer may use: the MQTT transport and the parsers of durations and timestamps.

Also metric names and the labelled dataset readers. A leaf: it imports nothing of meshwatch,
ingest, models, alerts or simulators.
"""
