"""Several Squall servers as one: a code store shared through PostgreSQL, two ``squall server --tier ray``
processes on one Ray cluster and one PostgreSQL schema, and the API endpoint sandboxes are given."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from squall.errors import StoreUnavailable
from squall.stores.code import CodeMissing, CodeStore
from tests.conftest import make_zip
from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema
from tests.contract.test_metadata_store import unavailable
from tests.e2e.conftest import SquallServer, free_port
from tests.e2e.test_hostile import create as create_from_zip
from tests.http_receiver import Receiver

HANDLER = """
import json, os

def handler(event, context):
    return {"endpoint": os.environ["AWS_ENDPOINT_URL"], "event": event}
"""


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    with scratch_schema(unavailable) as name:
        yield name


# --- 1. the code store, shared through PostgreSQL -------------------------------------------------
def shared_code_store(root: Path, schema: str) -> CodeStore:
    from squall.stores.postgres_code import PostgresPackages

    return CodeStore(root, PostgresPackages.open(postgres_dsn(), schema))


def test_a_package_stored_through_one_code_store_is_read_and_unpacked_by_another(tmp_path: Path, schema: str) -> None:
    package = make_zip({"app.py": HANDLER, "lib/data.txt": "shared"})
    first = shared_code_store(tmp_path / "a", schema)
    second = shared_code_store(tmp_path / "b", schema)
    try:
        ref = first.put(package)
        assert not (tmp_path / "b" / f"{ref.hex}.zip").exists()
        assert second.has(ref.hex)
        assert second.size_of(ref.hex) == len(package)
        assert second.total_size() == first.total_size() == len(package)
        tree = second.unpacked(ref.hex)  # fetched into b's cache, then unpacked there
        assert tree == tmp_path / "b" / ref.hex
        assert (tree / "lib" / "data.txt").read_text() == "shared"
        assert (tmp_path / "b" / f"{ref.hex}.zip").read_bytes() == package
        assert second.get(ref.hex) == package
        # The same bytes through the other store: the ref again, nothing stored twice.
        assert second.put(package) == ref
        assert second.total_size() == len(package)
        missing = hashlib.sha256(b"never stored").hexdigest()
        assert not second.has(missing)
        with pytest.raises(CodeMissing):
            second.get(missing)
        with pytest.raises(CodeMissing):
            second.unpacked(missing)
    finally:
        first.close()
        second.close()


def test_a_shared_package_whose_bytes_do_not_match_their_digest_is_refused(tmp_path: Path, schema: str) -> None:
    import psycopg

    claimed = hashlib.sha256(b"the real package").hexdigest()
    store = shared_code_store(tmp_path / "c", schema)  # creates the schema's tables
    try:
        with psycopg.connect(postgres_dsn(), autocommit=True) as conn:
            conn.execute(
                f"INSERT INTO {schema}.code_packages (sha256, size, body) VALUES (%s, %s, %s)",
                (claimed, 5, b"other"),
            )
        with pytest.raises(StoreUnavailable, match="does not match its SHA-256"):
            store.get(claimed)
        assert not (tmp_path / "c" / f"{claimed}.zip").exists()
    finally:
        store.close()


# --- 2. two servers, one Ray cluster, one PostgreSQL schema ------------------------------------------
def test_a_watched_store_hears_of_another_servers_writes(schema: str) -> None:
    from squall.stores.postgres import PostgresMetadataStore

    watched = PostgresMetadataStore(postgres_dsn(), schema)
    writer = PostgresMetadataStore(postgres_dsn(), schema)
    heard: list[str | None] = []
    try:
        watched.watch(heard.append)
        wait_for(lambda: None in heard, "the first (re)connect report")
        writer.set_reserved_concurrency("watched-fn", 5)
        writer.delete_alias("watched-fn", "live")
        wait_for(lambda: heard.count("watched-fn") == 2, "two notifications")
    finally:
        watched.close()
        writer.close()


def wait_for(done: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(schema: str) -> Iterator[str]:
    """A three-node Ray cluster on this machine (a head and two worker nodes, free ports), as the issue
    asks, which this test process joins to see the agents."""
    with ray_cluster(schema) as nodes:
        yield str(nodes.address)


@contextlib.contextmanager
def ray_cluster(schema: str) -> Iterator[Any]:
    """The ``ray.cluster_utils.Cluster`` behind ``cluster``, joined by this process; the agents of the
    deployment on ``schema`` leave their work directories behind, removed at the end."""
    pytest.importorskip("ray")
    import ray
    import ray._private.utils
    from ray.cluster_utils import Cluster

    with pytest.MonkeyPatch.context() as patch:
        # Cluster records itself as this machine's "current" Ray, which a bare ray.init() of any
        # other process on the machine would then join; this one is private to the module.
        patch.setattr(ray._private.utils, "write_ray_address", lambda *args, **kwargs: None)
        nodes = Cluster(
            initialize_head=True,
            head_node_args={"gcs_server_port": free_port(), "include_dashboard": False, **NODE},
        )
    try:
        for _ in range(NODES - 1):
            nodes.add_node(**NODE)
        ray.init(address=nodes.address, namespace="squall", log_to_driver=False)
        yield nodes
    finally:
        ray.shutdown()
        nodes.shutdown()
        # The agents' work (they live as long as the cluster, which stopped them unawares).
        shutil.rmtree(Path(tempfile.gettempdir()) / "squall-ray" / schema, ignore_errors=True)


#: Equal nodes, so that placement alone would send every server's cold starts to the same one.
NODE = {"num_cpus": 1, "memory": 4 * 2**30}
NODES = 3


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, cluster: str, schema: str) -> Iterator[list[SquallServer]]:
    """Servers A and B: own data directories, the same cluster, schema and root key; B advertises
    ``localhost`` instead of its loopback address."""
    root = tmp_path_factory.mktemp("multi")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SQUALL_RAY_AGENT_ORPHAN_S", str(ORPHAN_S))
        a = SquallServer(root / "a", tier_args(cluster, schema))
        b = SquallServer(root / "b", tier_args(cluster, schema))
        b.extra_args += ["--advertise-url", f"http://localhost:{b.port}"]
        started: list[SquallServer] = []
        try:
            for server in (a, b):
                server.start()
                started.append(server)
                if server is a:  # one account: B gets A's root key
                    b.data_dir.mkdir(parents=True)
                    shutil.copy(a.data_dir / "credentials", b.data_dir / "credentials")
            yield started
        finally:
            for server in started:
                server.stop()


#: Long enough for a server to stop in between its last call and the check that the agents live.
ORPHAN_S = 15.0


def tier_args(cluster: str, schema: str) -> list[str]:
    # The spelling of the tier (test_streams_postgres and test_ray_tier use --tier and friends).
    return ["--executor", f"ray://{cluster}", "--store", postgres_dsn(), "--postgres-schema", schema]


def create(lam: Any, name: str, source: str = HANDLER, **kwargs: Any) -> None:
    create_from_zip(lam, name, make_zip({"app.py": source}), **kwargs)


def invoke(lam: Any, name: str, event: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), LogType="Tail")
    payload = response["Payload"].read()
    assert "FunctionError" not in response, payload
    return json.loads(payload), base64.b64decode(response["LogResult"]).decode()


def agents(cluster_name: str) -> dict[str, str]:
    """The deployment's live node agents: name -> actor id."""
    import ray

    named = ray.util.list_named_actors(all_namespaces=True)
    found = {}
    prefix = f"agent-{cluster_name}-"
    for name in [a["name"] for a in named if a["namespace"] == "squall" and a["name"].startswith(prefix)]:
        with contextlib.suppress(ValueError):  # it died since it was listed
            found[name] = ray.get_actor(name, namespace="squall")._actor_id.hex()
    return found


