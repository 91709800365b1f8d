"""Parts every layer may use: the MQTT transport, and the parsers every package shares.

The parsers are those of durations, timestamps and metric names. A leaf: it imports nothing
of meshwatch, ingest, models, alerts or simulators.
"""
