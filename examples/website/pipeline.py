"""Serverless website, driven: publish the site, sign up and log in, chat with the token, and
check that requests without a valid token never reach the chat function."""

import base64
import json
import mimetypes
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from squall.demo.pipelines import Demo, Outcome, PipelineFailed

TITLE = "Serverless website: a static chat page, login with hashed passwords and JWTs, an authorized history API"
LAYER_REQUIREMENTS = ["pyjwt[crypto]>=2.8"]
PASSWORD = "correct horse battery staple"


def prepare(folder: Path, progress: Callable[[str], None]) -> None:
    """What ``sam build`` would do for the layer: PyJWT and cryptography for python3.12 into layer/python."""
    target = folder / "layer" / "python"
    if (target / "jwt").is_dir() and (target / "cryptography").is_dir():
        progress("layer: PyJWT and cryptography already in layer/")
        return
    progress("layer: installing PyJWT and cryptography for python3.12 into layer/")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target",
               str(target), "--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version",
               "3.12", "--only-binary=:all:", "--upgrade", *LAYER_REQUIREMENTS]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise PipelineFailed(f"pip could not build the layer: {done.stderr.strip()[-500:]}")
    progress("layer: ready")


def drive(demo: Demo) -> Outcome:
    site, api = demo.outputs["SiteBucket"], f"{demo.server.gateway_url}/{demo.outputs['ApiId']}"
    uploaded = upload_site(demo, site)
    status, page, content_type = http(f"{demo.server.gateway_url}/_s3-website/{site}/")
    if status != 200 or '<script src="app.js">' not in page:
        raise PipelineFailed(f"the site's index answered {status}: {page[:200]}")
    preflight = http(f"{api}/messages", method="OPTIONS", headers={
        "Origin": demo.outputs["SiteUrl"], "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})  # fmt: skip
    demo.progress(f"site published ({', '.join(uploaded)}); signing up and logging in")

    began_ms = int(time.time() * 1000)
    refused = [http(f"{api}/messages")[0], http(f"{api}/messages", headers=bearer(forged_token(demo)))[0]]
    user = f"ada-{secrets.token_hex(3)}"
    signed_up = http(f"{api}/signup", {"username": user, "password": PASSWORD})[0]
    wrong = http(f"{api}/login", {"username": user, "password": "not the password"})[0]
    status, answer, _ = http(f"{api}/login", {"username": user, "password": PASSWORD})
    if status != 200:
        raise PipelineFailed(f"login answered {status}: {answer}")
    token = json.loads(answer)["token"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    said = [f"hello from {user}", f"{user} was here at {time.strftime('%H:%M:%S')}"]
    posted = [http(f"{api}/messages", {"text": text}, headers=bearer(token))[0] for text in said]
    status, answer, _ = http(f"{api}/messages", headers=bearer(token))
    history = json.loads(answer)["messages"] if status == 200 else []
    demo.progress("chatted; counting the chat function's invocations")
    chat_runs = demo.wait_for(lambda: invocations_since(demo, began_ms, 3), "log of the chat function's 3 calls")

    tail = [(m["author"], m["text"]) for m in history[-2:]]
    ok = (
        content_type.startswith("text/html")
        and preflight[0] == 204
        and refused == [401, 401]
        and (signed_up, wrong, posted) == (201, 401, [201, 201])
        and header.get("alg") == "RS256"
        and tail == [(user, text) for text in said]
        and chat_runs == 3
    )
    return Outcome(
        went_in=[
            f"site: {', '.join(uploaded)} -> s3://{site} (website endpoint)",
            f"sign-up of {user}; a login with a wrong password, then with the right one",
            "GET /messages without a token and with a forged one; two POSTs and a GET with the token",
        ],
        came_out=[
            f"GET / on the website: 200 {content_type} ({len(page)} bytes); CORS preflight from the site: "
            f"{preflight[0]}",
            f"sign-up {signed_up}; wrong password {wrong}; right password 200 with an {header.get('alg')} token "
            f"(kid {header.get('kid')})",
            f"no token {refused[0]}, forged token {refused[1]}: the chat function ran {chat_runs} times "
            "(only for the 3 calls with a valid token)",
            *[f"history: {author}: {text}" for author, text in tail],
        ],
        ok=ok,
    )


def upload_site(demo: Demo, bucket: str) -> list[str]:
    """What ``aws s3 sync site/ s3://bucket`` does, plus the config.json a deploy script writes."""
    s3, names = demo.client("s3"), []
    for path in sorted((demo.folder / "site").iterdir()):
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        s3.put_object(Bucket=bucket, Key=path.name, Body=path.read_bytes(), ContentType=content_type)
        names.append(path.name)
    config = json.dumps({"api": demo.outputs["ApiEndpoint"]}).encode()
    s3.put_object(Bucket=bucket, Key="config.json", Body=config, ContentType="application/json")
    return [*names, "config.json"]


def forged_token(demo: Demo) -> str:
    """A token with the right claims, signed with HS256 and no key the issuer published."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"iss": demo.outputs["SiteUrl"], "aud": "chat", "sub": "mallory", "exp": int(time.time()) + 600}
    return f"{part({'alg': 'HS256', 'kid': 'guess'})}.{part(claims)}.{part({'sig': 'none'})}"


def invocations_since(demo: Demo, began_ms: int, expected: int) -> int:
    """How many times the chat function started since ``began_ms`` (its START log lines), once at
    least ``expected`` are there; 0 before."""
    logs, count, token = demo.client("logs"), 0, None
    while True:
        try:
            page = logs.filter_log_events(
                logGroupName=f"/aws/lambda/{demo.outputs['ChatFunction']}", startTime=began_ms, filterPattern="START",
                **({"nextToken": token} if token else {}),
            )  # fmt: skip
        except logs.exceptions.ResourceNotFoundException:
            return 0  # no line written yet: log lines are committed in batches, a moment after the calls
        count += sum(1 for event in page["events"] if event["message"].startswith("START RequestId"))
        token = page.get("nextToken")
        if not token:
            return count if count >= expected else 0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def http(
    url: str, body: dict[str, Any] | None = None, method: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """(status, body text, content type) of one request, error statuses included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers.get("Content-Type", "")
