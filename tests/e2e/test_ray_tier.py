"""The Ray tier end to end: ``squall server --tier ray`` on a local Ray, metadata in PostgreSQL."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_zip
from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema
from tests.contract.test_metadata_store import unavailable
from tests.e2e.conftest import ROLE, SquallServer

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow

HANDLER = """
import json, time

def handler(event, context):
    print("ray tier got", json.dumps(event))
    time.sleep(event.get("sleep", 0))
    return {"echo": event}
"""


@pytest.fixture(scope="module")
def ray_address(schema: str) -> Iterator[str]:
    """A local Ray started by this test process (which can then see and kill the agents)."""
    ray.init(include_dashboard=False, namespace="squall", num_cpus=2, log_to_driver=False)
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
        # The agents' work (they live as long as Ray, which stopped them unawares).
        shutil.rmtree(Path(tempfile.gettempdir()) / "squall-ray" / schema, ignore_errors=True)


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    with scratch_schema(unavailable) as name:
        yield name


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ray_address: str, schema: str) -> Iterator[SquallServer]:
    args = ["--tier", "ray", "--ray-address", ray_address, "--postgres-dsn", postgres_dsn()]
    server = SquallServer(tmp_path_factory.mktemp("ray") / "data", [*args, "--postgres-schema", schema])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lam(server: SquallServer) -> Any:
    return server.client("lambda")


def create(lam: Any, name: str) -> None:
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": HANDLER})},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})


def invoke(lam: Any, name: str, event: dict[str, Any]) -> tuple[dict[str, Any], str]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
    assert "FunctionError" not in response, response["Payload"].read()
    return json.loads(response["Payload"].read()), base64.b64decode(response["LogResult"]).decode()


def usage_of(schema: str, name: str) -> list[Any]:
    from squall.stores.postgres import PostgresMetadataStore

    store = PostgresMetadataStore(postgres_dsn(), schema)
    try:
        return store.usage(function_name=name)
    finally:
        store.close()


def wait_usage(schema: str, name: str, count: int, trigger: str | None = None) -> list[Any]:
    """The function's usage records once ``count`` are there (the recorder writes in batches)."""
    deadline = time.monotonic() + 40
    while True:
        records = [r for r in usage_of(schema, name) if trigger is None or r.trigger == trigger]
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.3)


def agents() -> list[str]:
    """Ids of the live node agents (a replacement keeps its node's name)."""
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == "squall"]
    ids = []
    for name in names:
        try:
            ids.append(ray.get_actor(name, namespace="squall")._actor_id.hex())
        except ValueError:
            continue  # it died between the listing and the lookup (a killed agent, just now)
    return ids


def busy_agents() -> int:
    """How many agents run an invocation now."""
    count = 0
    for named in ray.util.list_named_actors(all_namespaces=True):
        if named["namespace"] == "squall":
            status = ray.get(ray.get_actor(named["name"], namespace="squall").status.remote(), timeout=30)
            count += status.busy > 0
    return count


def kill(agent_id: str) -> None:
    for named in ray.util.list_named_actors(all_namespaces=True):
        actor = ray.get_actor(named["name"], namespace=named["namespace"])
        if actor._actor_id.hex() == agent_id:
            ray.kill(actor)


def test_sync_invoke_runs_on_a_node_agent_then_warm(lam: Any, schema: str) -> None:
    create(lam, "ray-echo")
    payload, log = invoke(lam, "ray-echo", {"n": 1})
    assert payload == {"echo": {"n": 1}}
    assert 'ray tier got {"n": 1}' in log
    assert "Init Duration" in log  # a cold start
    payload, log = invoke(lam, "ray-echo", {"n": 2})
    assert payload == {"echo": {"n": 2}}
    assert "Init Duration" not in log  # warm affinity: the same agent's idle sandbox
    records = wait_usage(schema, "ray-echo", 2)
    assert [r.cold for r in records] == [True, False]
    assert all(r.outcome == "success" and r.memory_mb == 128 for r in records)
    assert len(agents()) == 1