@pytest.mark.slow
def test_a_function_created_through_one_server_is_listed_got_updated_and_invoked_through_the_other(
    servers: list[SquallServer],
) -> None:
    a, b = (server.client("lambda") for server in servers)
    create(a, "multi-crud")
    assert "multi-crud" in [f["FunctionName"] for f in b.list_functions()["Functions"]]
    got = b.get_function(FunctionName="multi-crud")["Configuration"]
    assert got["CodeSha256"] == a.get_function(FunctionName="multi-crud")["Configuration"]["CodeSha256"]
    assert got["State"] == "Active"
    assert invoke(b, "multi-crud", {"n": 1})[0]["event"] == {"n": 1}  # code A stored, run through B

    # New code through B: A serves it as soon as the change notification reaches it.
    b.update_function_code(FunctionName="multi-crud", ZipFile=make_zip({"app.py": HANDLER_V2}))
    b.get_waiter("function_updated_v2").wait(FunctionName="multi-crud", WaiterConfig={"Delay": 0.05})
    updated = b.get_function(FunctionName="multi-crud")["Configuration"]
    wait_for(
        lambda: a.get_function(FunctionName="multi-crud")["Configuration"]["RevisionId"] == updated["RevisionId"],
        "A to see B's update",
    )
    assert invoke(a, "multi-crud", {"n": 2})[0] == {"version": 2, "event": {"n": 2}}
    b.update_function_configuration(FunctionName="multi-crud", Description="through B")
    b.get_waiter("function_updated_v2").wait(FunctionName="multi-crud", WaiterConfig={"Delay": 0.05})
    wait_for(
        lambda: a.get_function(FunctionName="multi-crud")["Configuration"]["Description"] == "through B",
        "A to see B's configuration",
    )
    a.delete_function(FunctionName="multi-crud")
    assert "multi-crud" not in [f["FunctionName"] for f in b.list_functions()["Functions"]]
    wait_for(lambda: gone(b, "multi-crud"), "B to forget the deleted function")


