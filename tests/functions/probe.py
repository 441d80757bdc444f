"""A test function that does whatever its event asks, to probe Squall's runtime from inside."""

import json
import os
import signal
import sys
import time

LOADED_AT = time.time()
print("probe module loaded")


def handler(event, context):
    action = event.get("action", "echo")
    if action == "echo":
        return {"event": event, "request_id": context.aws_request_id}
    if action == "context":
        cc = context.client_context
        return {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "identity": context.identity is not None,
            "client_custom": cc.custom if cc else None,
            "client_app_title": cc.client.app_title if cc and cc.client else None,
        }
    if action == "env":
        return dict(os.environ)
    if action == "print":
        print(event["text"])
        sys.stderr.write("to stderr\n")
        import logging

        logging.getLogger().warning("a warning")
        return "printed"
    if action == "sleep":
        time.sleep(event["seconds"])
        return "slept"
    if action == "raise":
        raise ValueError(event.get("message", "boom"))
    if action == "exit":
        os._exit(event.get("code", 1))
    if action == "unserializable":
        return {1, 2, 3}
    if action == "size":
        return "x" * event["bytes"]
    if action == "memory":
        hog = []
        for _ in range(event["mb"]):
            hog.append(bytearray(1024 * 1024))
            hog[-1][::4096] = b"x" * len(hog[-1][::4096])
        return "survived"
    if action == "read":
        try:
            with open(event["path"], "rb") as fh:
                return {"ok": True, "data": fh.read(200).decode("utf-8", "replace")}
        except OSError as exc:
            return {"ok": False, "error": type(exc).__name__}
    if action == "listdir":
        try:
            return {"ok": True, "entries": sorted(os.listdir(event["path"]))}
        except OSError as exc:
            return {"ok": False, "error": type(exc).__name__}
    if action == "write":
        try:
            with open(event["path"], "w") as fh:
                fh.write("squall was here")
            return {"ok": True}
        except OSError as exc:
            return {"ok": False, "error": type(exc).__name__}
    if action == "environ_of":
        try:
            with open(f"/proc/{event['pid']}/environ", "rb") as fh:
                return {"ok": True, "data": fh.read(200).decode("utf-8", "replace")}
        except OSError as exc:
            return {"ok": False, "error": type(exc).__name__}
    if action == "pid":
        return {"pid": os.getpid(), "uid": os.getuid()}
    if action == "scan_environ":
        # Look for a secret in any process's environment we can read.
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/environ", "rb") as fh:
                        if event["needle"].encode() in fh.read():
                            found.append(int(entry))
                except OSError:
                    pass
        return {"found": [p for p in found if p != os.getpid()]}
    if action == "fork_bomb":
        children = 0
        try:
            for _ in range(5000):
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                children += 1
        except OSError as exc:
            return {"children": children, "error": type(exc).__name__}
        return {"children": children, "error": None}
    if action == "ignore_sigterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(event.get("seconds", 60))
        return "still here"
    if action == "busy":
        while True:
            pass
    if action == "tmp":
        path = "/tmp/squall-probe.txt"
        previous = None
        if os.path.exists(path):
            with open(path) as fh:
                previous = fh.read()
        with open(path, "w") as fh:
            fh.write(event.get("value", "v"))
        return {"previous": previous}
    if action == "loaded_at":
        return LOADED_AT
    return json.dumps({"unknown": action})


def _daemon(seconds):
    """Double-fork a detached process that sleeps: it must not outlive the sandbox."""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(seconds)
        os._exit(0)
    return "daemonised"


_original_handler = handler


def handler(event, context):
    if event.get("action") == "daemon":
        return _daemon(event.get("seconds", 300))
    return _original_handler(event, context)


# --- Hostile probes for tests/e2e/test_hostile.py: looked up before the actions above. ---------


import contextlib  # noqa: E402


def _contains(event, context):
    """Whether the file at ``path`` holds ``needle`` anywhere (the whole file is read)."""
    try:
        with open(event["path"], "rb") as fh:
            return {"ok": True, "found": event["needle"].encode() in fh.read()}
    except OSError as exc:
        return {"ok": False, "error": type(exc).__name__}


def _exec_environ(event, context):
    """Search the environment block the kernel laid out at exec time, in this process's own memory.

    ``os.environ`` only shows what the sandbox was given, but the block itself is what the zygote
    was started with, and a fork inherits it. /proc/self/stat says where it is.
    """
    import ctypes

    with open("/proc/self/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    env_start, env_end = int(fields[47]), int(fields[48])
    if not env_start or env_end <= env_start:
        return {"located": False, "found": False, "size": 0}
    block = ctypes.string_at(env_start, env_end - env_start)
    return {"located": True, "found": event["needle"].encode() in block, "size": len(block)}


def _symlink(event, context):
    try:
        os.symlink(event["target"], event["path"])
        return {"ok": True}
    except OSError as exc:
        return {"ok": False, "error": type(exc).__name__}


def _fill_tmp(event, context):
    """Write ``mb`` MiB into /tmp as files of ``file_mb`` MiB each; report how much got written."""
    chunk = b"\0" * (1024 * 1024)
    written = 0
    error = None
    paths = []
    try:
        while written < event["mb"]:
            path = f"/tmp/fill-{len(paths)}"
            paths.append(path)
            with open(path, "wb") as fh:
                for _ in range(min(event["file_mb"], event["mb"] - written)):
                    fh.write(chunk)
                    written += 1
    except OSError as exc:
        error = type(exc).__name__
    finally:
        for path in paths:
            with contextlib.suppress(OSError):
                os.remove(path)
    return {"written_mb": written, "error": error}


def _signal(event, context):
    """Send ``sig`` (0: only check that we may) to ``pid``."""
    try:
        os.kill(event["pid"], event.get("sig", 0))
        return {"ok": True}
    except OSError as exc:
        return {"ok": False, "error": type(exc).__name__}


def _lambda_api(event, context):
    """Call Squall's Lambda API with the credentials this sandbox was given: ``operation``, ``params``."""
    import boto3
    import botocore.exceptions

    client = boto3.client("lambda")
    try:
        result = getattr(client, event["operation"])(**event.get("params", {}))
    except botocore.exceptions.ClientError as exc:
        return {"ok": False, "code": exc.response["Error"]["Code"]}
    except botocore.exceptions.BotoCoreError as exc:  # no credentials at all, for one
        return {"ok": False, "code": type(exc).__name__}
    result.pop("ResponseMetadata", None)
    return {"ok": True, "result": json.loads(json.dumps(result, default=str))}


_HOSTILE_ACTIONS = {
    "contains": _contains,
    "exec_environ": _exec_environ,
    "symlink": _symlink,
    "fill_tmp": _fill_tmp,
    "signal": _signal,
    "lambda_api": _lambda_api,
}
_base_handler = handler


def handler(event, context):
    action = _HOSTILE_ACTIONS.get(event.get("action", "echo"))
    if action is not None:
        return action(event, context)
    return _base_handler(event, context)