def test_squall_cost_reads_the_cluster_store(lam: Any, server: SquallServer, schema: str) -> None:
    create(lam, "ray-costed")
    invoke(lam, "ray-costed", {})
    invoke(lam, "ray-costed", {})
    wait_usage(schema, "ray-costed", 2)
    env = server.cli_env() | {
        "SQUALL_TIER": "ray",
        "SQUALL_POSTGRES_DSN": postgres_dsn(),
        "SQUALL_POSTGRES_SCHEMA": schema,
    }
    argv = [sys.executable, "-m", "squall", "cost", "--function", "ray-costed", "--json"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=True)
    [group] = json.loads(done.stdout)["groups"]
    assert (group["requests"], group["cold_starts"]) == (2, 1)


def test_async_invoke_runs_and_is_metered(lam: Any, schema: str) -> None:
    create(lam, "ray-async")
    assert lam.invoke(FunctionName="ray-async", InvocationType="Event", Payload=b'{"a": 1}')["StatusCode"] == 202
    records = wait_usage(schema, "ray-async", 1)
    assert [(r.trigger, r.outcome) for r in records] == [("event", "success")]


def test_node_agents_keep_sandboxes_warm_with_the_servers_adaptive_policy(lam: Any) -> None:
    create(lam, "ray-keepalive")
    invoke(lam, "ray-keepalive", {})
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == "squall"]
    assert names
    for name in names:
        status = ray.get(ray.get_actor(name, namespace="squall").status.remote(), timeout=30)
        assert status.keep_alive == "adaptive"


def test_cluster_status_shows_nodes_agents_and_servers(lam: Any, ray_address: str, schema: str) -> None:
    create(lam, "ray-status")
    invoke(lam, "ray-status", {})
    argv = ["cluster", "status", "--json", "--ray-address", ray_address, "--postgres-dsn", postgres_dsn()]
    shown = subprocess.run(
        [sys.executable, "-m", "squall", *argv, "--postgres-schema", schema],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["schema"] == schema
    assert [node["alive"] for node in report["nodes"]] == [True]
    [agent] = report["agents"]
    assert agent["keep_alive"] == "adaptive" and agent["warm"] >= 1
    assert any(key.startswith("ray-status") for key in agent["idle"]), agent["idle"]
    assert all(server["alive"] for server in report["servers"])
    leases = [lease for server in report["servers"] for lease in server["leases"]]
    assert "scheduler" in leases, leases  # one scheduler lease per deployment in this tier
    table = subprocess.run(
        [sys.executable, "-m", "squall", *argv[:2], *argv[3:], "--postgres-schema", schema],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert table.returncode == 0, table.stderr
    assert "Node agents of deployment" in table.stdout and "ray-status" in table.stdout


def test_streams_command_reads_the_deployments_stores(
    lam: Any, server: SquallServer, schema: str, ray_address: str
) -> None:
    create(lam, "ray-stream-sink")
    kinesis = server.client("kinesis")
    kinesis.create_stream(StreamName="ray-cli", ShardCount=2)
    arn = kinesis.describe_stream_summary(StreamName="ray-cli")["StreamDescriptionSummary"]["StreamARN"]
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="ray-stream-sink", StartingPosition="TRIM_HORIZON", BatchSize=10
    )["UUID"]
    kinesis.put_record(StreamName="ray-cli", Data=b"x", PartitionKey="k")
    env = {
        **os.environ,
        "SQUALL_TIER": "ray",
        "SQUALL_POSTGRES_DSN": postgres_dsn(),
        "SQUALL_POSTGRES_SCHEMA": schema,
    }
    argv = [sys.executable, "-m", "squall", "streams", "--json", "--data-dir", str(server.data_dir)]
    deadline = time.monotonic() + 40
    while True:
        shown = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)
        [listed] = [m for m in report["mappings"] if m["uuid"] == mapping]
        if all(lag["behind"] == 0 and lag["held_by"] for lag in listed["lag"]) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    [stream] = [s for s in report["streams"] if s["name"] == "ray-cli"]
    assert len(stream["shards"]) == 2 and sum(shard["records"] for shard in stream["shards"]) == 1
    assert len(listed["lag"]) == 2
    assert all(lag["behind"] == 0 and lag["held_by"] for lag in listed["lag"]), listed
    lam.delete_event_source_mapping(UUID=mapping)