def gone(lam: Any, name: str) -> bool:
    try:
        lam.invoke(FunctionName=name, Payload=b"{}")
    except lam.exceptions.ResourceNotFoundException:
        return True
    return False


HANDLER_V2 = """
def handler(event, context):
    return {"version": 2, "event": event}
"""


@pytest.mark.slow
def test_the_servers_share_one_agent_per_node_and_stay_warm_whichever_receives_the_call(
    servers: list[SquallServer], schema: str
) -> None:
    a, b = (server.client("lambda") for server in servers)
    assert len(agents(schema)) == NODES  # one agent per node, whatever the number of servers
    create(a, "multi-busy", SLEEPER, Timeout=30)
    create(a, "multi-warm")
    # While A runs a call on the node both servers would pick for a cold start, A starts
    # multi-warm's sandbox on the other node; B must find it there at once, not cold start.
    busy = threading.Thread(target=invoke, args=(a, "multi-busy", {"sleep": 4}))
    busy.start()
    try:
        wait_for(lambda: sum(status.busy for status in agent_statuses(schema).values()) == 1, "the busy call")
        _, log = invoke(a, "multi-warm")
        assert "Init Duration" in log
        for client in (b, a, b, a, b, b, a):
            _, log = invoke(client, "multi-warm")
            assert "Init Duration" not in log, log
    finally:
        busy.join(30)
    records = wait_usage(schema, "multi-warm", 8)
    assert [r.cold for r in records] == [True] + [False] * 7
    warm = {name: n for name, status in agent_statuses(schema).items() for key, n in status.idle.items()
            if key.startswith("multi-warm:")}  # fmt: skip
    assert list(warm.values()) == [1]  # one sandbox in the whole cluster
    assert len(agents(schema)) == NODES


SLEEPER = """
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {}
"""


def agent_statuses(cluster_name: str) -> dict[str, Any]:
    """The live agents' statuses. An agent whose node was removed stays listed until Ray marks the node
    dead (it misses heartbeats first): it is left out (dead or not answering), as one gone by the lookup is."""
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError

    statuses = {}
    for name in agents(cluster_name):
        try:
            statuses[name] = ray.get(ray.get_actor(name, namespace="squall").status.remote(), timeout=30)
        except (ValueError, RayActorError, GetTimeoutError):
            continue
    return statuses


def wait_usage(schema: str, name: str, count: int) -> list[Any]:
    """The function's usage records once ``count`` are there (servers write them in batches)."""
    from squall.stores.postgres import PostgresMetadataStore

    store = PostgresMetadataStore(postgres_dsn(), schema)
    try:
        deadline = time.monotonic() + 40
        while len(records := store.usage(function_name=name)) < count and time.monotonic() < deadline:
            time.sleep(0.3)
        return records
    finally:
        store.close()


