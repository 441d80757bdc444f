"""``make demo``: start Squall, deploy the sample function, invoke it, show its logs and cost.

It uses the default ports (8990 and 8991) and the default data dir (``.squall``), exactly what a
user gets from ``squall server`` (``SQUALL_*`` variables change them), and stops the server when done.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import urllib.request
import zipfile
from configparser import ConfigParser
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello" / "app.py"
ROLE = "arn:aws:iam::000000000000:role/demo"


def _package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(EXAMPLE, "app.py")
    return buffer.getvalue()


def _wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(
                "squall server exited: is its port in use? (see the lines above; SQUALL_PORT and "
                "SQUALL_GATEWAY_PORT choose others)"
            )
        try:
            with urllib.request.urlopen(f"{url}/_squall/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("squall server did not become healthy within 60 s")


def main() -> None:
    import boto3
    from botocore.config import Config

    from squall.config import Settings

    settings = Settings.load()  # the same SQUALL_* variables the server reads
    data_dir = settings.data_dir
    url = settings.endpoint_url
    print(f"==> starting squall server on {url} (data in {data_dir}/)", flush=True)
    server = subprocess.Popen([sys.executable, "-m", "squall", "server", "--log-level", "warning"])
    try:
        _wait_healthy(url, server)
        creds = ConfigParser()
        creds.read(data_dir / "credentials")
        lam = boto3.client(
            "lambda",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=creds["squall"]["aws_access_key_id"],
            aws_secret_access_key=creds["squall"]["aws_secret_access_key"],
            config=Config(retries={"max_attempts": 0}),
        )
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
        print("==> squall cost", flush=True)
        subprocess.run([sys.executable, "-m", "squall", "cost"], check=True)
    finally:
        server.terminate()
        server.wait(30)
    print("==> done: the server stopped and left no process behind")


if __name__ == "__main__":
    main()
