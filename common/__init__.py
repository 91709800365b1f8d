"""Parts every layer may use: the MQTT transport, backoff, durations and timestamps.

A leaf: it imports nothing of meshwatch, ingest, models, alerts or simulators.
"""