@pytest.mark.slow
def test_a_server_that_stops_leaves_the_agents_to_the_others(
    servers: list[SquallServer], cluster: str, schema: str, tmp_path: Path
) -> None:
    a = servers[0].client("lambda")
    before = agents(schema)
    third = SquallServer(tmp_path / "c", tier_args(cluster, schema))
    third.data_dir.mkdir()
    shutil.copy(servers[0].data_dir / "credentials", third.data_dir / "credentials")
    third.start()
    try:
        c = third.client("lambda")
        create(c, "multi-third")
        _, log = invoke(c, "multi-third")
        assert "Init Duration" in log
        assert agents(schema) == before  # it joined the agents, started none
    finally:
        assert third.stop() == 0
    assert agents(schema) == before
    _, log = invoke(a, "multi-third")  # the sandbox warmed through the stopped server serves A
    assert "Init Duration" not in log


@pytest.mark.slow
def test_node_agents_exit_once_no_server_calls_them(
    cluster: str, servers: list[SquallServer], schema: str, tmp_path: Path
) -> None:
    # A deployment of its own (another schema) on the same cluster: its agents are not A's and B's.
    with scratch_schema(unavailable) as other:
        alone = SquallServer(tmp_path / "alone", tier_args(cluster, other))
        alone.start()
        try:
            create(alone.client("lambda"), "multi-alone")
            invoke(alone.client("lambda"), "multi-alone")
            assert len(agents(other)) == NODES
            work = Path(tempfile.gettempdir()) / "squall-ray" / other
            assert work.is_dir()
        finally:
            assert alone.stop() == 0
        assert len(agents(other)) == NODES  # a stopping server kills no agent
        wait_for(lambda: not agents(other), "the orphaned agents to exit", timeout=ORPHAN_S + 30)
        wait_for(lambda: not work.exists(), "their work directory to go")
    assert len(agents(schema)) == NODES  # A's and B's live on


# --- 3. the API endpoint sandboxes get ------------------------------------------------------------------
CALLER = """
import json, os, urllib.request

def handler(event, context):
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    with urllib.request.urlopen(endpoint + "/_squall/health", timeout=10) as answer:
        return {"endpoint": endpoint, "health": json.loads(answer.read())}
"""


@pytest.mark.slow
def test_sandboxes_get_the_advertised_url_and_reach_the_api_through_it(servers: list[SquallServer]) -> None:
    a, b = servers
    create(b.client("lambda"), "multi-advertised", CALLER)
    payload, _ = invoke(b.client("lambda"), "multi-advertised")
    assert payload == {"endpoint": f"http://localhost:{b.port}", "health": {"status": "ok"}}
    create(a.client("lambda"), "multi-default", CALLER)
    payload, _ = invoke(a.client("lambda"), "multi-default")
    assert payload == {"endpoint": a.url, "health": {"status": "ok"}}


CALLS_BACK = """
import boto3

def handler(event, context):
    sts = boto3.client("sts", endpoint_url=event["endpoint"], region_name="us-east-1")
    return {"arn": sts.get_caller_identity()["Arn"]}
"""


@pytest.mark.slow
def test_a_sandbox_started_through_one_server_is_accepted_by_the_other(servers: list[SquallServer]) -> None:
    # Behind a load balancer a function's call back may reach any server, with its own key.
    a, b = servers
    create(a.client("lambda"), "multi-key", CALLS_BACK, Timeout=30)
    for server in (a, b):
        payload, _ = invoke(a.client("lambda"), "multi-key", {"endpoint": server.url})
        assert payload["arn"].endswith("multi-key"), payload


@pytest.mark.slow
def test_reserved_concurrency_holds_for_the_servers_together(servers: list[SquallServer]) -> None:
    a, b = (server.client("lambda") for server in servers)
    create(a, "multi-serial", SLEEPER, Timeout=30)
    a.put_function_concurrency(FunctionName="multi-serial", ReservedConcurrentExecutions=1)
    wait_for(lambda: b.get_function_concurrency(FunctionName="multi-serial").get("ReservedConcurrentExecutions") == 1,
             "B to see the reservation")  # fmt: skip
    busy = threading.Thread(target=invoke, args=(a, "multi-serial", {"sleep": 6}))
    busy.start()
    try:
        time.sleep(2)  # A's call runs, and A has published it (every 0.2 s)
        with pytest.raises(b.exceptions.TooManyRequestsException) as refused:
            b.invoke(FunctionName="multi-serial", Payload=b"{}")
        assert refused.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    finally:
        busy.join(30)
    wait_for(lambda: _invokes(b, "multi-serial"), "B's call once A's has ended")


