"""``squall deploy``: apply a SAM/CloudFormation template to a running server, or delete its stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from squall.config import Settings


def _clients(settings: Settings, endpoint_url: str | None) -> Any:
    """A factory of boto3 clients signed with the data dir's root key, against the server."""
    import configparser

    import boto3

    from squall.api.credentials import credentials_path

    path = credentials_path(settings.data_dir)
    if not path.exists():
        raise click.ClickException(f"No credentials at {path}: start `squall server` first, or pass --data-dir.")
    parser = configparser.ConfigParser()
    parser.read(path)
    profile = parser["squall"]
    make: Any = boto3.client
    cache: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in cache:
            cache[service] = make(
                service,
                endpoint_url=endpoint_url or settings.endpoint_url,
                region_name=settings.region,
                aws_access_key_id=profile["aws_access_key_id"],
                aws_secret_access_key=profile["aws_secret_access_key"],
            )
        return cache[service]

    return client


@click.command()
@click.argument("template", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--stack-name", help="The stack's name [default: the template's folder name]")
@click.option("--parameter", "-p", "parameters", multiple=True, metavar="NAME=VALUE", help="A template parameter")
@click.option("--delete", is_flag=True, help="Remove every resource of the stack instead of deploying")
@click.option("--endpoint-url", help="The server's API endpoint [default: from the settings, port 8990]")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Squall's data directory [env SQUALL_DATA_DIR]")
def deploy(
    template: Path,
    stack_name: str | None,
    parameters: tuple[str, ...],
    delete: bool,
    endpoint_url: str | None,
    data_dir: Path | None,
) -> None:
    """Create or update the resources of a SAM or CloudFormation TEMPLATE on a running Squall server.

    A second deploy of the same stack changes only what changed and deletes what the template no
    longer declares. Local CodeUri folders are zipped and uploaded; no `sam build` is needed.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from squall.templates.deploy import Deployer, StackStore
    from squall.templates.errors import TemplateError

    settings = Settings.load(data_dir=data_dir)
    stack = stack_name or template.resolve().parent.name
    overrides = {}
    for item in parameters:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint="--parameter")
        overrides[name] = value
    deployer = Deployer(
        _clients(settings, endpoint_url),
        StackStore(settings.data_dir),
        settings.region,
        settings.account_id,
        progress=lambda line: click.echo(f"  {line}", err=True),
    )
    try:
        if delete:
            count = deployer.delete(stack)
            click.echo(f"Stack {stack}: {count} resource(s) deleted.")
            return
        click.echo(f"Deploying {template} as stack {stack}...", err=True)
        record = deployer.deploy(template, stack, overrides)
    except TemplateError as exc:
        raise click.ClickException(str(exc)) from exc
    except (ClientError, BotoCoreError) as exc:
        raise click.ClickException(f"The server refused a call: {exc}") from exc
    click.echo(f"Stack {stack}: {len(record.order)} resource(s) deployed.")
    for name, value in record.outputs.items():
        click.echo(f"{name}\t{value}")
