"""``squall streams``: streams, their shards, and how far behind each event source mapping is."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from squall.config import Settings


def stream_report(data_dir: Path) -> dict[str, Any]:
    """Streams with their shards, and mappings with their per-shard backlog and iterator age.

    The embedded tier's stores are files in ``data_dir``; the scale-out tier's (``SQUALL_TIER=ray``)
    are the deployment's PostgreSQL, as the servers use them.
    """
    from squall.platform import mapping_database, stream_store
    from squall.services.streams.service import StreamService
    from squall.sources.mappings import MappingStore
    from squall.sources.streams import lease_name, stream_name

    settings = Settings.load(data_dir=data_dir)
    embedded = settings.tier != "ray"
    if embedded and not (data_dir / "streams.db").exists():
        raise click.ClickException(
            f"No streams in {data_dir}: start `squall server` and create one, or pass --data-dir."
        )
    service = StreamService(stream_store(settings, data_dir), settings.account_id, settings.region)
    mappings = (
        MappingStore(mapping_database(settings, data_dir))
        if not embedded or (data_dir / "mappings.db").exists()
        else None
    )
    now = time.time()
    try:
        streams = []
        listed, _ = service.list_streams(None, 10_000)
        for stream in listed:
            shards = service.shards(stream.name)
            streams.append(
                {
                    "name": stream.name,
                    "mode": stream.mode,
                    "retention_hours": stream.retention_hours,
                    "shards": [
                        {
                            "id": s.shard_id,
                            "open": s.end_seq is None,
                            "records": service.backlog(stream.name, s.shard_id, 0)[0],
                        }
                        for s in shards
                    ],
                }
            )
        report_mappings = []
        holders = _lease_holders(settings, data_dir)
        for mapping in mappings.all() if mappings is not None else []:
            assert mappings is not None
            if not mapping.event_source_arn.startswith("arn:aws:kinesis:"):
                continue  # a queue's or a table stream's (see `squall tables`)
            name = stream_name(mapping.event_source_arn)
            lag = []
            for shard in service.shards(name) if any(s["name"] == name for s in streams) else []:
                position, _, last_age = mappings.progress(mapping.uuid, shard.shard_id)
                behind, oldest = service.backlog(name, shard.shard_id, position or 0)
                lag.append(
                    {
                        "shard": shard.shard_id,
                        "behind": behind,
                        "iterator_age_ms": int((now - oldest) * 1000) if oldest and behind else 0,
                        "last_batch_iterator_age_ms": last_age,
                        "held_by": holders.get(lease_name(mapping.uuid, shard.shard_id)),
                    }
                )
            report_mappings.append(
                {
                    "uuid": mapping.uuid,
                    "stream": name,
                    "function": mapping.function_arn,
                    "state": "Enabled" if mapping.enabled else "Disabled",
                    "last_result": mapping.last_processing_result,
                    "lag": lag,
                }
            )
        return {"streams": streams, "mappings": report_mappings}
    finally:
        service.close()
        if mappings is not None:
            mappings.close()


def _lease_holders(settings: Settings, data_dir: Path) -> dict[str, str]:
    """Which server process delivers each shard now (lease name -> owner)."""
    from squall.platform import lease_store

    if settings.tier != "ray" and not (data_dir / "leases.db").exists():
        return {}
    store = lease_store(settings, data_dir)
    try:
        return store.holders()
    finally:
        store.close()


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Squall's data directory [env SQUALL_DATA_DIR]")
def streams(as_json: bool, data_dir: Path | None) -> None:
    """List streams and shards, and the event source mappings reading them with their lag."""
    report = stream_report(Settings.load(data_dir=data_dir).data_dir)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    if not report["streams"]:
        click.echo("No streams.")
    for stream in report["streams"]:
        open_count = sum(1 for s in stream["shards"] if s["open"])
        click.echo(
            f"{stream['name']}  {stream['mode']}  {open_count} open shard(s), retention {stream['retention_hours']} h"
        )
        for shard in stream["shards"]:
            click.echo(f"  {shard['id']}  {'open  ' if shard['open'] else 'closed'}  {shard['records']} record(s)")
    for mapping in report["mappings"]:
        function = mapping["function"].split(":function:")[-1]
        click.echo(
            f"mapping {mapping['uuid']}  {mapping['stream']} -> {function}  {mapping['state']}  "
            f"({mapping['last_result']})"
        )
        for lag in mapping["lag"]:
            last = lag["last_batch_iterator_age_ms"]
            click.echo(
                f"  {lag['shard']}  behind {lag['behind']}  iterator age {lag['iterator_age_ms']} ms"
                + (f" (last batch {last} ms)" if last is not None else "")
                + (f"  held by {lag['held_by']}" if lag["held_by"] else "")
            )
