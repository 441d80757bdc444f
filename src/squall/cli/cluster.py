"""``squall cluster status``: the scale-out tier at a glance.

The Ray nodes with their resources, the node agent of this deployment on each with its warm and busy
sandboxes, and the servers with the leases they hold (stream shards, the scheduler), read from the
deployment's PostgreSQL schema.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any

import click

from squall.config import Settings

#: How long one agent may take to report before it is shown as not answering.
AGENT_TIMEOUT_S = 10.0


def cluster_report(ray_address: str, dsn: str, schema: str) -> dict[str, Any]:
    """Nodes, agents and servers of the deployment on ``schema`` (this process joins the Ray cluster)."""
    import ray

    from squall.executors.ray import NAMESPACE
    from squall.executors.ray_agent import AgentStatus
    from squall.sources.owner import owner_alive
    from squall.stores.postgres import PostgresLeaseStore

    ray.init(address=ray_address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.ERROR)
    untyped_ray: Any = ray  # ray.nodes() has no annotations
    try:
        nodes = [
            {
                "node_id": node["NodeID"],
                "address": node.get("NodeManagerAddress"),
                "alive": bool(node.get("Alive")),
                "cpus": node.get("Resources", {}).get("CPU", 0),
                "memory_gb": round(node.get("Resources", {}).get("memory", 0) / 2**30, 1),
            }
            for node in untyped_ray.nodes()
        ]
        prefix = f"agent-{schema}-"
        agents = []
        for named in ray.util.list_named_actors(all_namespaces=True):
            if named["namespace"] != NAMESPACE or not named["name"].startswith(prefix):
                continue
            entry: dict[str, Any] = {"name": named["name"], "node": named["name"][len(prefix) :]}
            try:
                agent = ray.get_actor(named["name"], namespace=NAMESPACE)
                state: AgentStatus = untyped_ray.get(agent.status.remote(), timeout=AGENT_TIMEOUT_S)
            except Exception as exc:  # a dead or stuck agent is part of the picture, not a failure of the report
                entry["error"] = f"{type(exc).__name__}: {exc}"
            else:
                entry.update(warm=state.warm, busy=state.busy, keep_alive=state.keep_alive, idle=state.idle)
            agents.append(entry)
    finally:
        ray.shutdown()
    leases = PostgresLeaseStore(dsn, schema)
    try:
        holders = leases.holders()
    finally:
        leases.close()
    by_owner: defaultdict[str, list[str]] = defaultdict(list)
    for lease, owner in sorted(holders.items()):
        by_owner[owner].append(lease)
    servers = [{"owner": owner, "alive": owner_alive(owner), "leases": names} for owner, names in by_owner.items()]
    return {"schema": schema, "nodes": nodes, "agents": sorted(agents, key=lambda a: a["name"]), "servers": servers}


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    nodes = Table(title="Ray nodes")
    for column in ("node", "address", "alive", "CPUs", "memory (GB)"):
        nodes.add_column(column)
    for node in report["nodes"]:
        nodes.add_row(node["node_id"][:12], str(node["address"]), "yes" if node["alive"] else "no",
                      f"{node['cpus']:g}", f"{node['memory_gb']:g}")  # fmt: skip
    console.print(nodes)
    agents = Table(title=f"Node agents of deployment {report['schema']}")
    for column in ("agent", "node", "warm", "busy", "keep-alive", "idle sandboxes by version"):
        agents.add_column(column)
    for agent in report["agents"]:
        if "error" in agent:
            agents.add_row(agent["name"], agent["node"], "-", "-", "-", f"not answering: {agent['error'][:80]}")
            continue
        idle = ", ".join(f"{key} {count}" for key, count in sorted(agent["idle"].items())) or "none"
        agents.add_row(agent["name"], agent["node"], str(agent["warm"]), str(agent["busy"]), agent["keep_alive"], idle)
    console.print(agents if report["agents"] else "No node agent yet: no function has run on this deployment.")
    servers = Table(title="Servers holding leases")
    for column in ("server (host/pid/start)", "alive", "leases"):
        servers.add_column(column)
    for server in report["servers"]:
        servers.add_row(server["owner"], "yes" if server["alive"] else "no", "\n".join(server["leases"]))
    console.print(servers if report["servers"] else "No server holds a lease.")


@click.group()
def cluster() -> None:
    """The scale-out tier: Ray nodes, node agents and servers."""


@cluster.command()
@click.option("--ray-address", help="The Ray cluster, host:port or 'auto' [env SQUALL_RAY_ADDRESS]")
@click.option("--postgres-dsn", help="The deployment's PostgreSQL [env SQUALL_POSTGRES_DSN]")
@click.option("--postgres-schema", help="The deployment's schema (default squall) [env SQUALL_POSTGRES_SCHEMA]")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON")
def status(ray_address: str | None, postgres_dsn: str | None, postgres_schema: str | None, as_json: bool) -> None:
    """Show the Ray nodes and their resources, the node agents with their warm sandboxes, and the
    servers with the leases they hold."""
    overrides = {"ray_address": ray_address, "postgres_dsn": postgres_dsn, "postgres_schema": postgres_schema}
    settings = Settings.load(**{key: value for key, value in overrides.items() if value is not None})
    if not settings.postgres_dsn:
        raise click.ClickException("Pass --postgres-dsn (or set SQUALL_POSTGRES_DSN): the deployment's PostgreSQL.")
    try:
        report = cluster_report(settings.ray_address or "auto", settings.postgres_dsn, settings.postgres_schema)
    except ConnectionError as exc:
        raise click.ClickException(f"Could not join the Ray cluster: {exc}. Pass --ray-address host:port.") from exc
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print(report)
