"""The first step of ``squall demo``: the sample function of ``examples/hello`` deployed, invoked
three times, then its log lines and the cost report, as a newcomer would do by hand."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile

from squall.demo.pipelines import EXAMPLES, Server

EXAMPLE = EXAMPLES / "hello" / "app.py"
ROLE = "arn:aws:iam::000000000000:role/demo"


def _package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(EXAMPLE, "app.py")
    return buffer.getvalue()


def run_hello(server: Server) -> None:
    """Deploy (or update) ``hello``, invoke it, then show ``squall logs`` and ``squall cost``."""
    lam = server.client("lambda")
    name = "hello"
    print(f"==> deploying {name} from examples/hello/app.py")
    try:
        lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": _package()},
            MemorySize=256,
            Timeout=10,
        )
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    except lam.exceptions.ResourceConflictException:
        lam.update_function_code(FunctionName=name, ZipFile=_package())
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    for who in ("Ada", "Grace", "Linus"):
        started = time.perf_counter()
        response = lam.invoke(FunctionName=name, Payload=json.dumps({"name": who}).encode())
        elapsed = (time.perf_counter() - started) * 1000
        print(f"==> invoke({who!r}) -> {response['Payload'].read().decode()}  [{elapsed:.1f} ms]")
    time.sleep(0.3)  # usage records and logs are written in batches
    print(f"==> squall logs {name}", flush=True)
    subprocess.run([sys.executable, "-m", "squall", "logs", name, "--since", "1"], check=True)
    print(f"==> squall cost --function {name}", flush=True)
    subprocess.run([sys.executable, "-m", "squall", "cost", "--function", name], check=True)
