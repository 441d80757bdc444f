"""``squall tables``: tables with their item counts, their change streams, and the mappings reading them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from squall.config import Settings


def table_report(data_dir: Path) -> dict[str, Any]:
    """Every table (items, bytes, stream) and every stream's mappings with how far behind each is.

    The embedded tier's stores are files in ``data_dir``; the scale-out tier's (``SQUALL_TIER=ray``)
    are the deployment's PostgreSQL, as the servers use them.
    """
    from squall.platform import mapping_database, table_store
    from squall.services.tables.service import TableService
    from squall.services.tables.streams import TableStreams
    from squall.sources.mappings import MappingStore

    settings = Settings.load(data_dir=data_dir)
    embedded = settings.tier != "ray"
    if embedded and not (data_dir / "tables.db").exists():
        raise click.ClickException(
            f"No tables in {data_dir}: start `squall server` and create one, or pass --data-dir."
        )
    # The expiry sweep never runs here: this process only reads.
    service = TableService(table_store(settings, data_dir), settings.account_id, settings.region, expiry_interval=3600)
    streams = TableStreams(service)
    mappings = (
        MappingStore(mapping_database(settings, data_dir))
        if not embedded or (data_dir / "mappings.db").exists()
        else None
    )
    try:
        all_mappings = mappings.all() if mappings is not None else []
        report = []
        for name in service.tables():
            description = service.describe_table(name)
            entry: dict[str, Any] = {
                "name": name,
                "items": description["ItemCount"],
                "bytes": description["TableSizeBytes"],
                "stream": None,
            }
            arn = service.stream_arn(service.table(name))
            if arn is not None:
                stream = streams.stream(arn)
                readers = []
                for mapping in (m for m in all_mappings if m.event_source_arn == arn):
                    assert mappings is not None
                    position = mappings.checkpoint(mapping.uuid, stream.shard_id)
                    readers.append(
                        {
                            "uuid": mapping.uuid,
                            "function": mapping.function_arn,
                            "state": "Enabled" if mapping.enabled else "Disabled",
                            "last_result": mapping.last_processing_result,
                            "behind": streams.backlog(arn, position if position is not None else stream.start_seq),
                        }
                    )
                entry["stream"] = {
                    "arn": arn,
                    "view_type": stream.view,
                    "records": streams.backlog(arn, 0),
                    "mappings": readers,
                }
            report.append(entry)
        return {"tables": report}
    finally:
        service.close()
        if mappings is not None:
            mappings.close()


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Squall's data directory [env SQUALL_DATA_DIR]")
def tables(as_json: bool, data_dir: Path | None) -> None:
    """List tables with their item counts, their change stream, and the event source mappings reading it."""
    report = table_report(Settings.load(data_dir=data_dir).data_dir)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    if not report["tables"]:
        click.echo("No tables.")
    for table in report["tables"]:
        click.echo(f"{table['name']}  {table['items']} item(s), {table['bytes']} bytes")
        stream = table["stream"]
        if stream is None:
            click.echo("  no stream")
            continue
        click.echo(f"  stream {stream['arn']}  {stream['view_type']}  {stream['records']} record(s) kept")
        for mapping in stream["mappings"]:
            function = mapping["function"].split(":function:")[-1]
            click.echo(
                f"  mapping {mapping['uuid']} -> {function}  {mapping['state']}  ({mapping['last_result']})  "
                f"behind {mapping['behind']}"
            )
