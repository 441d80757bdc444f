"""A landed object's records: CSV with a header row (``.csv``) or one JSON object a line (``.jsonl``).

An object's dataset is the folder below ``incoming/``: ``incoming/<dataset>/<file>``.
"""

import csv
import io
import json

SUFFIXES = (".csv", ".jsonl")


def dataset_of(key):
    """``incoming/<dataset>/<file>`` -> ``<dataset>``; None for keys this app does not take."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != "incoming" or not parts[1] or not key.endswith(SUFFIXES):
        return None
    return parts[1]


def parse(key, body):
    """The object's records as dicts."""
    text = body.decode("utf-8")
    if key.endswith(".csv"):
        return list(csv.DictReader(io.StringIO(text)))
    return [json.loads(line) for line in text.splitlines() if line.strip()]
