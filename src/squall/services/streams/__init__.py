"""Streams: a Kinesis-compatible sharded stream service on SQLite (the embedded tier)."""
