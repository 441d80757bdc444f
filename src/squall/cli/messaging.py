"""``squall queues``, ``squall topics`` and ``squall outbox``: queues with their backlogs, topics with
their subscriptions, and what the sms/email stand-ins would have sent."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from squall.cli.timeparse import parse_since
from squall.config import Settings
from squall.services.queues.service import QueueService
from squall.services.topics.service import TopicService

DATA_DIR = click.option(
    "--data-dir", type=click.Path(path_type=Path), help="Squall's data directory [env SQUALL_DATA_DIR]"
)
AS_JSON = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON")


@contextmanager
def _queues(data_dir: Path | None) -> Iterator[QueueService]:
    """The queues of ``data_dir`` (embedded tier), or of the deployment's PostgreSQL when
    ``SQUALL_TIER=ray``, as its servers keep them."""
    from squall.platform import queue_store

    settings = Settings.load(data_dir=data_dir)
    if settings.tier != "ray" and not (settings.data_dir / "queues.db").exists():
        raise click.ClickException(
            f"No queues in {settings.data_dir}: start `squall server` first, or pass --data-dir."
        )
    service = QueueService(queue_store(settings, settings.data_dir), settings.account_id, settings.region)
    try:
        yield service
    finally:
        service.close()


@contextmanager
def _topics(data_dir: Path | None) -> Iterator[TopicService]:
    """The embedded tier's topic file in the data dir, or the scale-out deployment's PostgreSQL
    schema (``SQUALL_TIER=ray``), as the servers use them."""
    from squall.platform import topic_store

    settings = Settings.load(data_dir=data_dir)
    if settings.tier != "ray" and not (settings.data_dir / "topics.db").exists():
        raise click.ClickException(
            f"No topics in {settings.data_dir}: start `squall server` first, or pass --data-dir."
        )
    store = topic_store(settings, settings.data_dir)
    service = TopicService(store, settings.account_id, settings.region, settings.endpoint_url)
    try:
        yield service
    finally:
        service.close()


def queue_report(service: QueueService) -> list[dict[str, Any]]:
    """Every queue: visible, in-flight and delayed messages, FIFO or not, and its dead-letter target."""
    report = []
    for name in service.list_queues(""):
        queue, counts = service.queue(name), service.counts(name)
        redrive = queue.redrive()
        report.append(
            {
                "name": name,
                "fifo": queue.fifo,
                "visible": counts.visible,
                "in_flight": counts.in_flight,
                "delayed": counts.delayed,
                "dead_letter_queue": redrive[0] if redrive else None,
            }
        )
    return report


def topic_report(service: TopicService) -> dict[str, Any]:
    """Every topic with its subscriptions (protocol, endpoint, confirmed), and deliveries still pending."""
    topics, token = [], None
    while True:
        arns, token = service.list_topics(token)
        for arn in arns:
            subscriptions, sub_token = [], None
            while True:
                page, sub_token = service.list_subscriptions(arn, sub_token)
                subscriptions += [
                    {"arn": s.arn, "protocol": s.protocol, "endpoint": s.endpoint, "confirmed": s.confirmed}
                    for s in page
                ]
                if sub_token is None:
                    break
            topics.append({"arn": arn, "subscriptions": subscriptions})
        if token is None:
            break
    return {"topics": topics, "pending_deliveries": service.pending_deliveries()}


@click.command()
@AS_JSON
@DATA_DIR
def queues(as_json: bool, data_dir: Path | None) -> None:
    """List queues with their backlogs: visible, in-flight and delayed messages."""
    with _queues(data_dir) as service:
        report = queue_report(service)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    if not report:
        click.echo("No queues.")
    for q in report:
        dlq = f"  -> {q['dead_letter_queue']}" if q["dead_letter_queue"] else ""
        kind = "FIFO" if q["fifo"] else "standard"
        click.echo(
            f"{q['name']}  {kind}  {q['visible']} visible, {q['in_flight']} in flight, {q['delayed']} delayed{dlq}"
        )


@click.command()
@AS_JSON
@DATA_DIR
def topics(as_json: bool, data_dir: Path | None) -> None:
    """List topics with their subscriptions, and how many deliveries are still pending."""
    with _topics(data_dir) as service:
        report = topic_report(service)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    if not report["topics"]:
        click.echo("No topics.")
    for topic in report["topics"]:
        click.echo(topic["arn"])
        for sub in topic["subscriptions"]:
            state = "" if sub["confirmed"] else "  (pending confirmation)"
            click.echo(f"  {sub['protocol']:<10} {sub['endpoint']}{state}")
    click.echo(f"{report['pending_deliveries']} delivery(ies) pending")


@click.command()
@click.option("--since", help="Only messages from then on: 30s, 10m, 1h, 2d, or an ISO time [default: all]")
@AS_JSON
@DATA_DIR
def outbox(since: str | None, as_json: bool, data_dir: Path | None) -> None:
    """What topics' sms and email subscribers would have received (nothing real is sent from Squall)."""
    try:
        start = parse_since(since, "m") if since else 0.0
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    with _topics(data_dir) as service:
        entries = service.outbox(since=start)
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        click.echo("The outbox is empty.")
    for entry in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry["created"]))
        subject = f" [{entry['subject']}]" if entry["subject"] else ""
        click.echo(f"{when}  {entry['protocol']} to {entry['endpoint']}  {entry['kind']}{subject}")
        for line in str(entry["body"]).splitlines():
            click.echo(f"    {line}")