def _invokes(lam: Any, name: str) -> bool:
    try:
        lam.invoke(FunctionName=name, Payload=b"{}")
        return True
    except lam.exceptions.TooManyRequestsException:
        return False


def test_aliases_and_reservations_set_through_one_server_govern_the_other(servers: list[SquallServer]) -> None:
    a, b = (server.client("lambda") for server in servers)
    create(a, "multi-alias")
    first = a.publish_version(FunctionName="multi-alias")["Version"]
    a.create_alias(FunctionName="multi-alias", Name="live", FunctionVersion=first)
    assert b.invoke(FunctionName="multi-alias", Qualifier="live", Payload=b"{}")["ExecutedVersion"] == first
    a.update_function_code(FunctionName="multi-alias", ZipFile=make_zip({"app.py": HANDLER_V2}))
    a.get_waiter("function_updated_v2").wait(FunctionName="multi-alias", WaiterConfig={"Delay": 0.05})
    second = a.publish_version(FunctionName="multi-alias")["Version"]
    a.update_alias(FunctionName="multi-alias", Name="live", FunctionVersion=second)
    wait_for(
        lambda: b.invoke(FunctionName="multi-alias", Qualifier="live", Payload=b"{}")["ExecutedVersion"] == second,
        "B to follow the alias",
    )
    a.put_function_concurrency(FunctionName="multi-alias", ReservedConcurrentExecutions=0)
    wait_for(lambda: b.get_function_concurrency(FunctionName="multi-alias").get("ReservedConcurrentExecutions") == 0,
             "B to see the reservation")  # fmt: skip
    with pytest.raises(b.exceptions.TooManyRequestsException):
        b.invoke(FunctionName="multi-alias", Payload=b"{}")
    a.delete_function_concurrency(FunctionName="multi-alias")
    wait_for(lambda: "ReservedConcurrentExecutions" not in b.get_function_concurrency(FunctionName="multi-alias"),
             "B to see it removed")  # fmt: skip
    assert invoke(b, "multi-alias")[0]["version"] == 2


@pytest.mark.slow
def test_a_function_url_and_an_http_route_made_through_one_server_are_served_by_the_other(
    servers: list[SquallServer], schema: str
) -> None:
    import httpx

    from tests.e2e.test_function_urls import url_id_of
    from tests.e2e.test_gateway import http_api
    from tests.e2e.test_iam_sts import TRUST

    a, b = servers
    lam = a.client("lambda")
    create(lam, "multi-url")
    arn = lam.get_function(FunctionName="multi-url")["Configuration"]["FunctionArn"]
    url_id = url_id_of(lam.create_function_url_config(FunctionName="multi-url", AuthType="NONE")["FunctionUrl"])
    api_id, _ = http_api(a.client("apigatewayv2"), arn, ["GET /items/{id}"])
    with httpx.Client(base_url=f"http://127.0.0.1:{b.gateway_port}", timeout=30) as through_b:
        # The configs are in B's mirror by the time their creation returned (the notification is
        # delivered on commit); the waits only cover a slow machine.
        wait_for(lambda: through_b.get(f"/_lambda-url/{url_id}/hello").status_code == 200, "B to serve the URL")
        event = through_b.get(f"/_lambda-url/{url_id}/hello?x=1").json()["event"]
        assert event["rawPath"] == "/hello" and event["queryStringParameters"] == {"x": "1"}
        wait_for(lambda: through_b.get(f"/{api_id}/items/7").status_code == 200, "B to serve the route")
        assert through_b.get(f"/{api_id}/items/7").json()["event"]["pathParameters"] == {"id": "7"}
        # Deleted through B: gone from A's gateway too.
        b.client("lambda").delete_function_url_config(FunctionName="multi-url")
        b.client("apigatewayv2").delete_api(ApiId=api_id)
        with httpx.Client(base_url=f"http://127.0.0.1:{a.gateway_port}", timeout=30) as through_a:
            wait_for(lambda: through_a.get(f"/_lambda-url/{url_id}/").status_code == 404, "A to drop the URL")
            wait_for(lambda: through_a.get(f"/{api_id}/items/7").status_code == 404, "A to drop the API")
    b.client("iam").create_role(RoleName="multi-role", AssumeRolePolicyDocument=json.dumps(TRUST))
    assert a.client("iam").get_role(RoleName="MULTI-ROLE")["Role"]["RoleName"] == "multi-role"

    # Provisioned concurrency asked through A: placed once (by the holder of its lease), READY through B.
    version = lam.publish_version(FunctionName="multi-url")["Version"]
    lam.put_provisioned_concurrency_config(
        FunctionName="multi-url", Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    other = b.client("lambda")
    wait_for(
        lambda: (
            other.get_provisioned_concurrency_config(FunctionName="multi-url", Qualifier=version)["Status"] == "READY"
        ),
        "B to report the environment A's config asked for",
    )
    from squall.stores.postgres import PostgresLeaseStore

    leases = PostgresLeaseStore(postgres_dsn(), schema)
    try:
        holders = {name: owner for name, owner in leases.holders().items() if name.startswith("provisioned/")}
    finally:
        leases.close()
    assert list(holders) == [f"provisioned/multi-url/{version}"]
    other.delete_provisioned_concurrency_config(FunctionName="multi-url", Qualifier=version)
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName="multi-url", Qualifier=version)