def test_node_agent_loss_fails_the_call_in_flight_and_new_work_goes_on(lam: Any) -> None:
    create(lam, "ray-slow")
    lam.update_function_configuration(FunctionName="ray-slow", Timeout=30)
    lam.get_waiter("function_updated_v2").wait(FunctionName="ray-slow", WaiterConfig={"Delay": 0.05})
    invoke(lam, "ray-slow", {})  # warm, so the next call is running its handler right away
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["response"] = lam.invoke(FunctionName="ray-slow", Payload=b'{"sleep": 20}')
        except ClientError as exc:
            outcome["error"] = exc.response

    caller = threading.Thread(target=call)
    started = time.monotonic()
    caller.start()
    time.sleep(2)
    [victim] = agents()
    kill(victim)
    caller.join(30)
    assert not caller.is_alive()
    assert time.monotonic() - started < 15, "the caller waited for the lost invocation's timeout"
    assert "error" in outcome, outcome
    error = outcome["error"]
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("ServiceException", 500)
    payload, log = invoke(lam, "ray-slow", {"after": "loss"})
    assert payload == {"echo": {"after": "loss"}}
    assert "Init Duration" in log  # a new agent, cold
    [survivor] = agents()
    assert survivor != victim


def test_an_idle_agent_that_dies_is_replaced_before_callers_notice(lam: Any) -> None:
    create(lam, "ray-idle-loss")
    invoke(lam, "ray-idle-loss", {})
    [victim] = agents()
    kill(victim)
    deadline = time.monotonic() + 20
    while agents() in ([victim], []) and time.monotonic() < deadline:
        time.sleep(0.2)
    [replacement] = agents()
    assert replacement != victim
    payload, log = invoke(lam, "ray-idle-loss", {"n": 3})
    assert payload == {"echo": {"n": 3}}
    assert "Init Duration" in log


def test_an_async_event_lost_with_its_node_agent_is_retried(lam: Any, server: SquallServer, schema: str) -> None:
    create(lam, "ray-async-slow")
    lam.update_function_configuration(FunctionName="ray-async-slow", Timeout=30)
    lam.get_waiter("function_updated_v2").wait(FunctionName="ray-async-slow", WaiterConfig={"Delay": 0.05})
    invoke(lam, "ray-async-slow", {})
    response = lam.invoke(FunctionName="ray-async-slow", InvocationType="Event", Payload=b'{"sleep": 4}')
    request_id = response["ResponseMetadata"]["RequestId"]
    deadline = time.monotonic() + 30
    while not busy_agents() and time.monotonic() < deadline:  # the event runs (the dispatcher took it)
        time.sleep(0.1)
    [victim] = agents()
    kill(victim)
    events = wait_usage(schema, "ray-async-slow", 1, trigger="event")
    # The dispatcher saw the lost invocation fail and ran the same event again on a new agent.
    assert f"lost during {request_id}" in server.log_path.read_text()
    assert [(r.request_id, r.outcome) for r in events] == [(request_id, "success")]


def test_server_help_names_the_ray_options(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from squall.cli.main import main

    text = CliRunner().invoke(main, ["server", "--help"]).output
    options = ("--tier [embedded|ray]", "--ray-address", "--postgres-dsn", "--postgres-schema", "--advertise-url")
    for option in (*options, "--executor", "--store"):
        assert option in text


def test_provisioned_environments_lost_with_their_agent_are_placed_again(lam: Any) -> None:
    create(lam, "ray-provisioned")
    version = lam.publish_version(FunctionName="ray-provisioned")["Version"]
    lam.put_provisioned_concurrency_config(
        FunctionName="ray-provisioned", Qualifier=version, ProvisionedConcurrentExecutions=1
    )

    def ready() -> bool:
        config = lam.get_provisioned_concurrency_config(FunctionName="ray-provisioned", Qualifier=version)
        return bool(config["Status"] == "READY" and config["AvailableProvisionedConcurrentExecutions"] == 1)

    wait(ready, 60, "the provisioned environment to be READY")
    [victim] = agents()
    kill(victim)
    # The replacement agent (next reconcile) gets the environment again from the provisioned reconcile.
    wait(lambda: agents() not in ([victim], []) and ready(), 60, "READY again on the replacement agent")
    payload, log = invoke(lam, f"ray-provisioned:{version}", {"n": 1})
    assert payload == {"echo": {"n": 1}}
    assert "Init Duration" not in log  # a pre-initialised environment, not a cold start
    lam.delete_provisioned_concurrency_config(FunctionName="ray-provisioned", Qualifier=version)


def wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)
