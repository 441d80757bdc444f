"""``squall buckets``: buckets, their object counts and sizes, and where their notifications go."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import click

from squall.config import Settings
from squall.stores.sql import Connection


def bucket_report(settings: Settings) -> list[dict[str, Any]]:
    """Every bucket with its region, object count and bytes, and notification targets: from the data
    dir's ``buckets.db``, or from the deployment's PostgreSQL schema when ``SQUALL_TIER=ray``.

    ``buckets.db`` is opened read-only: ``BucketService`` would sweep bodies a running server has
    written but not yet committed. The PostgreSQL schema is only read too."""
    from squall.platform import shared_schema

    try:
        shared = shared_schema(settings, "buckets")
    except ValueError as exc:  # the ray tier without a database
        raise click.ClickException(f"SQUALL_TIER=ray: {exc}") from None
    if shared is not None:
        from squall.services.buckets.postgres import postgres_bucket_database

        database = postgres_bucket_database(*shared, max_size=1)
        try:
            with database.read() as conn:
                return _report(conn)
        finally:
            database.close()
    path = settings.data_dir / "buckets.db"
    if not path.exists():
        raise click.ClickException(
            f"No buckets in {settings.data_dir}: start `squall server` and create one, or pass --data-dir."
        )
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return _report(conn)
    finally:
        conn.close()


def _report(conn: Connection | sqlite3.Connection) -> list[dict[str, Any]]:
    from squall.services.buckets.notifications import from_json

    counts = {
        bucket: (count, size)
        for bucket, count, size in conn.execute("SELECT bucket, COUNT(*), SUM(size) FROM objects GROUP BY bucket")
    }
    try:
        configs = dict(conn.execute("SELECT bucket, config FROM notifications").fetchall())
    except sqlite3.OperationalError:  # written by a server from before notifications
        configs = {}
    report = []
    for name, region in conn.execute("SELECT name, region FROM buckets ORDER BY name").fetchall():
        count, size = counts.get(name, (0, 0))
        report.append(
            {
                "name": name,
                "region": region,
                "objects": int(count),
                "bytes": int(size or 0),
                "notifications": [
                    {"id": config.id, "target": config.arn, "events": list(config.events), "rules": dict(config.rules)}
                    for config in from_json(configs.get(name, "[]"))
                ],
            }
        )
    return report


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Squall's data directory [env SQUALL_DATA_DIR]")
def buckets(as_json: bool, data_dir: Path | None) -> None:
    """List buckets with their object counts and notification targets (the deployment's PostgreSQL when
    SQUALL_TIER=ray, as its servers keep them)."""
    report = bucket_report(Settings.load(data_dir=data_dir))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    if not report:
        click.echo("No buckets.")
    for bucket in report:
        click.echo(f"{bucket['name']}  {bucket['region']}  {bucket['objects']} object(s), {bucket['bytes']} bytes")
        for notification in bucket["notifications"]:
            rules = " ".join(f"{name}={value!r}" for name, value in notification["rules"].items())
            click.echo(
                f"  -> {notification['target']}  {','.join(notification['events'])}" + (f"  {rules}" if rules else "")
            )
