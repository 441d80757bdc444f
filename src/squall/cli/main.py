"""The ``squall`` command line: one command per job, each with its own ``--help``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from squall.config import Settings

DATA_DIR_HELP = "Squall's data directory [env SQUALL_DATA_DIR; default .squall]"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="squall")
def main() -> None:
    """Squall: run AWS Lambda functions on your own machine, with Lambda's API and semantics."""


@main.command()
@click.option("--host", help="Address to listen on [env SQUALL_HOST; default 127.0.0.1]")
@click.option("--port", type=int, help="Port of the AWS APIs [env SQUALL_PORT; default 8990]")
@click.option("--gateway-port", type=int, help="Port of the HTTP gateway [env SQUALL_GATEWAY_PORT; default 8991]")
@click.option("--data-dir", type=click.Path(path_type=Path), help=DATA_DIR_HELP)
@click.option("--account-id", help="Account id in ARNs [env SQUALL_ACCOUNT_ID; default 000000000000]")
@click.option("--region", help="Region in ARNs [env SQUALL_REGION; default us-east-1]")
@click.option(
    "--concurrency-limit",
    type=int,
    help="Account concurrency: invocations running at once [env SQUALL_CONCURRENCY_LIMIT; default 1000]",
)
@click.option(
    "--keep-alive",
    "keep_alive_s",
    type=float,
    help="Seconds an idle sandbox stays warm (adaptive policy: until a function's window is learned, "
    "and at most) [env SQUALL_KEEP_ALIVE_S; default 600]",
)
@click.option(
    "--keep-alive-policy",
    type=click.Choice(["adaptive", "fixed"]),
    help="adaptive: a keep-alive window per function, learned from its idle times, with pre-warming "
    "(--keep-alive is its fallback and upper bound); fixed: --keep-alive for every function "
    "[env SQUALL_KEEP_ALIVE_POLICY; default adaptive]",
)
@click.option(
    "--memory-floor",
    "memory_floor_mb",
    type=float,
    help="Stop idle sandboxes, least likely to be used soon first, when available memory falls below "
    "this many MB; 0 turns it off [env SQUALL_MEMORY_FLOOR_MB; default 512]",
)
@click.option(
    "--cpu-limit",
    type=click.Choice(["none", "quota"]),
    help="quota: cap each sandbox's CPU in proportion to its memory, as Lambda does (1,769 MB = one "
    "CPU); none: sandboxes use whatever CPU is free [env SQUALL_CPU_LIMIT; default none]",
)
@click.option(
    "--shutdown-grace",
    "shutdown_grace_s",
    type=float,
    help="Seconds in-flight invocations get on shutdown [env SQUALL_SHUTDOWN_GRACE_S; default 10]",
)
@click.option(
    "--no-auth",
    is_flag=True,
    default=None,
    help="Accept unsigned requests (throwaway local use only) [env SQUALL_NO_AUTH]",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Server log level")
@click.option(
    "--async-retry-scale",
    type=float,
    help="Multiply async retry delays and event max ages by this factor [env SQUALL_ASYNC_RETRY_SCALE; default 1.0]",
)
@click.option(
    "--tier",
    type=click.Choice(["embedded", "ray"]),
    help="Where functions run: embedded (this machine, SQLite) or ray (a Ray cluster, metadata in "
    "PostgreSQL; needs `pip install 'squall[ray]'`) [env SQUALL_TIER; default embedded]",
)
@click.option(
    "--ray-address",
    help="Ray cluster to join with --tier ray, as host:port or 'auto' "
    "[env SQUALL_RAY_ADDRESS; default: start a local Ray]",
)
@click.option(
    "--advertise-url",
    help="The AWS API endpoint functions are given (AWS_ENDPOINT_URL): one every Ray node can reach, "
    "e.g. the load balancer in front of the servers [env SQUALL_ADVERTISE_URL; default: this server's URL]",
)
@click.option(
    "--postgres-dsn",
    help="PostgreSQL database of --tier ray, e.g. postgresql://user@host:5432/squall [env SQUALL_POSTGRES_DSN]",
)
@click.option(
    "--postgres-schema",
    help="Schema in that database [env SQUALL_POSTGRES_SCHEMA; default squall]",
)
@click.option(
    "--executor",
    help="Shorthand for --tier and --ray-address: local, ray (start a local Ray), auto (this machine's "
    "Ray cluster) or ray://HOST:PORT (join the cluster whose head is there) [env SQUALL_EXECUTOR]",
)
@click.option(
    "--store",
    help="Shorthand for --postgres-dsn: sqlite (files in the data dir) or postgresql://... (with a ray "
    "executor) [env SQUALL_STORE]",
)
def server(**options: object) -> None:
    """Start Squall: the AWS APIs (Lambda...) and the HTTP gateway, on this machine.

    On first start it writes an access key to <data-dir>/credentials (profile "squall") and
    prints how to point boto3 and the AWS CLI at it. SIGTERM or Ctrl-C stop it gracefully.
    """
    from squall.server import run

    try:
        settings = Settings.load(**options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    run(settings)


@main.command()
@click.argument("function_name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines as they arrive")
@click.option(
    "--since",
    default=None,
    help="Only lines from then on: a duration back from now (30s, 10m, 1h, 2d; a bare number is minutes) "
    "or an ISO time (2026-01-31T12:00:00Z) [default: all]",
)
@click.option(
    "--filter",
    "filter_pattern",
    default=None,
    help='Only lines matching a CloudWatch Logs filter pattern of terms: ERROR, "exact phrase", '
    "ERROR -DEBUG (all terms, none of the excluded), ?ERROR ?WARN (any)",
)
@click.option("--data-dir", type=click.Path(path_type=Path), help=DATA_DIR_HELP)
def logs(
    function_name: str, follow: bool, since: str | None, filter_pattern: str | None, data_dir: Path | None
) -> None:
    """Print a function's log group /aws/lambda/FUNCTION_NAME (START/END/REPORT and its output)."""
    from squall.cli.timeparse import parse_since
    from squall.logs.format import log_group_name
    from squall.services.logs.patterns import InvalidParameter, compile_pattern

    try:
        cutoff = parse_since(since, "m") * 1000 if since else 0.0
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    try:
        matches = compile_pattern(filter_pattern)
    except InvalidParameter as exc:
        raise click.BadParameter(exc.message, param_hint="--filter") from None
    store = _open_store(data_dir)
    group = log_group_name(function_name)
    cursor = 0
    try:
        while True:
            events = store.log_events(group, after_id=cursor, limit=1000)
            for event_id, _stream, event in events:
                cursor = event_id
                if event.timestamp >= cutoff and matches(event.message):
                    click.echo(event.message.rstrip("\n"))
            if not follow:
                if not events and cursor == 0:
                    click.echo(f"No log lines yet for {function_name} (group {group}).", err=True)
                if len(events) < 1000:
                    return
                continue
            if not events:
                time.sleep(0.5)
    except KeyboardInterrupt:
        return
    finally:
        store.close()


@main.command()
@click.option("--function", "function_name", help="Only this function")
@click.option(
    "--since",
    default=None,
    help="Only invocations from then on: a duration back from now (30m, 12h, 7d; a bare number is hours) "
    "or an ISO time [default: everything recorded]",
)
@click.option(
    "--by",
    type=click.Choice(["function", "day", "trigger"]),
    default="function",
    show_default=True,
    help="Group the usage table by function, UTC day, or trigger (api, event, sqs, kinesis...)",
)
@click.option(
    "--arch",
    type=click.Choice(["x86_64", "arm64"]),
    default=None,
    help="Price every invocation as if it ran on this architecture [default: each function's own]",
)
@click.option(
    "--server-price",
    type=str,
    default=None,
    help="Hourly USD price of the always-on server in the break-even estimate "
    "[default: whole 2 vCPU / 4 GiB boxes at $0.0416/h, EC2 t3.medium on-demand us-east-1]",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON")
@click.option("--no-free-tier", is_flag=True, help="JSON totals without Lambda's monthly free tier (tables show both)")
@click.option("--data-dir", type=click.Path(path_type=Path), help=DATA_DIR_HELP)
def cost(
    function_name: str | None,
    since: str | None,
    by: str,
    arch: str | None,
    server_price: str | None,
    as_json: bool,
    no_free_tier: bool,
    data_dir: Path | None,
) -> None:
    """What the recorded invocations would cost on AWS Lambda: requests, GB-seconds and dollars at
    list prices, with and without the free tier, and the always-on server that would be cheaper
    above some sustained request rate (the break-even)."""
    import sys
    from decimal import Decimal, InvalidOperation

    from rich.console import Console

    from squall.cli.timeparse import parse_since
    from squall.metering.summary import print_rich, summarize, summary_json

    try:
        start = parse_since(since, "h") if since else 0.0
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    try:
        hourly = Decimal(server_price) if server_price is not None else None
    except InvalidOperation:
        raise click.BadParameter(f"{server_price!r} is not a price in dollars", param_hint="--server-price") from None
    if hourly is not None and hourly <= 0:
        raise click.BadParameter("must be positive", param_hint="--server-price")
    store = _open_store(data_dir)
    try:
        records = store.usage(since=start, function_name=function_name)
    finally:
        store.close()
    summary = summarize(records, by=by, architecture=arch, server_hourly=hourly)
    if as_json:
        click.echo(json.dumps(summary_json(summary, free_tier=not no_free_tier), indent=2))
    else:
        # Piped, rich would fold the table to 80 columns: give it room instead.
        console = Console() if sys.stdout.isatty() else Console(width=160)
        print_rich(summary, console)


@main.command()
@click.option("--only", multiple=True, metavar="NAME", help="Run only this pipeline of examples/ (repeatable)")
def demo(only: tuple[str, ...]) -> None:
    """Start a server, run the sample function, then every pipeline of examples/ end to end.

    Prints, per pipeline, what went in, what came out, and its invocations and cost; exits 0 only
    if every pipeline produced its expected output. Uses the SQUALL_* settings (ports 8990/8991,
    data in .squall) and stops the server when done.
    """
    from squall.demo.pipelines import EXAMPLES
    from squall.demo.run import main as run_demo

    if not EXAMPLES.is_dir():
        raise click.ClickException(
            f"No examples/ next to this Squall ({EXAMPLES.parent}): run it from a source checkout."
        )
    raise SystemExit(run_demo(only))


@main.command()
@click.option("--quick", is_flag=True, help="Fewer samples: a few minutes")
@click.option("--only", multiple=True, metavar="NAME", help="Run only this scenario (repeatable)")
@click.option("--compare", is_flag=True, help="Compare with the last committed results (flag >10% regressions)")
@click.option("--no-peers", is_flag=True, help="Skip MiniStack, Ray and chalice local (nothing to install)")
def bench(quick: bool, only: tuple[str, ...], compare: bool, no_peers: bool) -> None:
    """Run the benchmark suite of a Squall checkout (benchmarks/), as `make bench` does.

    Writes benchmarks/results/<date>-<commit>.json and, for a full run, BENCHMARKS.md and its plots.
    """
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    if not (root / "benchmarks" / "run.py").is_file():
        raise click.ClickException(f"No benchmarks/ next to this Squall ({root}): run it from a source checkout.")
    flags = [*(["--quick"] if quick else []), *(f"--only={name}" for name in only)]
    flags += [*(["--compare"] if compare else []), *(["--no-peers"] if no_peers else [])]
    raise SystemExit(subprocess.call([sys.executable, "-m", "benchmarks.run", *flags], cwd=root))


def _open_store(data_dir: Path | None):  # type: ignore[no-untyped-def]
    from squall.stores.sqlite import SqliteMetadataStore

    settings = Settings.load(data_dir=data_dir)
    if settings.tier != "embedded":
        # The cluster's store (SQUALL_TIER, SQUALL_POSTGRES_DSN, SQUALL_POSTGRES_SCHEMA).
        from squall.platform import metadata_store

        return metadata_store(settings, settings.data_dir)
    path = settings.data_dir / "squall.db"
    if not path.exists():
        raise click.ClickException(
            f"No Squall data in {settings.data_dir}: start `squall server` first, or pass --data-dir."
        )
    return SqliteMetadataStore(path)


def _register_commands() -> None:
    from squall.cli.buckets import buckets
    from squall.cli.cluster import cluster
    from squall.cli.deploy import deploy
    from squall.cli.messaging import outbox, queues, topics
    from squall.cli.streams import streams
    from squall.cli.tables import tables
    from squall.cli.top import top

    main.add_command(streams)
    main.add_command(cluster)
    main.add_command(tables)
    main.add_command(top)
    main.add_command(deploy)
    main.add_command(buckets)
    main.add_command(queues)
    main.add_command(topics)
    main.add_command(outbox)


_register_commands()