def test_buckets_objects_uploads_and_websites_are_shared_by_the_servers(servers: list[SquallServer]) -> None:
    import httpx

    a, b = (server.client("s3") for server in servers)
    a.create_bucket(Bucket="multi-site")
    body = bytes(range(256)) * 4096 * 9  # 9 MiB: several chunks
    etag = a.put_object(Bucket="multi-site", Key="data.bin", Body=body)["ETag"]
    assert b.head_object(Bucket="multi-site", Key="data.bin")["ETag"] == etag
    assert b.get_object(Bucket="multi-site", Key="data.bin")["Body"].read() == body
    ranged = b.get_object(Bucket="multi-site", Key="data.bin", Range="bytes=1048570-1048585")["Body"].read()
    assert ranged == body[1048570:1048586]
    # If-None-Match through B after A created the key: refused, as on one server.
    with pytest.raises(b.exceptions.ClientError, match="PreconditionFailed"):
        b.put_object(Bucket="multi-site", Key="data.bin", Body=b"x", IfNoneMatch="*")

    upload = b.create_multipart_upload(Bucket="multi-site", Key="big.bin")["UploadId"]
    parts = [body[: 5 * 2**20], b"tail"]
    done = [
        {
            "PartNumber": n,
            "ETag": client.upload_part(Bucket="multi-site", Key="big.bin", UploadId=upload, PartNumber=n, Body=data)[
                "ETag"
            ],
        }
        for n, (client, data) in enumerate(zip([a, b], parts, strict=True), start=1)
    ]
    a.complete_multipart_upload(Bucket="multi-site", Key="big.bin", UploadId=upload, MultipartUpload={"Parts": done})
    assert b.get_object(Bucket="multi-site", Key="big.bin")["Body"].read() == b"".join(parts)

    a.put_object(Bucket="multi-site", Key="index.html", Body=b"<h1>shared</h1>", ContentType="text/html")
    b.put_bucket_website(Bucket="multi-site", WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    for server in servers:
        page = httpx.get(f"http://127.0.0.1:{server.gateway_port}/_s3-website/multi-site/")
        assert (page.status_code, page.text) == (200, "<h1>shared</h1>")
    assert [o["Key"] for o in a.list_objects_v2(Bucket="multi-site")["Contents"]] == [
        "big.bin",
        "data.bin",
        "index.html",
    ]


def test_a_topic_made_through_one_server_is_confirmed_published_and_delivered_through_either(
    servers: list[SquallServer],
) -> None:
    a, b = (server.client("sns") for server in servers)
    receiver = Receiver()
    arn = a.create_topic(Name="multi-topic", Attributes={"DisplayName": "shared"})["TopicArn"]
    try:
        assert arn in [t["TopicArn"] for t in b.list_topics()["Topics"]]
        assert b.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "shared"
        b.subscribe(TopicArn=arn, Protocol="http", Endpoint=receiver.url)
        confirmation = receiver.next().json()  # sent by whichever server's deliverer claimed it
        assert confirmation["Type"] == "SubscriptionConfirmation"
        subscription = a.confirm_subscription(TopicArn=arn, Token=confirmation["Token"])["SubscriptionArn"]
        assert [s["SubscriptionArn"] for s in b.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]] == [
            subscription
        ]
        sent = {client.publish(TopicArn=arn, Message=f"through {n}")["MessageId"] for n, client in (("a", a), ("b", b))}
        got = [receiver.next().json() for _ in sent]
        assert {d["MessageId"] for d in got} == sent and {d["Type"] for d in got} == {"Notification"}
        time.sleep(0.5)  # nothing sent twice by the other server
        assert receiver.requests.empty() and receiver.count == 3
    finally:
        receiver.close()
        b.delete_topic(TopicArn=arn)


COPIER = """
import os

import boto3


def handler(event, context):
    ddb = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    for record in event["Records"]:
        body = record["dynamodb"]
        ddb.put_item(TableName="multi-seen", Item={"pk": body["Keys"]["pk"], "seq": {"S": body["SequenceNumber"]}})
"""


@pytest.mark.slow
def test_tables_and_their_streams_are_shared_by_the_servers(servers: list[SquallServer]) -> None:
    a, b = (server.client("dynamodb") for server in servers)
    a.create_table(
        TableName="multi-items",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "kind", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-kind",
                "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    b.create_table(
        TableName="multi-seen",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert {"multi-items", "multi-seen"} <= set(a.list_tables()["TableNames"])

    # ADD from both servers at once loses no increment; of two conditional puts, one wins.
    counter = {"TableName": "multi-items", "Key": {"pk": {"S": "counter"}}}
    add = {"UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}

    def bump(client: Any) -> None:
        for _ in range(20):
            client.update_item(**counter, **add)

    bumpers = [threading.Thread(target=bump, args=(client,)) for client in (a, b) * 2]
    for thread in bumpers:
        thread.start()
    for thread in bumpers:
        thread.join(60)
    assert b.get_item(**counter, ConsistentRead=True)["Item"]["n"] == {"N": "80"}
    once = {"TableName": "multi-items", "Item": {"pk": {"S": "once"}, "kind": {"S": "k"}}}
    a.put_item(**once, ConditionExpression="attribute_not_exists(pk)")
    with pytest.raises(b.exceptions.ConditionalCheckFailedException):
        b.put_item(**once, ConditionExpression="attribute_not_exists(pk)")
    by_kind = b.query(
        TableName="multi-items",
        IndexName="by-kind",
        KeyConditionExpression="kind = :k",
        ExpressionAttributeValues={":k": {"S": "k"}},
    )
    assert [item["pk"]["S"] for item in by_kind["Items"]] == ["once"]

    # The stream: an iterator from A is good on B; a mapping made through B copies writes through both.
    stream_arn = b.describe_table(TableName="multi-items")["Table"]["LatestStreamArn"]
    streams_a, streams_b = (server.client("dynamodbstreams") for server in servers)
    shard = streams_a.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams_a.get_shard_iterator(StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    assert len(streams_b.get_records(ShardIterator=iterator["ShardIterator"])["Records"]) == 81
    lam = servers[1].client("lambda")
    create(lam, "multi-copier", COPIER, Timeout=30)
    lam.create_event_source_mapping(
        EventSourceArn=stream_arn, FunctionName="multi-copier", StartingPosition="TRIM_HORIZON", BatchSize=100
    )
    for i in range(10):
        (a, b)[i % 2].put_item(TableName="multi-items", Item={"pk": {"S": f"item-{i}"}})
    expected = {"counter", "once"} | {f"item-{i}" for i in range(10)}
    wait_for(
        lambda: {item["pk"]["S"] for item in a.scan(TableName="multi-seen")["Items"]} == expected,
        "the function to copy every item written through either server",
    )
